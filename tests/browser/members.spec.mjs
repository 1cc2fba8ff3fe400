/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Members on the web in a real browser: the manager's member list and a member's page on a
// phone and on a laptop (screenshots), searching, paging and editing with the page's own
// forms, and a member downloading their data from /me. Started by run_browser_tests.py
// (members.spec.mjs), which runs portierd with members Alice and Bob and the web accounts
// "alice" (Alice's) and "manager". Assertions are on page content and on the daemon's state
// (portierctl --json), never on timing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before } from 'node:test';

import {
  ARTIFACTS, URL, ctl, ctlText, layoutFaults, login, newPage as openPage, scenario, visit,
} from './common.mjs';

const PHONE = [{ width: 390, height: 844 }, { isMobile: true, hasTouch: true }];
const LAPTOP = [{ width: 1280, height: 800 }, {}];

before(() => {
  // Enough members for three pages, some of them expired, suspended or with e-mails.
  for (let i = 0; i < 110; i++) {
    const args = ['member', 'add', `Member ${String(i).padStart(3, '0')}`, '--plan', 'open',
      '--email', `m${i}@example.org`];
    if (i % 10 === 3) args.push('--until', '2020-01-01');
    ctlText(...args);
  }
  ctlText('member', 'suspend', 'Member 005');
  ctlText('member', 'set', 'Alice', '--email', 'alice@example.org', '--until', '2031-06-30');
});

function newPage([viewport, extra] = LAPTOP) {
  return openPage({ viewport, deviceScaleFactor: 1, acceptDownloads: true, ...extra });
}

async function rowNames(page) {
  return (await page.locator('#members tbody th a').allInnerTexts()).map((s) => s.trim());
}

scenario('1. the member list and a member page on a phone and a laptop', async () => {
  const problems = [];
  for (const [label, device] of [['phone', PHONE], ['laptop', LAPTOP]]) {
    const page = await newPage(device);
    await login(page, 'manager', '/manage');
    await visit(page, '/manage/members');
    assert.equal((await rowNames(page)).length, 50);
    assert.match(await page.locator('#member-count').innerText(), /^112 members$/);
    // A phone shows name, plan, state and the end of membership; the e-mail only on a laptop.
    const email = page.locator('#members thead th', { hasText: 'E-mail' });
    assert.equal(await email.isVisible(), label === 'laptop', `${label}: e-mail column`);
    await page.screenshot({ path: join(ARTIFACTS, `${label}-members.png`), fullPage: true });
    let o = await page.evaluate(layoutFaults, device[0].width);
    if (o.scrollWidth > device[0].width + 1 || o.out.length) {
      problems.push(`${label} /manage/members: scrollWidth ${o.scrollWidth}; ${o.out.join(', ')}`);
    }
    await Promise.all([page.waitForURL(/\/manage\/members\/\d+$/),
      page.getByRole('link', { name: 'Alice', exact: true }).click()]);
    assert.match(await page.locator('h1').innerText(), /^Alice/);
    assert.match(await page.locator('#valid-until').innerText(), /^30 Jun 2031 24:00 CEST$/);
    await page.screenshot({ path: join(ARTIFACTS, `${label}-member.png`), fullPage: true });
    o = await page.evaluate(layoutFaults, device[0].width);
    if (o.scrollWidth > device[0].width + 1 || o.out.length) {
      problems.push(`${label} member page: scrollWidth ${o.scrollWidth}; ${o.out.join(', ')}`);
    }
    for (const e of new Set(page.errors)) problems.push(`${label}: ${e}`);
    await page.context().close();
  }
  assert.deepEqual(problems, []);
});

scenario('2. a manager searches, filters, pages and edits with the forms', async () => {
  const page = await newPage();
  await login(page, 'manager', '/manage');
  await visit(page, '/manage/members');
  // Paging keeps going until the last page.
  await Promise.all([page.waitForURL(/page=2/), page.getByRole('link', { name: 'Next' }).click()]);
  assert.equal((await rowNames(page)).length, 50);
  await Promise.all([page.waitForURL(/page=3/), page.getByRole('link', { name: 'Next' }).click()]);
  assert.equal((await rowNames(page)).length, 12);
  assert.equal(await page.getByRole('link', { name: 'Next' }).count(), 0);
  // Search and filter with the form.
  await page.getByLabel('Name, e-mail or card label').fill('m10@example');
  await Promise.all([page.waitForURL(/q=m10%40example/),
    page.getByRole('button', { name: 'Search' }).click()]);
  assert.deepEqual(await rowNames(page), ['Member 010']);
  await page.getByLabel('Name, e-mail or card label').fill('');
  await page.getByLabel('Show').selectOption('expired');
  await Promise.all([page.waitForURL(/filter=expired/),
    page.getByRole('button', { name: 'Search' }).click()]);
  const expired = await rowNames(page);
  assert.equal(expired.length, 11);
  assert.ok(expired.every((n) => /^Member \d\d3$/.test(n)), expired.join(', '));
  assert.equal(await page.locator('#members .badge.s-expired').count(), 11);
  // Edit Bob: a new e-mail and an end of membership, through the page's form.
  await page.getByLabel('Show').selectOption('all');
  await page.getByLabel('Name, e-mail or card label').fill('Bob');
  await Promise.all([page.waitForURL(/q=Bob/), page.getByRole('button', { name: 'Search' }).click()]);
  await Promise.all([page.waitForURL(/\/manage\/members\/\d+$/),
    page.getByRole('link', { name: 'Bob', exact: true }).click()]);
  const edit = page.locator('form[action$="/set"]');
  await edit.getByLabel('E-mail').fill('bob@example.org');
  await edit.getByLabel('Valid until', { exact: true }).fill('2030-03-31');
  await Promise.all([page.waitForURL(/\/manage\/members\/\d+$/),
    edit.getByRole('button', { name: 'Save' }).click()]);
  const bob = ctl('member', 'show', 'Bob').member;
  assert.equal(bob.email, 'bob@example.org');
  assert.equal(bob.valid_until_utc, '2030-03-31T22:00:00Z');      // the end of that day, CEST
  assert.match(await page.locator('#history').innerText(), /bob@example\.org/);
  assert.deepEqual([...new Set(page.errors)], []);
});

scenario('3. a member downloads their data from their page', async () => {
  const page = await newPage(PHONE);
  await login(page, 'alice', '/me');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download my data' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `portier-member-${ctl('member', 'show', 'Alice').member.id}.json`);
  const doc = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(doc.format, 'portier-member-export-v1');
  assert.equal(doc.member.name, 'Alice');
  assert.equal(doc.member.email, 'alice@example.org');
  assert.deepEqual(doc.accounts.map((a) => a.name), ['alice']);
  // The privacy page is one link away.
  await Promise.all([page.waitForURL(URL + '/privacy'),
    page.getByRole('link', { name: 'How your data is used' }).click()]);
  assert.equal(await page.locator('h1').innerText(), 'Your personal data');
  assert.deepEqual([...new Set(page.errors)], []);
});
