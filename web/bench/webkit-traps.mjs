// Diagnosis of JavaScriptCore's rare WebAssembly traps (README, "WebKit"): open the package
// N times in WebKitGTK, alternately in the worker and on the main thread, each time DetectFaces
// on one photo and CreateCollection, and count the opens that trap. Run it twice, once with a
// JSC option in the environment (JSC_useOMGJIT=0, JSC_useWasmFastMemory=0, JSC_useWasmSIMD=0:
// WebKit's processes read them from there), to tell JavaScriptCore's tiers from our code.
// Session 12, every trap while the engine loaded, inside the shim that polls Rust futures:
//   no option:                 120 opens, 1 trapped ("Unreachable code ...", main thread)
//   JSC_useOMGJIT=0:           120 opens, 4 trapped (both workers and main thread; "Unreachable",
//                              "call_indirect to a null table entry")
//   JSC_useWasmFastMemory=0:   at least 1 of under 100 ("Out of bounds memory access"; the
//                              run hit its time limit)
//   JSC_useBBQJIT=0:           the module does not load ("JIT is disabled, but the entrypoint
//                              ... requires JIT")
// Session 13, both cores kept busy by two spin loops (traps come more often under load: one in
// one run of the video suite):
//   no option:                 40 opens, 0 trapped
//   memory pre-grown to 128 MB before Engine.open (113 MB after it, so no growth while
//   loading):                  40 opens, 1 trapped (worker, "Out of bounds memory access",
//                              the same shim)
// So neither the optimising tier nor signal-handler bounds checks nor memory growth during
// the load is the cause alone.
//
//   bash web/build.sh && cd web && node bench/webkit-traps.mjs [N]

import path from 'node:path';
import { serve, HARNESS, WEB, SHARED_DATA } from '../test/server.mjs';
import { launchBrowser, WEBKIT_TRAP } from '../test/browsers.mjs';

const N = Number(process.argv[2] ?? 120);
const server = await serve(
  { '/dist/': path.join(WEB, 'dist'), '/data/': path.join(SHARED_DATA, 'faces') },
  { '/pages/harness.html': { type: 'text/html; charset=utf-8', body: HARNESS } },
);
const browser = await launchBrowser('webkit');
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
      if (WEBKIT_TRAP.test(result)) traps++;
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
