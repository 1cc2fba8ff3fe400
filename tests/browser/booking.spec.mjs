/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Booking in a real browser: Debian's headless Chromium driven by playwright-core, against
// the daemon run_browser_tests.py starts (simulated hardware; machine "laser" with 30-minute
// slots, open always; members Alice and Bob; web accounts "alice" and "manager").
// Assertions are on page content and on the daemon's own state (portierctl --json), never
// on timing.
//
// Environment: PORTIER_URL, PORTIERCTL, PORTIER_SOCKET, PORTIER_PASSWORD, PORTIER_CHROMIUM,
// PORTIER_ARTIFACTS (screenshots go there).
import assert from 'node:assert/strict';

import {
  URL, addDays, assertNoErrors, booking, ctl, h1, localTime, login, markDocument, newPage,
  scenario, stillSameDocument, today, visit,
} from './common.mjs';

const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true,
                deviceScaleFactor: 1 };
const laptop = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 };

// The newest booking of member on laser starting at start ("YYYY-MM-DDTHH:MM").
function bookingAt(member, start) {
  const b = ctl('booking', 'list', '--machine', 'laser', '--for', member)
    .filter((x) => localTime(x.start) === start);
  assert.equal(b.length, 1, `one booking of ${member} at ${start}`);
  return b[0];
}

scenario('1. on a phone, a member picks a start and a length and books, without a reload', async () => {
  const page = await newPage(phone);
  await login(page, 'alice', '/me');
  const day = addDays(today(), 1);
  await visit(page, '/machines/laser');
  assert.equal(await h1(page), 'laser');
  // The day view: the first day's column only, and no part of the page wider than the phone.
  assert.equal(await page.locator('table.grid th.d0').isVisible(), true);
  assert.equal(await page.locator('table.grid th.d1').isVisible(), false);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 361));
  await markDocument(page);

  await page.getByRole('link', { name: /Next day/ }).click();
  await page.waitForURL(`${URL}/machines/laser?day=${day}`);
  const slot = page.locator(`a.slot[href*="start=${day}T10:00"]`);
  assert.equal(await slot.getAttribute('aria-label'), `Book ${await page.locator('th.d0').innerText()} 10:00`);
  await slot.click();
  const panel = page.locator('#book');
  await panel.waitFor();
  assert.ok(await panel.isVisible());
  assert.match(await panel.locator('p').first().innerText(), /^From \w+ \d+ \w+ \d{4} at 10:00 CES?T$/);
  // The lengths the rules allow at 10:00: 30 minutes to 4 hours, by slots.
  const lengths = await panel.locator('select[name=minutes] option').evaluateAll(
    (os) => os.map((o) => o.value));
  assert.deepEqual(lengths, ['30', '60', '90', '120', '150', '180', '210', '240']);
  await panel.getByLabel('How long').selectOption('60');
  await panel.getByRole('button', { name: 'Book' }).click();
  const notice = page.locator('p.notice[role=status]');
  await notice.waitFor();
  assert.match(await notice.innerText(), /^Booked: laser, \w+ \d+ \w+ \d{4}, 10:00–11:00 CES?T\./);
  assert.ok(await stillSameDocument(page), 'booked without a full page reload');
  const b = bookingAt('Alice', `${day}T10:00`);
  assert.equal(localTime(b.end), `${day}T11:00`);

  // The grid shows it as her block of one hour, with a cancel button that asks first.
  const block = page.locator('td.busy.mine.d0');
  assert.match(await block.innerText(), /10:00–11:00\s*1 h\s*Yours/);
  page.once('dialog', (d) => d.accept());
  await Promise.all([
    page.waitForURL(/cancelled=\d+/),
    block.getByRole('button', { name: /^Cancel booking/ }).click(),
  ]);
  assert.match(await page.locator('p.notice[role=status]').innerText(), /^Cancelled: laser/);
  assert.equal(booking(b.id).cancelled, true);
  assertNoErrors(page);
});

scenario('2. booking with the keyboard only', async () => {
  const page = await newPage(laptop);
  await login(page, 'alice', '/me');
  const day = addDays(today(), 2);
  await visit(page, `/machines/laser?day=${day}`);
  // Tab to the first free slot (00:00 of that day), as a keyboard user would.
  let found = false;
  for (let i = 0; i < 40 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => document.activeElement.matches('a.slot'));
  }
  assert.ok(found, 'a slot is reachable with Tab');
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(ring, 'none', 'the focused slot shows where the focus is');
  await markDocument(page);
  await page.keyboard.press('Enter');
  await page.locator('#book').waitFor();
  // The focus went to the booking form's section; the length is the next stop.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'book');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'minutes');
  await page.keyboard.press('ArrowDown');             // 30 min -> 1 h
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Book');
  await page.keyboard.press('Enter');
  await page.locator('p.notice[role=status]').waitFor();
  assert.ok(await stillSameDocument(page));
  const b = bookingAt('Alice', `${day}T00:00`);
  assert.equal(localTime(b.end), `${day}T01:00`);
  assertNoErrors(page);
});

scenario('3. without JavaScript a member books and cancels too', async () => {
  const page = await newPage({ ...laptop, javaScriptEnabled: false });
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await login(page, 'alice', '/me');
  const day = addDays(today(), 1);
  await visit(page, `/machines/laser?day=${day}`);
  await Promise.all([
    page.waitForURL(/start=/),
    page.locator(`a.slot[href*="start=${day}T11:00"]`).click(),
  ]);
  await page.locator('#book').getByLabel('How long').selectOption('90');
  await Promise.all([
    page.waitForURL(/booked=\d+/),
    page.locator('#book').getByRole('button', { name: 'Book' }).click(),
  ]);
  assert.match(await page.locator('p.notice[role=status]').innerText(), /11:00–12:30/);
  const b = bookingAt('Alice', `${day}T11:00`);
  assert.equal(localTime(b.end), `${day}T12:30`);

  await visit(page, '/me');
  const item = page.locator('main li').filter({ hasText: /laser .* 11:00–12:30/ });
  assert.equal(await item.count(), 1, 'the booking is on /me');
  // No app.js: the cancel form submits straight away, without a confirm() dialog.
  await Promise.all([
    page.waitForURL(`${URL}/me?cancelled=${b.id}`),
    item.getByRole('button', { name: /^Cancel/ }).click(),
  ]);
  assert.match(await page.locator('p.notice[role=status]').innerText(), /^Cancelled: laser/);
  assert.deepEqual(dialogs, []);
  assert.equal(booking(b.id).cancelled, true);
});

scenario('4. a manager assigns a slot to Bob from the bookings task; only they see his name', async () => {
  const page = await newPage(laptop);
  await login(page, 'manager', '/manage');
  assert.equal(await h1(page), 'Manage');
  await page.locator('nav.tasks a[href="/manage/bookings"]').click();
  await page.waitForURL(`${URL}/manage/bookings`);
  const bob = ctl('member', 'list').find((m) => m.name === 'Bob');
  const day = addDays(today(), 3);
  const form = page.locator('section#assign');
  await form.getByLabel('Member').selectOption(String(bob.id));
  await form.getByLabel('Machine').selectOption('laser');
  await form.getByLabel('Start', { exact: true }).fill(`${day}T10:00`);
  await form.getByLabel('End', { exact: true }).fill(`${day}T11:00`);
  await form.getByRole('button', { name: 'Assign' }).click();
  const notice = page.locator('p.notice[role=status]');
  await notice.waitFor();
  const m = /^Booked: #(\d+) laser, .* 10:00–11:00, Bob\.$/.exec(await notice.innerText());
  assert.ok(m, `the sentence says what was booked: ${await notice.innerText()}`);
  const b = booking(Number(m[1]));
  assert.equal(b.member, 'Bob');
  assert.equal(localTime(b.start), `${day}T10:00`);
  // In the list of upcoming bookings, with his name and a Move link.
  const row = page.locator('table tbody tr').filter({ hasText: 'Bob' });
  assert.equal(await row.count(), 1);
  assert.equal(await row.getByRole('link', { name: 'Move' }).count(), 1);
  // The machine's page shows the manager Bob's name; nobody else sees it.
  await visit(page, `/machines/laser?day=${day}`);
  assert.match(await page.locator('td.busy.d0').first().innerText(), /Bob/);
  for (const who of [null, 'alice']) {
    const other = await newPage(laptop);
    if (who) await login(other, who, '/me');
    await visit(other, `/machines/laser?day=${day}`);
    const text = await other.locator('table.grid').innerText();
    assert.match(text, /10:00–11:00/);
    assert.doesNotMatch(text, /Bob/, `${who || 'anonymous'} must not see Bob's name`);
    await other.context().close();
  }
  // Out of order from the machines task: the safe default, and back in order.
  await visit(page, '/manage/machines');
  await page.getByRole('button', { name: 'Set out of order' }).click();
  await page.locator('p.notice[role=status]').waitFor();
  assert.match(await page.locator('p.notice').innerText(), /^laser is out of order/);
  assert.equal(ctl('machine', 'list').find((x) => x.name === 'laser').out_of_order, true);
  await page.getByRole('button', { name: 'Back in order' }).click();
  await page.locator('p.notice[role=status]').waitFor();
  assert.equal(ctl('machine', 'list').find((x) => x.name === 'laser').out_of_order, false);
  assertNoErrors(page);
});

scenario('5. the assets are served with their content types', async () => {
  const page = await newPage();
  const want = {
    '/static/app.js': /^text\/javascript(;|$)/,
    '/static/kiosk.js': /^text\/javascript(;|$)/,
    '/static/style.css': /^text\/css(;|$)/,
    '/static/icon.svg': /^image\/svg\+xml(;|$)/,
  };
  for (const [path, re] of Object.entries(want)) {
    const r = await page.request.get(URL + path);
    assert.equal(r.status(), 200, path);
    assert.match(r.headers()['content-type'] ?? '', re, path);
  }
});
