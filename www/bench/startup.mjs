// App start-up benchmark (not a test): the www/ app served by a real likeness-server, in
// headless Debian Chromium with a fake camera showing one enrolled face all the time
// (synthetic_video's `one` scene). Prints, as medians over RUNS reloads:
//   - the app, cached (service worker): page start to the first live match, and to ready;
//   - the peer, the package alone on a bare page (no app; its prepared-embedder cache warm): page start to
//     `Likeness.open()` resolved, the floor any app on this engine starts from;
// and their ratio; plus the cold first visit. Needs www/dist, web/dist and
// target/release/{likeness-server, examples/synthetic_video}.
//   node www/bench/startup.mjs

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serve, launchChromium, startServer, HARNESS, WEB, SHARED_DATA } from '../../web/test/server.mjs';

const RUNS = Number(process.env.RUNS ?? 7);
const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(WWW, '..');
const IDS = path.join(SHARED_DATA, 'faces', 'identities');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-startup-'));
const y4m = path.join(tmp, 'one.y4m');
execFileSync(path.join(REPO, 'target', 'release', 'examples', 'synthetic_video'), [y4m, IDS, 'one']);
const { process: server, url: origin } = await startServer(tmp, ['--app', path.join(WWW, 'dist')]);
const bare = await serve({ '/dist/': path.join(WEB, 'dist') }, { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } });

const browser = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`]);
try {
  await browser.context.grantPermissions(['camera'], { origin });
  const page = await browser.context.newPage();
  let t = Date.now();
  await page.goto(`${origin}/#people`);
  await page.waitForSelector('body[data-ready=true]', { timeout: 120_000 });
  const cold = Date.now() - t;
  await page.waitForFunction(() => navigator.serviceWorker.controller != null);
  // Enrol obama from two photos (the camera shows obama2.jpg, not one of them).
  fs.mkdirSync(path.join(tmp, 'photos', 'obama'), { recursive: true });
  for (const f of ['obama.jpg', 'obama3.jpg']) fs.copyFileSync(path.join(IDS, 'obama', f), path.join(tmp, 'photos', 'obama', f));
  await page.setInputFiles('#photo-folder', path.join(tmp, 'photos'));
  await page.waitForSelector('.person[data-person=obama]', { timeout: 60_000 });

  await page.goto('about:blank');
  const app = { match: [], ready: [], engine: [] };
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${origin}/#live`);
    await page.waitForSelector('.live-faces li[data-name=obama]', { timeout: 30_000 });
    app.match.push(await page.$eval('#live', (el) => Number(el.dataset.firstMatchMs)));
    await page.waitForSelector('body[data-ready=true]');
    app.ready.push(await page.evaluate(() => performance.now()));
    app.engine.push(await page.$eval('body', (el) => el.dataset.engineMs));
    await page.goto('about:blank');
  }
  const peer = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${bare.origin}/pages/harness.html`);
    await page.waitForFunction('window.harnessReady === true');
    peer.push(await page.evaluate(async () => {
      const lk = await Likeness.open({ database: 'startup-bench-peer' });
      const at = performance.now();
      lk.close();
      return at;
    }));
  }
  const m = median(app.match), r = median(app.ready), p = median(peer);
  console.log(`cold first visit (empty cache): ready in ${(cold / 1000).toFixed(2)} s`);
  console.log(`app, cached, ${RUNS} reloads: first live match ${(m / 1000).toFixed(2)} s after page start (runs: ${app.match.map((x) => (x / 1000).toFixed(2)).join(' ')}); ready ${(r / 1000).toFixed(2)} s; engine fetch+compile / model set-up ms: ${app.engine.join(' ')}`);
  console.log(`peer, the package alone on a bare page: Likeness.open() done ${(p / 1000).toFixed(2)} s after page start (runs: ${peer.map((x) => (x / 1000).toFixed(2)).join(' ')})`);
  console.log(`ratio, app first match / package open: ${(m / p).toFixed(2)}`);
} finally {
  await browser.close();
  server.kill('SIGKILL');
  await bare.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
