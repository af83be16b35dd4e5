// Sync benchmark (not a test): a real likeness-server process (SQLite) on loopback, Debian
// Chromium profiles through playwright-core, and the native CLI.
//   node web/bench/sync-bench.mjs      (after bash web/build.sh and cargo build --release --all-targets)
// Prints, with the bars:
// - first sync of a 10k-face collection to a new device: the CLI (`likeness sync join` +
//   `sync now`, process start included) and a new browser profile (`sync.join` + `sync.now`);
//   bytes on the wire against the collection's raw snapshot (`exportCollection`), and the
//   peer: the same snapshot bytes fetched plainly over the same loopback;
// - one new face from one connected profile to another with automatic sync on both: median
//   of runs from `indexFaces` resolving in A to the face listed in B, and the bytes A pushed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, launchChromium, startServer, HARNESS, WEB, REPO, SHARED_DATA } from '../test/server.mjs';

const FACES = path.join(SHARED_DATA, 'faces');
const N = Number(process.env.SYNC_BENCH_FACES ?? 10_000);
const RUNS = 7;
const bin = (name) => path.join(REPO, 'target', 'release', name);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-sync-bench-'));

const { process: syncServer, url: syncUrl } = await startServer(tmp);

const web = await serve(
  { '/dist/': path.join(WEB, 'dist'), '/data/': FACES, '/tmp/': tmp },
  { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } },
);
const profiles = [await launchChromium(), await launchChromium()];
async function page(profile, database) {
  const p = await profile.context.newPage();
  await p.goto(`${web.origin}/pages/harness.html`);
  await p.waitForFunction('window.harnessReady === true');
  await p.evaluate(async (database) => {
    window.lk = await Likeness.open({ database });
    window.reports = [];
    lk.sync.onStatus((s) => s.report && window.reports.push(s.report));
  }, database);
  return p;
}

// Device A: the 10k synthetic faces (the same generator as bench.mjs), synced up.
const prefix = path.join(tmp, 'synthetic');
const nat = JSON.parse(execFileSync(bin('examples/synthetic_collection'), [String(N), prefix], { encoding: 'utf8' }));
const a = await page(profiles[0], 'bench-a');
const seeded = await a.evaluate(
  async ({ urls, server }) => {
    for (const url of urls) await lk.importChanges({ collectionId: 'synthetic', changes: await fetchBytes(url) });
    const snapshotBytes = (await lk.exportCollection({ collectionId: 'synthetic' })).changes.length;
    await lk.sync.create({ server, label: 'a' });
    const t = performance.now();
    const up = await lk.sync.now();
    const uploadMs = performance.now() - t;
    const codes = [(await lk.sync.invite()).joinCode, (await lk.sync.invite()).joinCode];
    return { snapshotBytes, up, uploadMs, codes };
  },
  { urls: nat.chunks.map((c) => `/tmp/${path.basename(c)}`), server: syncUrl },
);
// Peer: the snapshot's bytes fetched plainly over the same loopback (no crypto, no merge).
fs.writeFileSync(path.join(tmp, 'plain.bin'), Buffer.alloc(seeded.snapshotBytes, 7));
const plainMs = await a.evaluate(async () => {
  const t = performance.now();
  await (await fetch('/tmp/plain.bin', { cache: 'no-store' })).arrayBuffer();
  return performance.now() - t;
});

// The CLI as a new device.
const store = path.join(tmp, 'cli-store');
const cliStarted = performance.now();
execFileSync(bin('likeness'), ['--store', store, 'sync', 'join', seeded.codes[0]], { encoding: 'utf8' });
const cliReport = JSON.parse(execFileSync(bin('likeness'), ['--store', store, 'sync', 'now'], { encoding: 'utf8' }));
const cliMs = performance.now() - cliStarted;
const cliFaces = JSON.parse(execFileSync(bin('likeness'), ['--store', store, 'describe-collection', '--collection-id', 'synthetic'], { encoding: 'utf8' })).FaceCount;

// A new browser profile as a new device.
const b = await page(profiles[1], 'bench-b');
const browserFirst = await b.evaluate(async (code) => {
  const t = performance.now();
  await lk.sync.join(code, { label: 'b' });
  const report = await lk.sync.now();
  const ms = performance.now() - t;
  const faces = (await lk.describeCollection({ collectionId: 'synthetic' })).faceCount;
  return { ms, report, faces };
}, seeded.codes[1]);

// One new face, A to B, both on automatic sync.
await a.evaluate(() => lk.sync.start({ intervalMs: 3_600_000 }));
await b.evaluate(() => lk.sync.start({ intervalMs: 3_600_000 }));
await a.evaluate(() => lk.createCollection({ collectionId: 'live' }).catch(() => {}));
await new Promise((r) => setTimeout(r, 1500));
const photos = fs.readdirSync(path.join(FACES, 'identities')).sort().slice(0, RUNS);
const live = [];
for (const name of photos) {
  const file = fs.readdirSync(path.join(FACES, 'identities', name)).sort()[0];
  const image = `/data/identities/${name}/${file}`;
  const indexed = await a.evaluate(async (url) => {
    const image = await (await fetch(url)).blob();
    const reportsBefore = reports.length;
    const r = await lk.indexFaces({ collectionId: 'live', image, maxFaces: 1 });
    return { faceId: r.faceRecords[0].face.faceId, at: Date.now(), reportsBefore };
  }, image);
  const seenAt = await b.evaluate(async (faceId) => {
    for (;;) {
      const faces = await lk.listFaces({ collectionId: 'live' }).then((r) => r.faces, () => []);
      if (faces.some((f) => f.faceId === faceId)) return Date.now();
      await new Promise((r) => setTimeout(r, 5));
    }
  }, indexed.faceId);
  // What A's rounds since the write sent (its push; a round on hearing its own push sends nothing).
  const bytesUp = await a.evaluate((from) => reports.slice(from).reduce((n, r) => n + r.bytesUp, 0), indexed.reportsBefore);
  live.push({ ms: seenAt - indexed.at, bytesUp });
}

const row = (what, value, bar) => console.log(`| ${what} | ${value} | ${bar} |`);
console.log(`\nSync benchmark: ${N} synthetic faces, server on SQLite, loopback\n`);
console.log('| measure | value | bar |');
console.log('|---|---|---|');
row('raw snapshot (exportCollection)', `${(seeded.snapshotBytes / 1e6).toFixed(2)} MB`, '');
row('first upload from the browser (sync.now)', `${seeded.uploadMs.toFixed(0)} ms, ${(seeded.up.bytesUp / 1e6).toFixed(2)} MB up`, '');
row('first sync, CLI (join + sync now, 2 processes)', `${cliMs.toFixed(0)} ms, ${cliFaces} faces`, '<= 2000 ms');
row('first sync, browser (join + sync.now)', `${browserFirst.ms.toFixed(0)} ms, ${browserFirst.faces} faces`, '<= 4000 ms');
row('wire / raw snapshot (CLI, browser)', `${(cliReport.BytesDown / seeded.snapshotBytes).toFixed(3)}, ${(browserFirst.report.bytesDown / seeded.snapshotBytes).toFixed(3)}`, 'report');
row('peer: same bytes by plain fetch', `${plainMs.toFixed(0)} ms (browser first sync is ${(browserFirst.ms / plainMs).toFixed(1)}x)`, '');
row(`one new face A -> B, median of ${RUNS}`, `${median(live.map((l) => l.ms))} ms (max ${Math.max(...live.map((l) => l.ms))})`, '<= 1000 ms');
row('bytes A pushed for one face', `${median(live.map((l) => l.bytesUp))} B`, 'report');

await a.evaluate(() => lk.sync.stop());
await b.evaluate(() => lk.sync.stop());
for (const p of profiles) await p.close();
await web.close();
syncServer.kill('SIGKILL');
fs.rmSync(tmp, { recursive: true, force: true });
