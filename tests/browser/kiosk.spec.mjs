/* SPDX-License-Identifier: AGPL-3.0-or-later */
// The entrance screen in a real browser: a screen address made with portierctl, opened with
// no login; a tap at the door changes the people count on it through its Server-Sent Events
// stream, without a reload.
import assert from 'node:assert/strict';
import { join } from 'node:path';

import {
  ARTIFACTS, assertNoErrors, ctl, ctlText, markDocument, newPage, scenario, stillSameDocument,
  visit,
} from './common.mjs';

function newScreen(label) {
  const m = /(\/kiosk\/[A-Za-z0-9_-]{43})/.exec(ctlText('kiosk', 'add', label));
  assert.ok(m, 'portierctl kiosk add prints the address');
  return m[1];
}

scenario('1. a tap at the door changes the people count on the screen, live', async () => {
  const path = newScreen('browser test');
  const page = await newPage({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await visit(page, path);
  assert.equal(await page.locator('body.kiosk').count(), 1);
  const count = async () => Number(await page.locator('#k-present').innerText());
  const before = await count();
  await markDocument(page);
  // Bob comes in: the daemon counts him, and the screen says so.
  const t0 = Date.now();
  const tap = ctl('sim', 'tap', '--reader', 'front', '04B0B0B0');
  assert.equal(tap.granted, true, JSON.stringify(tap));
  await page.waitForFunction((n) => Number(document.getElementById('k-present').textContent) === n,
    before + 1, { timeout: 20000, polling: 20 });
  const ms = Date.now() - t0;
  console.log(`# the people count changed ${ms} ms after the tap was answered`);
  assert.ok(await stillSameDocument(page), 'updated without a reload');
  assert.equal(await page.locator('#k-state').getAttribute('class'), 'state open');
  await page.screenshot({ path: join(ARTIFACTS, 'en-1280-kiosk-live.png'), fullPage: true });
  // The machines' states are there, and no names (kiosk_names is off).
  assert.match(await page.locator('.k-machines').innerText(), /laser/);
  assert.doesNotMatch(await page.locator('main').innerText(), /Alice|Bob/);
  assertNoErrors(page);
});

scenario('2. a removed screen address stops working', async () => {
  const path = newScreen('to remove');
  const page = await newPage();
  await visit(page, path);
  const id = ctl('kiosk', 'list').find((k) => k.label === 'to remove').id;
  ctl('kiosk', 'remove', String(id));
  await visit(page, path, 404);
});
