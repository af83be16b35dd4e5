// One definition of "a WebAssembly trap" for every WebKit retry: the page-level suites
// (matrixTest in browsers.mjs), the trap benchmark and tests/run-all.sh's wasm-bindgen-test
// run, which reads it before `npm ci` (so this module imports nothing).
//
//   node web/test/webkit-trap.mjs LOG   exits 0 when LOG shows a trap, 1 when it does not

/**
 * A WebAssembly trap, as a test sees it: the package's own wording for one ("the engine
 * trapped"), the error's class, or one of JavaScriptCore's trap messages (WasmExceptionType.h:
 * a raw trap can reach the test through `page.evaluate` without either of the first two).
 */
export const WEBKIT_TRAP =
  /the engine trapped|RuntimeError|Out of bounds (memory|table|call_indirect|Trunc)|Unaligned memory access|Unreachable code should not be executed|call_indirect to a (null table entry|signature that does not match)|call_ref to a null reference|Division by zero|Integer overflow/;

if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import('node:fs');
  const match = readFileSync(process.argv[2], 'utf8').match(WEBKIT_TRAP);
  if (match) console.log(`# webkit: trap seen: "${match[0]}"`);
  process.exit(match ? 0 : 1);
}
