/* SPDX-License-Identifier: AGPL-3.0-or-later */
// What the browser tests share: the environment run_browser_tests.py sets, Chromium, pages
// that collect their script errors, scenarios that screenshot what was open when they fail,
// portierctl, logging in, and local dates of the site (Europe/Paris).
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
export const URL = env('PORTIER_URL');
const CTL = env('PORTIERCTL');
const SOCKET = env('PORTIER_SOCKET');
export const PASSWORD = env('PORTIER_PASSWORD');
const CHROMIUM = process.env.PORTIER_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = env('PORTIER_ARTIFACTS');
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

export function ctl(...args) {
  return JSON.parse(execFileSync(CTL, ['-s', SOCKET, ...args, '--json'], { encoding: 'utf8' }));
}

export function ctlText(...args) {
  return execFileSync(CTL, ['-s', SOCKET, ...args], { encoding: 'utf8' });
}

export function booking(id) {
  const b = ctl('booking', 'list', '--all').find((x) => x.id === id);
  assert.ok(b, `portierctl booking list --all has no booking ${id}`);
  return b;
}

// The site's time zone (Europe/Paris): "YYYY-MM-DDTHH:MM", as the forms write times.
const parisFmt = new Intl.DateTimeFormat('sv-SE', {
  timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
export const localTime = (epoch) => parisFmt.format(new Date(epoch * 1000)).replace(' ', 'T');
export const today = () => localTime(Date.now() / 1000).slice(0, 10);

// "YYYY-MM-DD" plus n days (calendar arithmetic, no time zone involved).
export function addDays(date, n) {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// A page in its own context (cookies, viewport, locale: fr-FR sends Accept-Language fr).
export async function newPage(options = {}) {
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
export function scenario(name, fn) {
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

export async function visit(page, path, status = 200) {
  const response = await page.goto(URL + path);
  assert.equal(response.status(), status, `GET ${path}: status ${response.status()}`);
  return response;
}

export async function h1(page) {
  return (await page.locator('h1').innerText()).trim();
}

// Log in through the form, whatever the page's language (fields by name).
export async function login(page, name, landing) {
  await visit(page, '/login');
  await page.locator('input[name=name]').fill(name);
  await page.locator('input[name=password]').fill(PASSWORD);
  await Promise.all([
    page.waitForURL(URL + landing),
    page.locator('form[action="/login"] button[type=submit]').click(),
  ]);
  assert.equal(await page.locator('form[action="/logout"] button').count(), 1,
    `not logged in on ${page.url()}`);
}

// No script errors, CSP violations or refused assets (Chromium reports them on the console).
export function assertNoErrors(page) {
  assert.deepEqual([...new Set(page.errors)], [], `errors on ${page.url()}`);
}

// Marks the document: still marked later means no full reload happened in between.
export async function markDocument(page) {
  await page.evaluate(() => { window.portierNoReload = true; });
}

export async function stillSameDocument(page) {
  return page.evaluate(() => window.portierNoReload === true);
}

// Layout faults, evaluated in the page (page.evaluate(layoutFaults, width)): elements sticking
// out of the viewport (outside the horizontally scrolling .table boxes), a checkbox or radio
// button apart from its label's text.
export function layoutFaults(width) {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.table')) continue;
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 1) {
      out.push(`${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''} right=${Math.round(r.right)}`);
    }
  }
  // A checkbox or radio button sits on the line of its label's text, not above it.
  for (const input of document.querySelectorAll('label input[type=checkbox], label input[type=radio]')) {
    const range = document.createRange();
    range.selectNodeContents(input.closest('label'));
    range.setStartAfter(input);
    const text = range.getClientRects()[0];
    const box = input.getBoundingClientRect();
    if (text && Math.abs((text.top + text.bottom) / 2 - (box.top + box.bottom) / 2) > text.height / 2) {
      out.push(`${input.type} ${input.name} not beside its label text`);
    }
  }
  return { scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 10) };
}
