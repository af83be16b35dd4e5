// The app's smoke path in every engine of the browser matrix (web/test/browsers.mjs: Debian's
// Chromium, Firefox ESR and WebKitGTK), each against its own likeness-server (`--app
// www/dist`, SQLite): load, enrol people from dropped photos, search by a photo never
// enrolled, open it again, then stop the server and open it again: the service worker starts the app
// offline with everything still there and matching. Only the page's public surface is used
// (the drop zone and the file input, fed through the DOM), so WebDriver engines run it as
// Chromium does. The live view runs on the engine's own fake camera where its test tooling
// has one (not WebKitGTK); enrolment from a camera with faces is in app.test.mjs (Chromium:
// it fakes a camera from a file).
// Needs www/dist (npm run build), target/release/likeness-server and ../shared/data/faces.

import { before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, SERVER } from '../../web/test/server.mjs';
import { ENGINES, engineMissing, launchBrowser, toolingSkip, matrixTest } from '../../web/test/browsers.mjs';

const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FACES = path.resolve(WWW, '..', '..', 'shared', 'data', 'faces');
const IDS = path.join(FACES, 'identities');
const skip = fs.existsSync(IDS) ? false : `SKIP: ${FACES} is absent; the app tests need ../shared/data`;

/** Wait in the page until `expression` (a JS expression) is truthy. */
const until = (page, expression, timeout = 60_000) => page.waitForFunction(expression, null, { timeout });

/** Put image files in the page and hand them to the app: dropped on the drop zone under `name`, or chosen in `input`. */
async function give(page, files, { name = null, input = null } = {}) {
  const payload = files.map((f) => ({ name: path.basename(f), b64: fs.readFileSync(path.join(IDS, f)).toString('base64') }));
  await page.evaluate(
    ({ payload, name, input }) => {
      const dt = new DataTransfer();
      for (const { name, b64 } of payload) {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        dt.items.add(new File([bytes], name, { type: name.endsWith('.png') ? 'image/png' : 'image/jpeg' }));
      }
      if (input) {
        const el = document.querySelector(input);
        el.files = dt.files;
        el.dispatchEvent(new Event('change', { bubbles: true }));
        return;
      }
      const field = document.querySelector('#photo-name');
      field.value = name;
      field.dispatchEvent(new Event('input', { bubbles: true }));
      document.querySelector('.drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    },
    { payload, name, input },
  );
}

let visits = 0;
/**
 * Open the app again in `page`: a new navigation (a fresh query string), which the service
 * worker answers like a reload. WebDriver's Refresh in Firefox bypasses service workers, so
 * it would not show what a person reopening the app gets.
 */
async function reopen(page, origin) {
  visits += 1;
  await page.goto(`${origin}/?visit=${visits}#people`);
  await until(page, "document.body.dataset.ready === 'true'", 120_000);
}

const PEOPLE = "[...document.querySelectorAll('.person:not(.unknown)')].map((e) => [e.dataset.person, e.querySelectorAll('.face').length]).sort()";

/** The people listed become `expected` (the list is redrawn as the app refreshes it). */
async function expectPeople(page, expected) {
  await until(page, `JSON.stringify(${PEOPLE}) === ${JSON.stringify(JSON.stringify(expected))}`, 30_000).catch(() => {});
  assert.deepEqual(await page.evaluate(`(${PEOPLE})`), expected);
}

for (const engine of ENGINES) {
  describe(engine, { skip: skip || engineMissing(engine) }, () => {
    let tmp, server, origin, browser;
    const test = matrixTest(engine);
    before(async () => {
      for (const [file, how] of [[path.join(WWW, 'dist', 'index.html'), 'cd www && npm run build'], [SERVER, 'cargo build --release']]) {
        assert.ok(fs.existsSync(file), `${file} is missing: ${how}`);
      }
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), `likeness-app-${engine}-`));
      ({ process: server, url: origin } = await startServer(tmp, ['--app', path.join(WWW, 'dist')]));
      browser = await launchBrowser(engine);
    });
    after(async () => {
      await browser?.close();
      server?.kill('SIGKILL');
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test("the live view runs on the engine's fake camera", { skip: toolingSkip(engine, 'camera'), timeout: 300_000 }, async () => {
      // A profile of its own that allows the camera: Chromium's and Firefox's generated
      // pictures (no faces in them; the faces are in app.test.mjs, Chromium's file camera).
      const camera = await launchBrowser(engine, { camera: 'allow' });
      try {
        await camera.grantCamera(origin);
        const page = await camera.context.newPage();
        await page.goto(`${origin}/#live`);
        await until(page, "document.body.dataset.ready === 'true'", 120_000);
        const button = "[...document.querySelectorAll('#live button')].find((b) => /camera$/.test(b.textContent) && b.textContent !== 'Switch camera')";
        // Started by itself where the permission reads granted; else by its button.
        await until(page, `${button}?.textContent === 'Stop camera'`, 5_000).catch(() => page.evaluate(`${button}.click()`));
        await until(page, `${button}?.textContent === 'Stop camera'`, 30_000);
        await page.evaluate("document.querySelector('#show-stats').click()");
        await until(page, "/[1-9][0-9.]* fps/.test(document.querySelector('.stats')?.textContent ?? '')", 30_000);
        const stats = await page.evaluate("document.querySelector('.stats').textContent");
        // Not asserted: Chromium's generated picture (a turning pattern and a clock) makes
        // BlazeFace see a face in it now and then (seen twice on 2026-12-01, on main before and
        // after the landmark change alike); recognition is tested on real faces in app.test.mjs.
        const listed = await page.evaluate("document.querySelectorAll('.live-faces li').length");
        console.log(`# ${engine} live view on its fake camera: ${stats}; ${listed} face(s) listed in the generated picture`);
        await page.evaluate(`${button}.click()`);
        await until(page, `${button}?.textContent === 'Start camera'`, 10_000);
        await page.close();
      } finally {
        await camera.close();
      }
    });

    test('load, enrol from photos, search, reopen, then offline from the service worker', { timeout: 600_000 }, async () => {
      const page = await browser.context.newPage();
      const started = Date.now();
      await page.goto(`${origin}/#people`);
      await until(page, "document.body.dataset.ready === 'true'", 120_000);
      const ready = (Date.now() - started) / 1000;

      const faces = (person, n) => `document.querySelectorAll('.person[data-person="${person}"] .face').length === ${n}`;
      await give(page, ['penny/penny1.png', 'penny/penny3.png'], { name: 'Penny' });
      await until(page, faces('Penny', 2));
      await give(page, ['sheldon/sheldon1.png', 'sheldon/sheldon2.png'], { name: 'Sheldon Cooper' });
      await until(page, faces('Sheldon Cooper', 2));
      const expected = [['Penny', 2], ['Sheldon Cooper', 2]];
      await expectPeople(page, expected);

      // A photo never enrolled finds its person.
      await give(page, ['penny/penny2.png'], { input: '#search-photo' });
      await until(page, `document.querySelector('.search-results li[data-name="Penny"]')`);

      // Opened again: everything is still there.
      await reopen(page, origin);
      await until(page, `document.querySelector('.person[data-person="Sheldon Cooper"]')`);
      await expectPeople(page, expected);

      // Offline: the server is gone; the service worker starts the app from its cache.
      await until(page, 'navigator.serviceWorker.controller != null', 60_000);
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
      const offlineStart = Date.now();
      await reopen(page, origin);
      await until(page, `document.querySelector('.person[data-person="Sheldon Cooper"]')`);
      await expectPeople(page, expected);
      await give(page, ['sheldon/sheldon4.png'], { input: '#search-photo' });
      await until(page, `document.querySelector('.search-results li[data-name="Sheldon Cooper"]')`);
      console.log(`# ${engine} ${browser.version}: ready in ${ready.toFixed(1)} s (cold), offline reopen to matching in ${((Date.now() - offlineStart) / 1000).toFixed(1)} s`);
      await page.close();
    });
  });
}
