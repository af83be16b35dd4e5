// The embedder's prepared form (tract's own model format, made by the engine on its first
// load) kept between visits: the next open skips most of the embedder's set-up (type
// analysis and decluttering of the ONNX graph). Model weights only, nothing about faces.
// IndexedDB database `likeness-model-cache` (a KeyValue); the key is the format plus the
// ONNX file's SHA-256, and each entry carries its own SHA-256, checked before use, so a
// damaged entry is dropped rather than loaded.

import { KeyValue } from './key-value.js';

const DB = 'likeness-model-cache';

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
const sha256 = async (bytes) => hex(await crypto.subtle.digest('SHA-256', bytes));

async function withCache(fn) {
  const kv = await KeyValue.open(DB);
  try {
    return await fn(kv);
  } finally {
    kv.close();
  }
}

/** A cache slot for this ONNX file in this format: `bytes` when a checked entry is there. */
export async function preparedEmbedder(onnx, format) {
  if (!globalThis.indexedDB || !globalThis.crypto?.subtle) return null;
  const key = `${format}:${await sha256(onnx)}`;
  const bytes = await withCache(async (kv) => {
    const entry = await kv.get(key);
    if (entry?.bytes instanceof Uint8Array && entry.sha256 === (await sha256(entry.bytes))) return entry.bytes;
    if (entry) await kv.set(key, undefined);
    return null;
  });
  return {
    bytes,
    /**
     * Keep `fresh` (replacing every older entry: other formats or model files), unless
     * storage is tight: under ten times its size left, the room stays for collections.
     */
    async store(fresh) {
      const estimate = await globalThis.navigator?.storage?.estimate?.().catch(() => null);
      if (estimate?.quota != null && estimate.quota - (estimate.usage ?? 0) < fresh.length * 10) return;
      const value = { bytes: fresh, sha256: await sha256(fresh) };
      await withCache(async (kv) => {
        await kv.clear();
        await kv.set(key, value);
      });
    },
  };
}
