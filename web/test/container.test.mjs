// The MP4 and WebM readers (src/container.js) on real files made by ffmpeg, then fuzzed:
// thousands of damaged copies (bytes flipped, runs zeroed, truncated, sizes inflated) must
// never throw, hang or point outside the file. What a page is given is input like any other.
// Runs in Node (the readers need only Blob); needs ffmpeg.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { probeVideo, demuxVideo } from '../src/container.js';

let tmp;
const clips = {};

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'likeness-container-'));
  const source = ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=15', '-t', '2'];
  const make = (name, codec) => {
    const file = path.join(tmp, name);
    execFileSync('ffmpeg', [...source, ...codec, file]);
    clips[name] = new Uint8Array(fs.readFileSync(file));
  };
  make('clip.webm', ['-c:v', 'libvpx', '-b:v', '200k']);
  make('clip.mp4', ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p']);
  make('clip.mkv', ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8']);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('clean files: metadata, and every frame with its timestamp in presentation order', async () => {
  const expected = {
    'clip.webm': { format: 'webm', codec: 'vp8', decoder: 'vp8' },
    'clip.mp4': { format: 'mp4', codec: 'h264', decoder: /^avc1\.[0-9a-f]{6}$/ },
    'clip.mkv': { format: 'matroska', codec: 'vp9', decoder: /^vp09\./ },
  };
  for (const [name, want] of Object.entries(expected)) {
    const blob = new Blob([clips[name]]);
    const meta = await probeVideo(blob);
    assert.deepEqual(meta, { format: want.format, codec: want.codec, frameWidth: 96, frameHeight: 64, frameRate: 15, durationMillis: 2000 }, name);
    const d = await demuxVideo(blob);
    assert.ok(d, `${name}: not demuxed`);
    assert.match(d.config.codec, want.decoder instanceof RegExp ? want.decoder : new RegExp(`^${want.decoder}$`));
    assert.equal(d.config.codedWidth, 96);
    assert.equal(d.config.codedHeight, 64);
    assert.equal(d.samples.length, 30, `${name}: frames`);
    assert.ok(d.samples[0].key, `${name}: starts with a key frame`);
    const times = d.samples.map((s) => s.timestamp).sort((a, b) => a - b);
    times.forEach((t, i) => assert.ok(Math.abs(t - (i * 1e6) / 15) <= 1000, `${name}: frame ${i} at ${t} µs`));
    assert.ok(d.samples.every((s) => s.data.length > 0));
  }
});

test('not a video: nothing described, nothing demuxed', async () => {
  for (const bytes of [new Uint8Array(0), new TextEncoder().encode('not a video at all'), new Uint8Array(4096).fill(0xff)]) {
    const blob = new Blob([bytes]);
    assert.deepEqual(await probeVideo(blob), { format: null, codec: null, frameWidth: null, frameHeight: null, frameRate: null, durationMillis: null });
    assert.equal(await demuxVideo(blob), null);
  }
});

test('fuzzed copies never throw, hang or read outside the file', { timeout: 600_000 }, async () => {
  // A small deterministic generator (xorshift32), so a failure reproduces from its seed.
  let state = 0x9e3779b9;
  const rand = (n) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
  const mutate = (clean) => {
    const b = clean.slice();
    switch (rand(4)) {
      case 0: // flip bytes, mostly in the headers where the structure is
        for (let i = rand(8) + 1; i > 0; i--) b[rand(Math.min(b.length, rand(2) ? 512 : b.length))] ^= 1 << rand(8);
        return b;
      case 1: {
        // a run of zeros or 0xff (sizes become 0 or huge)
        const at = rand(b.length);
        b.fill(rand(2) ? 0 : 0xff, at, at + rand(16) + 1);
        return b;
      }
      case 2: // truncated
        return b.subarray(0, rand(b.length));
      default: {
        // a 32-bit size somewhere set to a large value
        const at = rand(Math.max(1, b.length - 4));
        new DataView(b.buffer).setUint32(at, 0x7ffffff0 + rand(16));
        return b;
      }
    }
  };
  let runs = 0;
  const started = Date.now();
  for (const [name, clean] of Object.entries(clips)) {
    for (let i = 0; i < 5000; i++) {
      const seed = state;
      const bytes = mutate(clean);
      const blob = new Blob([bytes]);
      try {
        const meta = await probeVideo(blob);
        for (const k of ['frameWidth', 'frameHeight', 'frameRate', 'durationMillis']) {
          assert.ok(meta[k] === null || Number.isFinite(meta[k]), `${k} ${meta[k]}`);
        }
        const d = await demuxVideo(blob);
        if (d) {
          for (const s of d.samples) {
            assert.ok(s.data.byteOffset >= 0 && s.data.byteOffset + s.data.length <= bytes.length, 'a frame outside the file');
            assert.ok(Number.isFinite(s.timestamp), `timestamp ${s.timestamp}`);
          }
        }
      } catch (e) {
        assert.fail(`${name}, mutation ${i} (seed ${seed}): ${e.stack}`);
      }
      runs += 1;
    }
  }
  console.log(`container readers: ${runs} fuzzed files in ${Date.now() - started} ms, none threw`);
});
