// Video benchmark (not a test): Likeness's frame path in headless Debian Chromium against
// peers run in the same script, same browser, same frames:
//   - onnxruntime-web (wasm backend) running the same ONNX files: BlazeFace short (detection)
//     and the ResNet embedder, with 1 thread and with 2 (this machine's cores);
//   - @vladmandic/human (tfjs wasm backend): face detection + description on the same frames.
// Then: streaming from a fake camera (640x480, one known face) with the per-stage split, how
// fast a new face is named, and a 60 s stored video with three people.
//   node web/bench/video-bench.mjs     (after bash web/build.sh and cargo build --release
//   --workspace --all-targets; installs its peers into web/bench/node_modules; needs ffmpeg)

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, execSync } from 'node:child_process';
import { serve, launchChromium, HARNESS, WEB, REPO, SHARED_DATA } from '../test/server.mjs';

const BENCH = path.join(WEB, 'bench');
const FACES = path.join(SHARED_DATA, 'faces');
const MAKE_VIDEO = path.join(REPO, 'target', 'release', 'examples', 'synthetic_video');
const FRAMES = 90;
const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

if (!fs.existsSync(path.join(BENCH, 'node_modules', 'onnxruntime-web'))) {
  execSync('npm ci --no-audit --no-fund --loglevel=error', { cwd: BENCH, stdio: 'inherit' });
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-video-bench-'));
const identities = path.join(FACES, 'identities');
execFileSync(MAKE_VIDEO, [path.join(tmp, 'one.y4m'), identities, 'one']);
execFileSync(MAKE_VIDEO, [path.join(tmp, 'camera.y4m'), identities, 'camera']);
execSync(
  `"${MAKE_VIDEO}" - "${identities}" three | ffmpeg -v error -y -f yuv4mpegpipe -i - -c:v libvpx -deadline realtime -cpu-used 8 -b:v 1M "${path.join(tmp, 'three.webm')}"`,
);

const nm = path.join(BENCH, 'node_modules');
const server = await serve(
  {
    '/dist/': path.join(WEB, 'dist'),
    '/data/': FACES,
    '/videos/': tmp,
    '/models/': path.join(REPO, 'models'),
    '/ort/': path.join(nm, 'onnxruntime-web', 'dist'),
    '/human/': path.join(nm, '@vladmandic', 'human'),
    '/tfwasm/': path.join(nm, '@tensorflow', 'tfjs-backend-wasm', 'dist'),
  },
  { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } },
  // Cross-origin isolated, so onnxruntime-web may use threads (SharedArrayBuffer).
  { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
);

async function pageIn(browser) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${server.origin}/pages/harness.html`);
  await page.waitForFunction('window.harnessReady === true');
  return page;
}

/** In the page: a Likeness in its worker with obama, penny and howard enrolled. */
const ENROL = async () => {
  window.lk = await Likeness.open({ database: null });
  await lk.createCollection({ collectionId: 'door' });
  for (const [person, file] of [['obama', 'obama.jpg'], ['penny', 'penny1.png'], ['howard', 'howard1.png']]) {
    const image = await (await fetch(`/data/identities/${person}/${file}`)).blob();
    await lk.indexFaces({ collectionId: 'door', image, externalImageId: person, maxFaces: 1 });
  }
};

/** In the page: FRAMES camera frames as ImageData (the frames every engine is given). */
const GRAB = async (n) => {
  const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  const video = document.createElement('video');
  video.muted = true;
  video.srcObject = camera;
  await video.play();
  const canvas = new OffscreenCanvas(640, 480);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  window.frames640 = [];
  while (window.frames640.length < n) {
    await new Promise((r) => video.requestVideoFrameCallback(r));
    ctx.drawImage(video, 0, 0, 640, 480);
    window.frames640.push(ctx.getImageData(0, 0, 640, 480));
  }
  camera.getTracks().forEach((t) => t.stop());
};

// ---- 1. Same frames, every engine (camera: one known face, moving) ----
const one = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${path.join(tmp, 'one.y4m')}`]);
await one.context.grantPermissions(['camera'], { origin: server.origin });

const likenessPage = await pageIn(one);
await likenessPage.evaluate(ENROL);
await likenessPage.evaluate(GRAB, FRAMES);
const likeness = await likenessPage.evaluate(async () => {
  // The stream over the grabbed frames, one after another (none skipped).
  const per = [];
  const t = performance.now();
  const stream = await lk.startFaceSearchStream({ source: window.frames640, collectionId: 'door', onFrame: (f) => per.push({ ...f.stats, named: f.faceSearchResponse[0]?.matchedFaces[0]?.face.externalImageId ?? null }) });
  await stream.done;
  const wall = performance.now() - t;
  return { per, wall };
});
const plain = likeness.per.filter((f) => f.embedded === 0);
const embeddedFrames = likeness.per.filter((f) => f.embedded > 0);
const lk = {
  image: median(plain.map((f) => f.imageMs)),
  track: median(plain.map((f) => f.trackMs)),
  search: median(plain.map((f) => f.searchMs)),
  perFrame: likeness.wall / likeness.per.length,
  embeddedFrames: embeddedFrames.length,
  named: likeness.per.filter((f) => f.named === 'obama').length,
};
await likenessPage.close();

/** onnxruntime-web with `threads`: detection (letterbox + normalise + run) and one embedding. */
async function ortRun(threads) {
  const page = await pageIn(one);
  await page.evaluate(GRAB, FRAMES);
  const out = await page.evaluate(async (threads) => {
    const ort = await import('/ort/ort.wasm.min.mjs');
    ort.env.wasm.wasmPaths = '/ort/';
    if (threads) ort.env.wasm.numThreads = threads;
    const detector = await ort.InferenceSession.create('/models/blazeface-short.onnx', { executionProviders: ['wasm'] });
    const embedder = await ort.InferenceSession.create('/models/faceapi-resnet.onnx', { executionProviders: ['wasm'] });
    const dims = detector.inputMetadata?.[0]?.shape ?? [1, 128, 128, 3];
    const planar = dims[1] === 3;
    const size = 128;
    const canvas = new OffscreenCanvas(size, size);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const src = new OffscreenCanvas(640, 480);
    const sctx = src.getContext('2d');
    const input = new Float32Array(size * size * 3);
    const pre = [];
    const run = [];
    for (const frame of window.frames640) {
      const t0 = performance.now();
      sctx.putImageData(frame, 0, 0);
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, size, size);
      ctx.drawImage(src, 0, (size - 96) / 2, size, 96); // 640x480 letterboxed into 128x128
      const px = ctx.getImageData(0, 0, size, size).data;
      for (let i = 0, j = 0; i < size * size; i++, j += 4) {
        for (let c = 0; c < 3; c++) input[planar ? c * size * size + i : i * 3 + c] = px[j + c] / 127.5 - 1;
      }
      const tensor = new ort.Tensor('float32', input, planar ? [1, 3, size, size] : [1, size, size, 3]);
      const t1 = performance.now();
      await detector.run({ [detector.inputNames[0]]: tensor });
      const t2 = performance.now();
      pre.push(t1 - t0);
      run.push(t2 - t1);
    }
    const chip = new ort.Tensor('float32', new Float32Array(150 * 150 * 3).fill(128), [1, 150, 150, 3]);
    const embed = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await embedder.run({ [embedder.inputNames[0]]: chip });
      embed.push(performance.now() - t);
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return { pre: median(pre), run: median(run), embed: median(embed.slice(5)), isolated: crossOriginIsolated, threads: ort.env.wasm.numThreads };
  }, threads);
  await page.close();
  return out;
}
/** Likeness's embedder on the same constant crop as onnxruntime-web's (the engine loaded
 * bare in the page, idle otherwise): one network pass, and both (the flip-averaged vector). */
async function likenessEmbedRun() {
  const page = await pageIn(one);
  const out = await page.evaluate(async () => {
    const wasm = await import('/dist/wasm/likeness_wasm.js');
    await wasm.default({ module_or_path: '/dist/wasm/likeness_wasm_bg.wasm' });
    const bytes = async (name) => new Uint8Array(await (await fetch(`/models/${name}`)).arrayBuffer());
    const engine = await wasm.Engine.open(await bytes('blazeface-short.onnx'), await bytes('blazeface-full.onnx'), await bytes('faceapi-resnet.onnx'));
    const chip = new Float32Array(150 * 150 * 3).fill(128);
    const time = (f) => {
      const t = [];
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now();
        f();
        t.push(performance.now() - t0);
      }
      // Medians of runs 6-30: V8 compiles hot wasm functions again, optimised, after a few runs.
      return [...t.slice(5)].sort((a, b) => a - b)[12];
    };
    return { one: time(() => engine.embedChipPass(chip, false)), both: time(() => engine.embedChip(chip)) };
  });
  await page.close();
  return out;
}
const lkEmbed = await likenessEmbedRun();
const ort1 = await ortRun(1);
const ort2 = await ortRun(2);

// @vladmandic/human: face detection + description (its video mode: it re-detects only when
// the frame changes enough, and skips frames by its defaults; that is its frame path).
const humanPage = await pageIn(one);
await humanPage.evaluate(GRAB, FRAMES);
const human = await humanPage.evaluate(async () => {
  const { Human } = await import('/human/dist/human.esm.js');
  const h = new Human({
    backend: 'wasm',
    wasmPath: '/tfwasm/',
    modelBasePath: '/human/models/',
    debug: false,
    async: true,
    face: {
      enabled: true,
      detector: { rotation: false, maxDetected: 5 },
      mesh: { enabled: true },
      iris: { enabled: false },
      description: { enabled: true },
      emotion: { enabled: false },
      antispoof: { enabled: false },
      liveness: { enabled: false },
    },
    body: { enabled: false },
    hand: { enabled: false },
    object: { enabled: false },
    gesture: { enabled: false },
    segmentation: { enabled: false },
    filter: { enabled: false },
  });
  await h.load();
  await h.warmup();
  const per = [];
  let faces = 0;
  const t = performance.now();
  for (const frame of window.frames640) {
    const t0 = performance.now();
    const r = await h.detect(frame);
    per.push(performance.now() - t0);
    faces += r.face.length;
  }
  const wall = performance.now() - t;
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { perFrame: wall / window.frames640.length, median: median(per), faces, backend: h.tf.getBackend() };
});
await humanPage.close();

// ---- 2. Live: the stream on the fake camera (one face), fps and stage split ----
const livePage = await pageIn(one);
await livePage.evaluate(ENROL);
const live = await livePage.evaluate(async () => {
  const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  const per = [];
  const stream = await lk.startFaceSearchStream({ source: camera, collectionId: 'door', onFrame: (f) => per.push(f.stats) });
  await new Promise((r) => setTimeout(r, 10_000));
  const stats = stream.stats;
  await stream.stop();
  camera.getTracks().forEach((t) => t.stop());
  return { stats, frames: per.length };
});
await livePage.close();
await one.close();

// ---- 3. New faces: the camera scene (faces enter at known frames) ----
const cam = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${path.join(tmp, 'camera.y4m')}`]);
await cam.context.grantPermissions(['camera'], { origin: server.origin });
const camPage = await pageIn(cam);
await camPage.evaluate(ENROL);
const fresh = await camPage.evaluate(async () => {
  const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  // Per track: when its first frame was captured, and when a frame first named it.
  const firstSeen = new Map();
  const namedAt = new Map();
  const plain = [];
  const stream = await lk.startFaceSearchStream({
    source: camera,
    collectionId: 'door',
    onFrame: (f) => {
      const now = performance.now();
      const captured = now - f.stats.latencyMs;
      for (const r of f.faceSearchResponse) {
        if (!firstSeen.has(r.index)) firstSeen.set(r.index, captured);
        if (r.matchedFaces.length > 0 && !namedAt.has(r.index)) namedAt.set(r.index, now);
      }
      if (f.stats.embedded === 0) plain.push(f.stats);
    },
  });
  // Let the embedder worker load first (it starts with the stream), then count.
  await new Promise((r) => setTimeout(r, 12_000));
  const stats = stream.stats;
  await stream.stop();
  camera.getTracks().forEach((t) => t.stop());
  // The first 3 s are the embedder worker's start-up (this thread embeds meanwhile): skip them.
  const start = [...firstSeen.values()][0] + 3000;
  const delays = [...namedAt].filter(([i]) => firstSeen.get(i) > start).map(([i, t]) => t - firstSeen.get(i));
  return { delays, plain, stats };
});
await camPage.close();

// ---- 4. Stored video: 60 s, 640x480, 30 fps, three known people and a stranger ----
const storedPage = await pageIn(cam);
await storedPage.evaluate(ENROL);
const stored = await storedPage.evaluate(async () => {
  const runs = {};
  for (const embedIn of ['thread', 'worker']) {
    const out = await lk.startFaceSearch({ video: '/videos/three.webm', collectionId: 'door', embedIn });
    const names = {};
    for (const p of out.persons) {
      const n = p.faceMatches[0]?.face.externalImageId ?? 'unmatched';
      names[n] = (names[n] ?? 0) + 1;
    }
    runs[embedIn] = { stats: out.stats, meta: out.videoMetadata, names, entries: out.persons.length };
  }
  return runs;
});
await storedPage.close();
await cam.close();
await server.close();
fs.rmSync(tmp, { recursive: true, force: true });

// ---- Report ----
const lkDetect = lk.image + lk.track;
const ortDetect1 = ort1.pre + ort1.run;
const ortDetect2 = ort2.pre + ort2.run;
const named = median(fresh.delays) + 1000 / 30;
console.log(`Video benchmark, headless Chromium, ${os.cpus().length} cores, ${FRAMES} frames of 640x480 with one known face (the same frames for every engine)`);
console.log('');
console.log('Per frame, same frames (ms, median):');
console.log(`  Likeness stream, worker: pixels ${f1(lk.image)} + detect+track ${f1(lk.track)} + search ${f1(lk.search)}; wall ${f1(lk.perFrame)} per frame (${f1(1000 / lk.perFrame)} fps, every frame, ${lk.named}/${FRAMES} named obama)`);
console.log(`  onnxruntime-web 1 thread : BlazeFace preprocess ${f1(ort1.pre)} + run ${f1(ort1.run)} = ${f1(ortDetect1)}; embedder run ${f1(ort1.embed)}`);
console.log(`  onnxruntime-web 2 threads: BlazeFace preprocess ${f1(ort2.pre)} + run ${f1(ort2.run)} = ${f1(ortDetect2)}; embedder run ${f1(ort2.embed)} (cross-origin isolated: ${ort2.isolated})`);
console.log(`  @vladmandic/human (${human.backend}): ${f1(human.median)} median, ${f1(human.perFrame)} mean per frame (detect + mesh + description, its frame skipping on), ${human.faces} faces over ${FRAMES} frames`);
console.log(`  ratio Likeness detect+track (with pixels) / onnxruntime-web detect: ${(lkDetect / ortDetect1).toFixed(2)} (1 thread), ${(lkDetect / ortDetect2).toFixed(2)} (2 threads)`);
console.log(`  ratio Likeness per-frame wall / human per-frame wall: ${(lk.perFrame / human.perFrame).toFixed(2)}`);
console.log(`  embedding one face, idle page, same constant crop: Likeness one run ${f1(lkEmbed.one)}, two (flip-averaged) ${f1(lkEmbed.both)}; onnxruntime-web one run ${f1(ort1.embed)} (1 thread), ${f1(ort2.embed)} (2 threads); ratio Likeness / onnxruntime-web one run ${(lkEmbed.one / ort1.embed).toFixed(2)} (1 thread), ${(lkEmbed.one / ort2.embed).toFixed(2)} (2 threads)`);
console.log('');
console.log(`Live, fake camera 30 fps, one known face, 10 s: ${f1(live.stats.fps)} fps (ratio to the camera ${(live.stats.fps / 30).toFixed(2)}), ${live.stats.framesDropped} frames skipped`);
console.log(`  median ms: pixels ${f1(live.stats.imageMs)}, detect+track(+embed where due) ${f1(live.stats.trackMs)}, search ${f1(live.stats.searchMs)}, capture to answer ${f1(live.stats.latencyMs)}`);
console.log(`New faces (camera scene, ${fresh.delays.length} new named tracks after the embedder worker loaded): named ${f1(named)} ms (median) after first appearance (first capture to first named answer, plus one frame); in the embedder worker, median: first pass (names it) ${f1(fresh.stats.embedMs)} ms (running ${f1(fresh.stats.embedRunMs)} ms of it, the rest waiting behind another face's pass), both passes (the flip-averaged vector) ${f1(fresh.stats.fullEmbedMs)} ms; search ${f1(fresh.stats.searchMs)} ms`);
console.log(`  live detect+track on frames without a new face: ${f1(median(fresh.plain.map((s) => s.trackMs)))} ms median`);
console.log('');
for (const [embedIn, run] of Object.entries(stored)) {
  console.log(
    `Stored video, embeddings on the ${embedIn === 'worker' ? 'embedder worker' : "engine's thread"}: ${run.meta.durationMillis / 1000} s ${run.meta.frameWidth}x${run.meta.frameHeight} ${run.meta.codec} at ${run.meta.frameRate} fps, ` +
      `${run.stats.framesProcessed} frames sampled (10/s) via ${run.stats.decoder}: ${(run.stats.elapsedMillis / 1000).toFixed(1)} s, ` +
      `${run.stats.secondsPerVideoSecond.toFixed(3)} s per video second (${(1 / run.stats.secondsPerVideoSecond).toFixed(1)}x real time); person entries by match ${JSON.stringify(run.names)}`,
  );
}
