// Diagnosis of JavaScriptCore's rare WebAssembly traps (README, "WebKit"): open the package
// N times in WebKitGTK, alternately in the worker and on the main thread, each time DetectFaces
// on one photo and CreateCollection, and count the opens that trap. Run it twice, once with a
// JSC option in the environment (JSC_useOMGJIT=0, JSC_useWasmFastMemory=0, JSC_useWasmSIMD=0:
// WebKit's processes read them from there), to tell JavaScriptCore's tiers from our code.
// Session 12: 120 opens, 1 trap ("Unreachable code should not be executed", while loading,
// main thread), 536 s. One in about 100 is a low rate: an A/B needs about 1,000 opens a side.
//
//   bash web/build.sh && cd web && node bench/webkit-traps.mjs [N]

import path from 'node:path';
import { serve, HARNESS, WEB, SHARED_DATA } from '../test/server.mjs';
import { launchBrowser } from '../test/browsers.mjs';

const N = Number(process.argv[2] ?? 120);
const server = await serve(
  { '/dist/': path.join(WEB, 'dist'), '/data/': path.join(SHARED_DATA, 'faces') },
  { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } },
);
const browser = await launchBrowser('webkit');
const TRAP = /trapped|RuntimeError|Out of bounds|Unreachable|call_indirect|call_ref|Division by zero|Integer overflow/;
let traps = 0;
let ok = 0;
const started = Date.now();
for (let i = 0; i < N; i++) {
  const page = await browser.context.newPage();
  try {
    await page.goto(`${server.origin}/pages/harness.html`);
    await page.waitForFunction('window.harnessReady === true');
    const result = await page.evaluate(async (i) => {
      try {
        const likeness = await Likeness.open({ database: `traps-${i}`, worker: i % 2 === 0 });
        const out = await likeness.detectFaces({ image: await fetchBytes('/data/groups/bbt1.jpg') });
        await likeness.createCollection({ collectionId: 'c' });
        likeness.close?.();
        return `ok ${out.faceDetails.length}`;
      } catch (e) {
        return `error ${String(e?.message ?? e)}`;
      }
    }, i);
    if (result.startsWith('ok')) ok++;
    else {
      if (TRAP.test(result)) traps++;
      console.log(`open ${i} (${i % 2 === 0 ? 'worker' : 'main thread'}): ${result.slice(0, 240)}`);
    }
  } catch (e) {
    console.log(`open ${i}: page failed: ${String(e).slice(0, 240)}`);
  } finally {
    await page.close();
  }
}
const jsc = Object.keys(process.env).filter((k) => k.startsWith('JSC_'));
console.log(`JSC options: ${jsc.map((k) => `${k}=${process.env[k]}`).join(' ') || 'none'}; ${N} opens: ${ok} ok, ${traps} trapped; ${((Date.now() - started) / 1000).toFixed(0)} s`);
await browser.close();
await server.close();
