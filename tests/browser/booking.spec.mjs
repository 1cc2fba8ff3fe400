/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Portier's web page in a real browser: Debian's headless Chromium driven by playwright-core.
// Started by run_browser_tests.py, which runs portierd (simulated hardware) with a machine
// "laser" (30-minute slots), members Alice and Bob, and the web accounts "alice" (member of
// Alice) and "manager". Assertions are on page content and on the daemon's own state
// (portierctl --json), never on timing.
//
// Environment: PORTIER_URL, PORTIERCTL, PORTIER_SOCKET, PORTIER_PASSWORD, PORTIER_CHROMIUM,
// PORTIER_ARTIFACTS (screenshots go there).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through run_browser_tests.py`);
  return v;
};
const URL = env('PORTIER_URL');
const CTL = env('PORTIERCTL');
const SOCKET = env('PORTIER_SOCKET');
const PASSWORD = env('PORTIER_PASSWORD');
const CHROMIUM = process.env.PORTIER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = env('PORTIER_ARTIFACTS');
mkdirSync(ARTIFACTS, { recursive: true });

let browser;
const openPages = new Set();    // screenshotted when a scenario fails

before(async () => {
  // --no-sandbox: Chromium's sandbox refuses to start as root (CI and containers).
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
});

// ---- helpers ----

function ctl(...args) {
  return JSON.parse(execFileSync(CTL, ['-s', SOCKET, ...args, '--json'], { encoding: 'utf8' }));
}

function booking(id) {
  const b = ctl('booking', 'list', '--all').find((x) => x.id === id);
  assert.ok(b, `portierctl booking list --all has no booking ${id}`);
  return b;
}

// The site's time zone (Europe/Paris): "YYYY-MM-DDTHH:MM", as the forms write times.
const parisFmt = new Intl.DateTimeFormat('sv-SE', {
  timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const localTime = (epoch) => parisFmt.format(new Date(epoch * 1000)).replace(' ', 'T');

// "YYYY-MM-DD" plus n days (calendar arithmetic, no time zone involved).
function addDays(date, n) {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

async function newPage(options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(`console error: ${m.text()}`);
  });
  openPages.add(page);
  context.on('close', () => openPages.delete(page));
  return page;
}

// Run a scenario; on failure, screenshot every page still open, then fail.
function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      let i = 0;
      for (const page of openPages) {
        const file = join(ARTIFACTS, `failure-${name.replace(/\W+/g, '-').slice(0, 40)}-${i++}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.error(`# failure screenshot: ${file} (${page.url()})`);
      }
      throw e;
    } finally {
      for (const page of [...openPages]) await page.context().close();
    }
  });
}

async function visit(page, path) {
  const response = await page.goto(URL + path);
  assert.equal(response.status(), 200, `GET ${path}: status ${response.status()}`);
  return response;
}

async function h1(page) {
  return (await page.locator('h1').innerText()).trim();
}

async function statusText(page) {
  return (await page.getByRole('status').innerText()).trim();
}

async function login(page, name, landing) {
  await visit(page, '/login');
  await page.getByLabel('Account name').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await Promise.all([
    page.waitForURL(URL + landing),
    page.getByRole('button', { name: 'Log in', exact: true }).click(),
  ]);
  await assertLoggedIn(page, name);
}

async function assertLoggedIn(page, name) {
  assert.ok(await page.getByRole('button', { name: `Log out ${name}` }).isVisible(),
    `no "Log out ${name}" button on ${page.url()}`);
}

// Follow the "Next week" link of a page with a week navigation; returns next week's Monday.
async function nextWeek(page) {
  await Promise.all([
    page.waitForURL(/\?week=\d{4}-\d{2}-\d{2}$/),
    page.getByRole('link', { name: /Next week/ }).click(),
  ]);
  return new globalThis.URL(page.url()).searchParams.get('week');
}

// The cell of the machine's week grid for a weekday ("Wed") and a row ("10:00").
async function gridCell(page, day, time) {
  const heads = (await page.locator('table.grid thead th').allInnerTexts()).map((s) => s.trim());
  const col = heads.findIndex((h) => h.startsWith(day));
  assert.ok(col > 0, `no ${day} column in ${JSON.stringify(heads)}`);
  const row = page.locator('table.grid tbody tr').filter({
    has: page.locator('th', { hasText: new RegExp(`^${time}$`) }),
  });
  assert.equal(await row.count(), 1, `one ${time} row in the grid`);
  return row.locator('td').nth(col - 1);
}

// Book a slot by clicking its "Book" button; returns { id, start, end } of the new booking.
async function bookFromGrid(page, day, time) {
  const cell = await gridCell(page, day, time);
  assert.match(await cell.getAttribute('class'), /\bfree\b/, `${day} ${time} is free`);
  const button = cell.getByRole('button', { name: /^Book / });
  assert.match(await button.getAttribute('aria-label'), new RegExp(`^Book ${day} \\d\\d ${time}$`));
  const start = await cell.locator('input[name=start]').inputValue();
  const end = await cell.locator('input[name=end]').inputValue();
  await Promise.all([page.waitForURL(URL + '/bookings'), button.click()]);
  assert.equal(await h1(page), 'Booked');
  const m = /^Booking (\d+) is yours\./.exec(await statusText(page));
  assert.ok(m, 'the confirmation names the booking');
  return { id: Number(m[1]), start, end };
}

function assertBooked(id, member, start, end) {
  const b = booking(id);
  assert.equal(b.machine, 'laser');
  assert.equal(b.member, member);
  assert.equal(b.cancelled, false);
  assert.equal(localTime(b.start), start);
  assert.equal(localTime(b.end), end);
}

// No script errors, CSP violations or refused assets (Chromium reports them on the console).
function assertNoErrors(page) {
  assert.deepEqual([...new Set(page.errors)], [], `errors on ${page.url()}`);
}

// ---- scenarios ----

scenario('1. a member books a free slot in the grid, sees it, cancels it from /me', async () => {
  const page = await newPage();
  await login(page, 'alice', '/me');
  assert.equal(await h1(page), 'Alice');

  await visit(page, '/machines/laser');
  assert.equal(await h1(page), 'laser');
  const week = await nextWeek(page);
  const weekPath = `/machines/laser?week=${week}`;
  // Next week's Wednesday: 2 to 9 days ahead, always bookable (window 14 days).
  const { id, start, end } = await bookFromGrid(page, 'Wed', '10:00');
  assert.equal(start, `${addDays(week, 2)}T10:00`);
  assert.equal(end, `${addDays(week, 2)}T10:30`);
  assertBooked(id, 'Alice', start, end);

  // The grid marks it as hers, with a cancel button.
  await visit(page, weekPath);
  let cell = await gridCell(page, 'Wed', '10:00');
  assert.match(await cell.getAttribute('class'), /\bbusy\b.*\bmine\b/);
  assert.match(await cell.innerText(), /Yours/);
  assert.equal(await cell.getByRole('button', { name: 'Cancel' }).count(), 1);

  // /me lists it; the cancel form asks first (app.js): dismissing keeps the booking.
  await visit(page, '/me');
  assertNoErrors(page);     // app.js loaded and ran
  const item = page.locator('main li').filter({ hasText: /laser Wed \d\d \w+ 10:00–10:30/ });
  assert.equal(await item.count(), 1, 'the booking is on /me');
  const dialogs = [];
  page.once('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await item.getByRole('button', { name: 'Cancel' }).click();
  assert.deepEqual(dialogs, ['Cancel this booking?']);
  assert.equal(new globalThis.URL(page.url()).pathname, '/me', 'dismissing stays on /me');
  assert.equal(booking(id).cancelled, false, 'dismissed: still booked');

  page.once('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await Promise.all([
    page.waitForURL(`${URL}/bookings/${id}/cancel`),
    item.getByRole('button', { name: 'Cancel' }).click(),
  ]);
  assert.equal(dialogs.length, 2);
  assert.equal(await h1(page), 'Cancelled');
  assert.match(await statusText(page), new RegExp(`^Booking ${id} is cancelled\\.`));
  const b = booking(id);
  assert.equal(b.cancelled, true, 'portierctl shows the booking cancelled');
  assert.equal(ctl('booking', 'list', '--for', 'Alice').some((x) => x.id === id), false);

  await page.getByRole('link', { name: 'Back' }).click();
  await page.waitForURL(URL + '/me');
  assert.equal(await item.count(), 0, 'the booking is gone from /me');
  await visit(page, weekPath);
  cell = await gridCell(page, 'Wed', '10:00');
  assert.match(await cell.getAttribute('class'), /\bfree\b/, 'the slot is free again');
  assertNoErrors(page);
});

scenario('2. a manager assigns a slot to Bob from /manage and sees it in /bookings', async () => {
  const page = await newPage();
  await login(page, 'manager', '/manage');
  assert.equal(await h1(page), 'Manage');
  const bob = ctl('member', 'list').find((m) => m.name === 'Bob');

  // Next week's Monday, from the week overview's navigation.
  await visit(page, '/bookings');
  const week = await nextWeek(page);
  const thursday = addDays(week, 3);

  await visit(page, '/manage');
  const form = page.locator('section').filter({
    has: page.getByRole('heading', { name: 'Assign a slot' }),
  });
  await form.getByLabel('Member').selectOption(String(bob.id));
  await form.getByLabel('Machine').selectOption('laser');
  await form.getByLabel('Start', { exact: true }).fill(`${thursday}T10:00`);
  await form.getByLabel('End', { exact: true }).fill(`${thursday}T11:00`);
  await Promise.all([
    page.waitForURL(URL + '/manage/assign'),
    form.getByRole('button', { name: 'Assign' }).click(),
  ]);
  assert.equal(await h1(page), 'Done');
  const m = /^Slot assigned: booking (\d+)\.$/.exec(await statusText(page));
  assert.ok(m, 'the confirmation names the booking');
  const id = Number(m[1]);
  assertBooked(id, 'Bob', `${thursday}T10:00`, `${thursday}T11:00`);
  assert.ok(ctl('booking', 'list', '--for', 'Bob').some((x) => x.id === id));

  // The week overview shows Bob's name to the manager...
  await visit(page, `/bookings?week=${week}`);
  const row = page.locator('table.week tbody tr').filter({ hasText: 'laser' });
  assert.match(await row.innerText(), /10:00–11:00 Bob/);
  // ...and so does the manager's list of upcoming bookings.
  await visit(page, '/manage');
  const upcoming = page.locator('main table tbody tr').filter({ hasText: 'Bob' });
  assert.equal(await upcoming.count(), 1);
  assert.match(await upcoming.innerText(), new RegExp(`^${id}\\s+laser\\s+Thu`));
  assertNoErrors(page);

  // Nobody else sees the name: anonymous and another member see the time only.
  for (const who of [null, 'alice']) {
    const other = await newPage();
    if (who) await login(other, who, '/me');
    await visit(other, `/bookings?week=${week}`);
    const text = await other.locator('table.week tbody tr').filter({ hasText: 'laser' }).innerText();
    assert.match(text, /10:00–11:00/);
    assert.doesNotMatch(text, /Bob/, `${who || 'anonymous'} must not see Bob's name`);
    await other.context().close();
  }
});

scenario('3. without JavaScript a member books and cancels too', async () => {
  const page = await newPage({ javaScriptEnabled: false });
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await login(page, 'alice', '/me');

  await visit(page, '/machines/laser');
  const week = await nextWeek(page);
  const { id, start, end } = await bookFromGrid(page, 'Wed', '11:00');
  assert.equal(start, `${addDays(week, 2)}T11:00`);
  assertBooked(id, 'Alice', start, end);

  await visit(page, '/me');
  const item = page.locator('main li').filter({ hasText: /laser Wed \d\d \w+ 11:00–11:30/ });
  assert.equal(await item.count(), 1, 'the booking is on /me');
  // No app.js: the cancel form submits straight away, without a confirm() dialog.
  await Promise.all([
    page.waitForURL(`${URL}/bookings/${id}/cancel`),
    item.getByRole('button', { name: 'Cancel' }).click(),
  ]);
  assert.equal(await h1(page), 'Cancelled');
  assert.deepEqual(dialogs, []);
  assert.equal(booking(id).cancelled, true);
});

// Checks inside one page: language, title, headings, labels, names, unique ids.
function auditPage() {
  const problems = [];
  const describe = (el) => el.outerHTML.slice(0, 140);
  const text = (el) => (el.innerText || el.textContent || '').trim();
  if (!document.documentElement.lang) problems.push('<html> has no lang');
  if (!document.title.trim()) problems.push('no <title>');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one <h1>');
  if (document.querySelectorAll('main').length !== 1) problems.push('not exactly one <main>');
  const named = (el) => (el.getAttribute('aria-label') || '').trim() ||
    (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
      .map((id) => document.getElementById(id)).filter(Boolean).map(text).join(' ');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const labelled = [...(el.labels || [])].some((l) => text(l)) || named(el);
    if (!labelled) problems.push(`field without a label: ${describe(el)}`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!text(el) && !named(el) && !el.querySelector('img[alt]:not([alt=""])')) {
      if (!el.hidden) problems.push(`${el.tagName.toLowerCase()} without a name: ${describe(el)}`);
    }
  }
  const seen = new Set();
  for (const el of document.querySelectorAll('[id]')) {
    if (seen.has(el.id)) problems.push(`duplicate id ${el.id}`);
    seen.add(el.id);
  }
  return problems;
}

// The focused element shows an outline (a visible focus ring).
async function focusRing(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const s = getComputedStyle(el);
    return { tag: el.tagName.toLowerCase(), style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
}

scenario('4. accessibility smoke checks: lang, labels, names, visible focus', async () => {
  const anonymous = await newPage();
  const member = await newPage();
  await login(member, 'alice', '/me');
  const manager = await newPage();
  await login(manager, 'manager', '/manage');
  await visit(member, '/machines/laser');
  const week = await nextWeek(member);

  const pages = [
    [anonymous, ['/', '/login', '/bookings', '/machines/laser']],
    [member, ['/', '/me', `/machines/laser?week=${week}`, '/bookings']],
    [manager, ['/manage', `/machines/laser?week=${week}`, '/usage']],
  ];
  const problems = [];
  for (const [page, paths] of pages) {
    for (const path of paths) {
      await visit(page, path);
      for (const p of await page.evaluate(auditPage)) problems.push(`${path}: ${p}`);
    }
  }
  assert.deepEqual(problems, []);

  // Keyboard focus is visible on a link, an input and a button (style.css's outline).
  await visit(anonymous, '/login');
  await anonymous.keyboard.press('Tab');
  const seen = [];
  for (let i = 0; i < 12 && seen.length < 3; i++) {
    const ring = await focusRing(anonymous);
    if (['a', 'input', 'button'].includes(ring.tag) && !seen.some((r) => r.tag === ring.tag)) {
      assert.notEqual(ring.style, 'none', `focused <${ring.tag}> has no outline`);
      assert.ok(ring.width >= 2, `focused <${ring.tag}> outline is ${ring.width}px`);
      seen.push(ring);
    }
    await anonymous.keyboard.press('Tab');
  }
  assert.deepEqual(seen.map((r) => r.tag).sort(), ['a', 'button', 'input']);
  for (const page of [anonymous, member, manager]) assertNoErrors(page);
});

// Layout faults: elements that stick out of the viewport (outside the horizontally scrolling
// .table boxes), radio buttons apart from their text.
function layoutFaults(width) {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.table')) continue;
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 1) {
      out.push(`${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''} right=${Math.round(r.right)}`);
    }
  }
  // A radio button or checkbox sits on the line of its label's text, not above it.
  for (const input of document.querySelectorAll('label input[type=radio], label input[type=checkbox]')) {
    const range = document.createRange();
    range.selectNodeContents(input.closest('label'));
    range.setStartAfter(input);
    const text = range.getClientRects()[0];
    const box = input.getBoundingClientRect();
    if (text && Math.abs((text.top + text.bottom) / 2 - (box.top + box.bottom) / 2) > text.height / 2) {
      out.push(`${input.type} ${input.name}=${input.value} not beside its label text`);
    }
  }
  return { scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 10) };
}

scenario('5. screenshots at phone and laptop widths; no page wider than a phone', async () => {
  // Something to show: a booking of Alice's next to Bob's from scenario 2.
  const anon = await newPage();
  await visit(anon, '/bookings');
  const week = await nextWeek(anon);
  await anon.context().close();
  const friday = addDays(week, 4);
  execFileSync(CTL, ['-s', SOCKET, 'booking', 'add', 'laser', `${friday}T14:00`,
    `${friday}T15:30`, '--for', 'Alice']);

  const viewports = [
    ['phone', { width: 360, height: 740 }, { isMobile: true, hasTouch: true }],
    ['laptop', { width: 1280, height: 800 }, {}],
  ];
  const shots = [
    ['home', 'alice', '/'],
    ['machine', 'alice', `/machines/laser?week=${week}`],
    ['me', 'alice', '/me'],
    ['manage', 'manager', '/manage'],
  ];
  const problems = [];
  for (const [label, viewport, extra] of viewports) {
    const pages = {};
    for (const [who, landing] of [['alice', '/me'], ['manager', '/manage']]) {
      pages[who] = await newPage({ viewport, deviceScaleFactor: 1, ...extra });
      await login(pages[who], who, landing);
    }
    for (const [name, who, path] of shots) {
      const page = pages[who];
      await visit(page, path);
      const file = join(ARTIFACTS, `${label}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const o = await page.evaluate(layoutFaults, viewport.width);
      if (o.scrollWidth > viewport.width + 1 || o.out.length) {
        problems.push(`${label} ${path}: scrollWidth ${o.scrollWidth} (viewport ${viewport.width}); ${o.out.join(', ')}`);
      }
    }
    for (const page of Object.values(pages)) {
      // Collected, not asserted here: every screenshot is taken even when a page has errors.
      for (const e of new Set(page.errors)) problems.push(`${label}: ${e}`);
      await page.context().close();
    }
  }
  assert.deepEqual(problems, []);
});

scenario('6. the assets are served with their content types', async () => {
  const page = await newPage();
  const want = {
    '/static/app.js': /^text\/javascript(;|$)/,
    '/static/style.css': /^text\/css(;|$)/,
    '/static/icon.svg': /^image\/svg\+xml(;|$)/,
  };
  const got = {};
  for (const path of Object.keys(want)) {
    const r = await page.request.get(URL + path);
    assert.equal(r.status(), 200, path);
    got[path] = r.headers()['content-type'];
  }
  for (const [path, re] of Object.entries(want)) {
    assert.match(got[path] ?? '', re, `${path}: Content-Type ${JSON.stringify(got[path])}`);
  }
});
