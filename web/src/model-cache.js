// The embedder's prepared form (tract's own model format, made by the engine on its first
// load) kept between visits: the next open skips most of the embedder's set-up (type
// analysis and decluttering of the ONNX graph). Model weights only, nothing about faces.
// IndexedDB database `likeness-model-cache`; the key is the format plus the ONNX file's
// SHA-256, and each entry carries its own SHA-256, checked before use, so a damaged entry
// is dropped rather than loaded.

const DB = 'likeness-model-cache';
const STORE = 'prepared';

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
const sha256 = async (bytes) => hex(await crypto.subtle.digest('SHA-256', bytes));

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function open() {
  const req = indexedDB.open(DB, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE);
  return request(req);
}

/** A cache slot for this ONNX file in this format: `bytes` when a checked entry is there. */
export async function preparedEmbedder(onnx, format) {
  if (!globalThis.indexedDB || !globalThis.crypto?.subtle) return null;
  const key = `${format}:${await sha256(onnx)}`;
  const db = await open();
  try {
    const entry = await request(db.transaction(STORE).objectStore(STORE).get(key));
    let bytes = null;
    if (entry?.bytes instanceof Uint8Array && entry.sha256 === (await sha256(entry.bytes))) bytes = entry.bytes;
    else if (entry) await request(db.transaction(STORE, 'readwrite').objectStore(STORE).delete(key));
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
        const db2 = await open();
        try {
          const tx = db2.transaction(STORE, 'readwrite');
          tx.objectStore(STORE).clear();
          tx.objectStore(STORE).put(value, key);
          await new Promise((resolve, reject) => {
            tx.oncomplete = resolve;
            tx.onerror = () => reject(tx.error);
            tx.onabort = () => reject(tx.error);
          });
        } finally {
          db2.close();
        }
      },
    };
  } finally {
    db.close();
  }
}
