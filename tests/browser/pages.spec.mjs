/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Every page in English and in French, at a phone's width (360 px) and a laptop's (1280 px):
// axe-core's accessibility check (no serious or critical violation), one screenshot each in
// build/test-artifacts/browser/LANG-WIDTH-NAME.png, no part of a page wider than the screen
// (outside the tables that scroll), the page's language, one <h1>, visible focus.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import {
  ARTIFACTS, URL, addDays, assertNoErrors, ctlText, layoutFaults, login, newPage, scenario,
  today,
} from './common.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const viewports = [
  ['360', { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true }],
  ['1280', { viewport: { width: 1280, height: 800 } }],
];
const languages = [['en', 'en-GB'], ['fr', 'fr-FR']];

// [name, who (anonymous, member, manager), path, status]
function pagesToSee(kiosk) {
  const start = `${addDays(today(), 1)}T10:00`;
  return [
    ['home', 'anonymous', '/', 200],
    ['login', 'anonymous', '/login', 200],
    ['welcome', 'anonymous', `/welcome/${'A'.repeat(43)}`, 200],
    ['week', 'anonymous', '/bookings', 200],
    ['machine-anonymous', 'anonymous', '/machines/laser', 200],
    ['not-found', 'anonymous', '/nothing-here', 404],
    ['kiosk', 'anonymous', kiosk, 200],
    ['home-member', 'member', '/', 200],
    ['machine', 'member', '/machines/laser', 200],
    ['machine-book', 'member', `/machines/laser?start=${start}`, 200],
    ['me', 'member', '/me', 200],
    ['forbidden', 'member', '/manage', 403],
    ['manage', 'manager', '/manage', 200],
    ['manage-bookings', 'manager', '/manage/bookings', 200],
    ['manage-machines', 'manager', '/manage/machines', 200],
    ['manage-members', 'manager', '/manage/members', 200],
    ['manage-doors', 'manager', '/manage/doors', 200],
    ['manage-billing', 'manager', '/manage/billing', 200],
    ['manage-mail', 'manager', '/manage/mail', 200],
    ['account', 'manager', '/me', 200],
    ['usage', 'manager', '/usage', 200],
    ['ledger', 'manager', '/ledger', 200],
  ];
}

// axe-core, evaluated in the page (devtools evaluation is not bound by the page's CSP).
async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

// Something to show: bookings of Alice's and Bob's tomorrow and today, Alice in.
function someActivity() {
  const tomorrow = addDays(today(), 1);
  ctlText('booking', 'add', 'laser', `${tomorrow}T14:00`, `${tomorrow}T15:30`, '--for', 'Alice');
  ctlText('booking', 'add', 'laser', `${tomorrow}T16:00`, `${tomorrow}T17:00`, '--for', 'Bob');
  ctlText('booking', 'add', 'laser', `${today()}T23:00`, `${tomorrow}T00:00`, '--for', 'Bob');
  ctlText('sim', 'tap', '--reader', 'front', '04A1B2C3');
}

scenario('1. every page, both languages, both widths: accessible, screenshotted, fits', async () => {
  someActivity();
  const kiosk = /(\/kiosk\/[A-Za-z0-9_-]{43})/.exec(ctlText('kiosk', 'add', 'screenshots'))[1];
  const problems = [];
  let shots = 0;
  for (const [lang, locale] of languages) {
    for (const [width, options] of viewports) {
      const pages = {};
      for (const who of ['anonymous', 'member', 'manager']) {
        pages[who] = await newPage({ ...options, locale, deviceScaleFactor: 1 });
        if (who === 'member') await login(pages[who], 'alice', '/me');
        if (who === 'manager') await login(pages[who], 'manager', '/manage');
      }
      for (const [name, who, path, status] of pagesToSee(kiosk)) {
        const page = pages[who];
        const before = page.errors.length;
        const response = await page.goto(URL + path);
        const where = `${lang} ${width} ${path}`;
        // The expected 403 and 404 show on the console as a failed load: that one is fine.
        page.errors.splice(before, page.errors.length - before,
          ...page.errors.slice(before).filter((e) => !e.includes(`status of ${status} `)));
        if (response.status() !== status) problems.push(`${where}: status ${response.status()}`);
        const htmlLang = await page.evaluate(() => document.documentElement.lang);
        if (htmlLang !== lang) problems.push(`${where}: <html lang="${htmlLang}">`);
        if (await page.locator('h1').count() !== 1) problems.push(`${where}: not one <h1>`);
        await page.screenshot({ path: join(ARTIFACTS, `${lang}-${width}-${name}.png`), fullPage: true });
        shots++;
        for (const v of await axe(page)) problems.push(`${where}: ${v}`);
        const o = await page.evaluate(layoutFaults, Number(width));
        if (o.scrollWidth > Number(width) + 1 || o.out.length) {
          problems.push(`${where}: scrollWidth ${o.scrollWidth}; ${o.out.join(', ')}`);
        }
      }
      // The confirmation a manager sees before closing a period.
      const m = pages.manager;
      await m.goto(URL + '/manage/billing');
      await m.locator('form[action="/manage/period-close"] button').click();
      await m.waitForURL(URL + '/manage/period-close');
      await m.screenshot({ path: join(ARTIFACTS, `${lang}-${width}-manage-confirm.png`), fullPage: true });
      for (const v of await axe(m)) problems.push(`${lang} ${width} confirm: ${v}`);
      for (const page of Object.values(pages)) {
        for (const e of new Set(page.errors)) problems.push(`${lang} ${width}: ${e}`);
        await page.context().close();
      }
    }
  }
  console.log(`# ${shots} screenshots in ${ARTIFACTS}`);
  assert.deepEqual(problems, []);
  // The check can fail: an image without a text alternative is a critical violation.
  const page = await newPage();
  await page.goto(URL + '/');
  await page.evaluate(() => document.querySelector('main').append(document.createElement('img')));
  assert.ok((await axe(page)).some((v) => v.startsWith('image-alt (critical)')),
    'axe-core finds a missing alt text');
});

scenario('2. keyboard focus is visible on links, fields and buttons', async () => {
  const page = await newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(URL + '/login');
  const seen = [];
  for (let i = 0; i < 15 && seen.length < 3; i++) {
    await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => {
      const el = document.activeElement;
      const s = getComputedStyle(el);
      return { tag: el.tagName.toLowerCase(), style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
    if (['a', 'input', 'button'].includes(ring.tag) && !seen.some((r) => r.tag === ring.tag)) {
      assert.notEqual(ring.style, 'none', `focused <${ring.tag}> has no outline`);
      assert.ok(ring.width >= 2, `focused <${ring.tag}> outline is ${ring.width}px`);
      seen.push(ring);
    }
  }
  assert.deepEqual(seen.map((r) => r.tag).sort(), ['a', 'button', 'input']);
  assertNoErrors(page);
});
