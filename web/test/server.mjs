// A static file server on 127.0.0.1 for the browser tests and benchmarks: the built package
// under /dist/, test pages under /pages/, and the shared photos under /data/.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { spawn } from 'node:child_process';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WEB = path.resolve(here, '..');
export const REPO = path.resolve(WEB, '..');
export const SHARED_DATA = path.resolve(REPO, '..', 'shared', 'data');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * Serve `mounts` ({'/prefix/': '/abs/dir'}) plus any `extra` (url -> {type, body}, or url ->
 * a node `(req, res)` handler), adding `headers` to every response (e.g. COOP/COEP for a
 * cross-origin-isolated page).
 */
export function serve(mounts, extra = {}, headers = {}) {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (typeof extra[url] === 'function') return extra[url](req, res);
    if (extra[url]) {
      res.writeHead(200, { ...headers, 'content-type': extra[url].type, 'cache-control': 'no-store' });
      return res.end(extra[url].body);
    }
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (!url.startsWith(prefix)) continue;
      const file = path.resolve(dir, url.slice(prefix.length));
      if (!file.startsWith(path.resolve(dir))) break;
      fs.stat(file, (err, st) => {
        if (err || !st.isFile()) {
          res.writeHead(404);
          return res.end('not found');
        }
        res.writeHead(200, {
          ...headers,
          'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
          'content-length': st.size,
          'cache-control': 'no-store',
        });
        fs.createReadStream(file).pipe(res);
      });
      return;
    }
    res.writeHead(404);
    res.end('not found');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        origin: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((r) => {
            server.close(r);
            // Responses a handler holds open (a stalled download) end with the server.
            server.closeAllConnections();
          }),
      });
    });
  });
}

export const SERVER = path.join(REPO, 'target', 'release', 'likeness-server');

/**
 * A real likeness-server (target/release) on a free loopback port with its SQLite file in
 * `dir`, plus `extraArgs`; resolves once it listens, with the process and its URL.
 */
export async function startServer(dir, extraArgs = []) {
  const child = spawn(SERVER, ['--listen', '127.0.0.1:0', '--database', `sqlite://${dir}/server.db`, ...extraArgs], {
    env: { ...process.env, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const first = await readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
  const url = first.value?.trim().split(' ').pop();
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url ?? '')) {
    child.kill('SIGKILL');
    throw new Error(`likeness-server did not start (first line: ${JSON.stringify(first.value)})`);
  }
  return { process: child, url };
}

/** Headless Debian Chromium with a fresh profile, through playwright-core. */
export async function launchChromium(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'likeness-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      ...extraArgs,
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The page every test opens: the package importable as "likeness" through an import map. */
export const HARNESS = `<!doctype html>
<meta charset="utf-8">
<title>likeness test harness</title>
<script type="importmap">{"imports": {"likeness": "/dist/index.js"}}</script>
<script type="module">
  import { Likeness, LikenessError } from 'likeness';
  window.Likeness = Likeness;
  window.LikenessError = LikenessError;
  window.fetchBytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  // For the benchmarks: an image's RGBA pixels, and the median time of iter runs of f after two warm-ups.
  window.rgbaOf = async (url) => {
    const bitmap = await createImageBitmap(new Blob([await fetchBytes(url)]));
    const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  };
  window.medianMs = async (f, iter) => {
    const ts = [];
    for (let i = 0; i < iter + 2; i++) {
      const t = performance.now();
      await f();
      ts.push(performance.now() - t);
    }
    return ts.slice(2).sort((a, b) => a - b)[Math.floor(iter / 2)];
  };
  window.harnessReady = true;
</script>
<body></body>`;
