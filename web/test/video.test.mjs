// Streaming face search in real headless Chromium through a fake camera: a Y4M video built
// from the faces/ photos (target/release/examples/synthetic_video: obama moving alone, then
// penny beside raj, who is never enrolled; looped by Chromium) fed to getUserMedia. The
// stream names the enrolled people, keeps a track's name and index while it moves, reports
// the stranger unmatched, ends tracks that leave, and rejects `done` when the camera stops.
// Needs web/dist, the example binary and ../shared/data/faces.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, launchChromium, HARNESS, WEB, REPO, SHARED_DATA } from './server.mjs';

const FACES = path.join(SHARED_DATA, 'faces');
const HAVE_DATA = fs.existsSync(path.join(FACES, 'identities'));
const skip = HAVE_DATA ? false : `SKIP: ${FACES} is absent; the video tests need ../shared/data`;
const MAKE_VIDEO = path.join(REPO, 'target', 'release', 'examples', 'synthetic_video');

let web;
let browser;
let tmp;

before(async () => {
  if (!HAVE_DATA) return;
  assert.ok(fs.existsSync(MAKE_VIDEO), 'target/release/examples/synthetic_video is missing: cargo build --release --workspace --all-targets');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-video-'));
  const video = path.join(tmp, 'camera.y4m');
  execFileSync(MAKE_VIDEO, [video, path.join(FACES, 'identities')]);
  web = await serve({ '/dist/': path.join(WEB, 'dist'), '/data/': FACES }, {
    '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS },
  });
  browser = await launchChromium([
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    `--use-file-for-fake-video-capture=${video}`,
  ]);
  await browser.context.grantPermissions(['camera'], { origin: web.origin });
});

after(async () => {
  await browser?.close();
  await web?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('a fake camera: enrolled people named, tracks keep their names, the stranger unmatched, tracks end', { skip, timeout: 300_000 }, async () => {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${web.origin}/pages/harness.html`);
  await page.waitForFunction('window.harnessReady === true');
  const run = await page.evaluate(async () => {
    const lk = await Likeness.open({ database: null });
    await lk.createCollection({ collectionId: 'door' });
    for (const [person, file] of [['obama', 'obama.jpg'], ['penny', 'penny1.png'], ['howard', 'howard1.png']]) {
      const image = await (await fetch(`/data/identities/${person}/${file}`)).blob();
      await lk.indexFaces({ collectionId: 'door', image, externalImageId: person, maxFaces: 1 });
    }
    const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    const frames = [];
    const stream = await lk.startFaceSearchStream({
      source: camera,
      collectionId: 'door',
      faceMatchThreshold: 80,
      onFrame: (f) =>
        frames.push({
          timestamp: f.timestamp,
          ended: f.ended,
          faces: f.faceSearchResponse.map((r) => ({ index: r.index, name: r.matchedFaces[0]?.face.externalImageId ?? null })),
          stats: f.stats,
        }),
    });
    // Two loops of the 4 s video.
    await new Promise((r) => setTimeout(r, 9000));
    const stats = stream.stats;
    const facesSoFar = frames.reduce((n, f) => n + f.faces.length, 0);
    const persons = await stream.persons({ sortBy: 'INDEX' });
    // The camera stops: the stream says so.
    camera.getVideoTracks()[0].stop();
    const ended = await stream.done.then(() => 'resolved', (e) => e.name);
    const faceCount = (await lk.describeCollection({ collectionId: 'door' })).faceCount;
    return { frames, stats, persons: persons.length, facesSoFar, ended, faceCount };
  });
  console.log(
    `fake camera: ${run.frames.length} frames processed in 9 s, ${run.stats.fps.toFixed(1)} fps sustained, ` +
      `${run.stats.framesDropped} skipped while busy; median ${run.stats.trackMs.toFixed(1)} ms detect+track(+embed), ` +
      `${run.stats.searchMs.toFixed(1)} ms search`,
  );
  assert.ok(run.frames.length >= 60, `frames processed: ${run.frames.length}`);

  // Names per track never change, and each track is named from its first frame.
  const names = new Map();
  for (const f of run.frames) {
    for (const face of f.faces) {
      if (!names.has(face.index)) names.set(face.index, face.name);
      assert.equal(face.name, names.get(face.index), `track ${face.index} changed from ${names.get(face.index)} to ${face.name}`);
    }
  }
  const named = [...names.values()];
  assert.ok(named.includes('obama') && named.includes('penny'), `names: ${named}`);
  // obama keeps one track per pass while he moves (two loops: at most three tracks).
  assert.ok(named.filter((n) => n === 'obama').length <= 3, `obama tracks: ${named}`);
  // raj, never enrolled, is beside penny and matches nobody.
  const besidePenny = run.frames.filter((f) => f.faces.length === 2 && f.faces.some((x) => x.name === 'penny'));
  assert.ok(besidePenny.length >= 10, `frames with penny and one other face: ${besidePenny.length}`);
  assert.ok(besidePenny.every((f) => f.faces.some((x) => x.name === null)), 'the stranger beside penny matched someone');
  assert.ok(!named.includes('howard'), 'howard was never on camera');
  // Tracks end when their faces leave.
  assert.ok(run.frames.some((f) => f.ended.length > 0), 'no track ever ended');
  assert.ok(run.persons >= run.facesSoFar, `persons ${run.persons}, faces reported before ${run.facesSoFar}`);
  assert.equal(run.ended, 'StreamEndedException');
  assert.equal(run.faceCount, 3, 'the collection is unchanged');
  await page.close();
});
