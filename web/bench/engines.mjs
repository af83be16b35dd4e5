// Browser-engine benchmark (not a test): the package in each engine of the test matrix
// (Debian's Chromium, Firefox ESR and WebKitGTK; web/test/browsers.mjs), side by side with
// the native engine (tract, same models, same photo) as the peer, in one run.
//   node web/bench/engines.mjs      (after bash web/build.sh and cargo build --release)
// Prints per engine: Likeness.open (fetch + compile, then model set-up; no model cache), DetectFaces
// and detect + align + embed (SearchFacesByImage on an empty collection) on a 640x480 one-face
// photo as RGBA on the page's thread, the same through the Worker, and each as a ratio to native;
// and Likeness.open again with the model cache (the embedder prepared on an earlier open).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, HARNESS, WEB, REPO, SHARED_DATA } from '../test/server.mjs';
import { ENGINES, engineMissing, launchBrowser } from '../test/browsers.mjs';

const PHOTO = process.argv[2] ?? path.join(SHARED_DATA, 'faces', 'identities', 'obama', 'obama.jpg');
const ITER = Number(process.env.BENCH_ITER ?? 15);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-engines-'));

// The 640x480 photo: a centre crop of a real one, as PNG (lossless, so every engine and the
// native run see the same pixels whatever their JPEG decoders round to).
const photoPath = path.join(tmp, 'photo-640x480.png');
execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', PHOTO, '-vf', 'scale=640:480:force_original_aspect_ratio=increase,crop=640:480', photoPath]);
const native = JSON.parse(execFileSync(path.join(REPO, 'target', 'release', 'likeness'), ['bench', '--image', photoPath, '--iterations', String(ITER)], { encoding: 'utf8' }));

const server = await serve({ '/dist/': path.join(WEB, 'dist'), '/tmp/': tmp }, { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } });

/** In the page: medians of ITER runs after two warm-ups (the harness's medianMs). */
async function measure(page) {
  return page.evaluate(async (iter) => {
    const time = (f) => medianMs(f, iter);
    const t0 = performance.now();
    const likeness = await Likeness.open({ database: null, worker: false, modelCache: false });
    const open = performance.now() - t0;
    const { fetchMs, initMs } = likeness.timings;
    const rgba = await rgbaOf('/tmp/photo-640x480.png');
    await likeness.createCollection({ collectionId: 'empty' });
    const faces = (await likeness.detectFaces({ image: rgba })).faceDetails.length;
    const detect = await time(() => likeness.detectFaces({ image: rgba }));
    const full = await time(() => likeness.searchFacesByImage({ collectionId: 'empty', image: rgba }));
    likeness.close();
    const worker = await Likeness.open({ database: null, worker: true, modelCache: false });
    await worker.createCollection({ collectionId: 'empty' });
    const inWorker = await time(() => worker.searchFacesByImage({ collectionId: 'empty', image: rgba }));
    worker.close();
    // With the model cache: the first open keeps the prepared embedder, the second uses it.
    (await Likeness.open({ database: 'engines-bench', worker: false })).close();
    const t1 = performance.now();
    const cachedEngine = await Likeness.open({ database: 'engines-bench', worker: false });
    const cached = performance.now() - t1;
    const usedCache = cachedEngine.timings.preparedEmbedder;
    cachedEngine.close();
    return { open, fetchMs, initMs, cached: usedCache ? cached : NaN, faces, detect, full, inWorker };
  }, ITER);
}

const rows = [];
for (const engine of ENGINES) {
  const missing = engineMissing(engine);
  if (missing) {
    console.log(`${engine}: ${missing}`);
    continue;
  }
  const browser = await launchBrowser(engine);
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.origin}/pages/harness.html`);
    await page.waitForFunction('window.harnessReady === true');
    rows.push({ engine: `${engine} ${browser.version}`, ...(await measure(page)) });
    await page.close();
  } finally {
    await browser.close();
  }
}
await server.close();
fs.rmSync(tmp, { recursive: true, force: true });

const f = (x) => x.toFixed(1);
const r = (x, n) => `${(x / n).toFixed(2)}x`;
console.log(`\nLikeness per browser engine (wasm32 + simd128, one thread) vs native tract; ${path.basename(PHOTO)} centre-cropped to 640x480 PNG; median of ${ITER}`);
console.log('| engine | faces | open ms (wasm + models fetched and compiled / model set-up) | open with the model cache ms | DetectFaces ms | detect + align + embed ms | same in the Worker ms | detect / native | full / native |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(`| ${row.engine} | ${row.faces} | ${f(row.open)} (${f(row.fetchMs)} / ${f(row.initMs)}) | ${Number.isNaN(row.cached) ? 'not used' : f(row.cached)} | ${f(row.detect)} | ${f(row.full)} | ${f(row.inWorker)} | ${r(row.detect, native.detect_median_ms)} | ${r(row.full, native.median_ms)} |`);
}
console.log(`| native (tract) | | ${f(native.model_load_ms)} (model load) | | ${f(native.detect_median_ms)} | ${f(native.median_ms)} | | 1.00x | 1.00x |`);
