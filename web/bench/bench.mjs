// Browser benchmark (not a test): the wasm engine in headless Debian Chromium against the
// native engine (tract, same models, same photo), run side by side in one script.
//   node web/bench/bench.mjs            (after bash web/build.sh and cargo build --release)
// Prints: detect + align + embed on a 640x480 one-face photo, SearchFaces and
// SearchFacesByImage over 10k and 100k stored faces, cold start, and bundle sizes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { serve, launchChromium, HARNESS, WEB, REPO, SHARED_DATA } from '../test/server.mjs';

const FACES = path.join(SHARED_DATA, 'faces');
const PHOTO = process.argv[2] ?? path.join(FACES, 'identities', 'obama', 'obama.jpg');
const SIZES = (process.env.BENCH_SIZES ?? '10000,100000').split(',').map(Number);
const ITER = 15;
const bin = (name) => path.join(REPO, 'target', 'release', name);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-bench-'));

const server = await serve(
  { '/dist/': path.join(WEB, 'dist'), '/data/': FACES, '/tmp/': tmp, '/photo/': path.dirname(PHOTO) },
  { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } },
);
const browser = await launchChromium();
const page = await browser.context.newPage();
const cdp = await browser.context.newCDPSession(page);
await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });

// Cold start: a fresh page until Likeness.open resolves (fetch + compile + model load + open).
await page.goto(`${server.origin}/pages/harness.html`);
await page.waitForFunction('window.harnessReady === true');
const cold = await page.evaluate(async () => {
  const t = performance.now();
  const l = await Likeness.open({ database: null, worker: true });
  const total = performance.now() - t;
  const timings = l.timings;
  l.close();
  return { total, ...timings };
});

// The 640x480 photo: centre crop of a real one, as JPEG bytes, shared with the native run.
const photo = await page.evaluate(async (url) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const scale = Math.max(640 / img.naturalWidth, 480 / img.naturalHeight);
  const c = new OffscreenCanvas(640, 480);
  const w = img.naturalWidth * scale;
  const h = img.naturalHeight * scale;
  c.getContext('2d').drawImage(img, (640 - w) / 2, (480 - h) / 2, w, h);
  const blob = await c.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
  return Array.from(new Uint8Array(await blob.arrayBuffer()));
}, `/photo/${path.basename(PHOTO)}`);
const photoPath = path.join(tmp, 'photo-640x480.jpg');
fs.writeFileSync(photoPath, Buffer.from(photo));

const native = JSON.parse(execFileSync(bin('likeness'), ['bench', '--image', photoPath, '--iterations', String(ITER)], { encoding: 'utf8' }));

// In the page: the same photo as RGBA (no decode, like the native loop), engine on this thread.
const wasm = await page.evaluate(async (iter) => {
  const likeness = await Likeness.open({ database: null, worker: false });
  const bytes = await fetchBytes('/tmp/photo-640x480.jpg');
  const rgba = await rgbaOf('/tmp/photo-640x480.jpg');
  await likeness.createCollection({ collectionId: 'empty' });
  const time = (f) => medianMs(f, iter);
  const faces = (await likeness.detectFaces({ image: rgba })).faceDetails.length;
  const detect = await time(() => likeness.detectFaces({ image: rgba }));
  const full = await time(() => likeness.searchFacesByImage({ collectionId: 'empty', image: rgba }));
  const jpeg = await time(() => likeness.searchFacesByImage({ collectionId: 'empty', image: bytes }));
  likeness.close();
  const worker = await Likeness.open({ database: null, worker: true });
  await worker.createCollection({ collectionId: 'empty' });
  const inWorker = await time(() => worker.searchFacesByImage({ collectionId: 'empty', image: rgba }));
  worker.close();
  return { faces, detect, full, jpeg, inWorker };
}, ITER);

// Search over N stored faces: the native example writes the collection and times SearchFaces;
// the page imports the same bytes into an in-memory engine and times the same calls.
const search = [];
for (const n of SIZES) {
  const prefix = path.join(tmp, `synthetic-${n}`);
  const nat = JSON.parse(execFileSync(bin('examples/synthetic_collection'), [String(n), prefix], { encoding: 'utf8' }));
  const urls = nat.chunks.map((c) => `/tmp/${path.basename(c)}`);
  const res = await page.evaluate(
    async ({ urls, ids, iter }) => {
      const likeness = await Likeness.open({ database: null, worker: true });
      const t = performance.now();
      for (const url of urls) await likeness.importChanges({ collectionId: 'synthetic', changes: await fetchBytes(url) });
      const importMs = performance.now() - t;
      const bytes = await fetchBytes('/tmp/photo-640x480.jpg');
      const times = [];
      for (const id of ids) {
        const s = performance.now();
        await likeness.searchFaces({ collectionId: 'synthetic', faceId: id });
        times.push(performance.now() - s);
      }
      const byImage = [];
      for (let i = 0; i < Math.min(iter, 7); i++) {
        const s = performance.now();
        await likeness.searchFacesByImage({ collectionId: 'synthetic', image: bytes });
        byImage.push(performance.now() - s);
      }
      const faceCount = (await likeness.describeCollection({ collectionId: 'synthetic' })).faceCount;
      likeness.close();
      const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      return { importMs, searchFaces: med(times), byImage: med(byImage), faceCount };
    },
    { urls, ids: nat.probe_face_ids, iter: ITER },
  );
  for (const c of nat.chunks) fs.rmSync(c);
  search.push({ n, nat, res });
}

await browser.close();
await server.close();

const size = (f) => {
  const b = fs.readFileSync(f);
  return { raw: b.length, gzip: zlib.gzipSync(b, { level: 9 }).length };
};
const dist = path.join(WEB, 'dist');
const files = {
  'wasm/likeness_wasm_bg.wasm': size(path.join(dist, 'wasm/likeness_wasm_bg.wasm')),
  'models (3 .onnx)': ['blazeface-short.onnx', 'blazeface-full.onnx', 'faceapi-resnet.onnx']
    .map((m) => size(path.join(dist, 'models', m)))
    .reduce((a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip })),
  'js (package + glue)': [...fs.readdirSync(dist).filter((f) => f.endsWith('.js')).map((f) => path.join(dist, f)), path.join(dist, 'wasm/likeness_wasm.js')]
    .map(size)
    .reduce((a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip })),
};
const total = Object.values(files).reduce((a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip }));
fs.rmSync(tmp, { recursive: true, force: true });

const f = (x) => x.toFixed(1);
console.log(`Likeness in headless Chromium (wasm32 + simd128, one thread) vs native tract, same run`);
console.log(`photo: ${path.basename(PHOTO)} centre-cropped to 640x480, ${wasm.faces} face, median of ${ITER}\n`);
console.log(`| step | wasm ms | native ms | wasm / native |`);
console.log(`|---|---|---|---|`);
console.log(`| detect (DetectFaces, RGBA in) | ${f(wasm.detect)} | ${f(native.detect_median_ms)} | ${(wasm.detect / native.detect_median_ms).toFixed(2)}x |`);
console.log(`| detect + align + embed (SearchFacesByImage, empty collection, RGBA in) | ${f(wasm.full)} | ${f(native.median_ms)} | ${(wasm.full / native.median_ms).toFixed(2)}x |`);
console.log(`| same, JPEG bytes in (decode included) | ${f(wasm.jpeg)} | | |`);
console.log(`| same, through the Web Worker | ${f(wasm.inWorker)} | | |`);
for (const { n, nat, res } of search) {
  console.log(`| SearchFaces over ${n} faces | ${f(res.searchFaces)} | ${nat.native_search_faces_ms.toFixed(2)} | ${(res.searchFaces / nat.native_search_faces_ms).toFixed(2)}x |`);
  console.log(`| SearchFacesByImage over ${n} faces (worker, JPEG) | ${f(res.byImage)} | | |`);
  console.log(`| importChanges of ${n} faces (${(nat.bytes / 1e6).toFixed(1)} MB) | ${f(res.importMs)} | | |`);
  if (res.faceCount !== n) throw new Error(`imported ${res.faceCount} of ${n} faces`);
}
console.log(`\ncold start (fetch + compile + model load + open, worker): ${f(cold.total)} ms (fetch ${f(cold.fetchMs)} ms, init ${f(cold.initMs)} ms); native model load ${f(native.model_load_ms)} ms`);
console.log(`\n| bundle | raw bytes | gzip -9 bytes |`);
console.log(`|---|---|---|`);
for (const [k, v] of Object.entries({ ...files, total })) console.log(`| ${k} | ${v.raw.toLocaleString('en')} | ${v.gzip.toLocaleString('en')} |`);
