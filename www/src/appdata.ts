// The app's own data, beside the package's collections: a small thumbnail per face (for
// display only; it stays on this device and never syncs) and the settings. Its own IndexedDB
// database, so the package's stays exactly what the package writes.

const DB = 'likeness-app';
let opened: Promise<IDBDatabase> | null = null;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('thumbs');
      req.result.createObjectStore('settings');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opened;
}

async function run<T>(store: string, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(store, mode);
    const req = op(tx.objectStore(store));
    tx.oncomplete = () => resolve(req.result);
    const failed = () => reject(tx.error ?? req.error ?? new DOMException(`IndexedDB refused the ${store} ${mode}`, 'UnknownError'));
    tx.onerror = failed;
    tx.onabort = failed;
  });
}

/**
 * A thumbnail as stored: its bytes and type, not a Blob, since WebKit refuses Blobs in
 * IndexedDB in ephemeral sessions (Safari's private browsing; WebKitGTK under automation).
 * Blobs written by earlier versions are still read.
 */
interface StoredThumb {
  type: string;
  bytes: ArrayBuffer;
}

export const thumbs = {
  async get(faceId: string): Promise<Blob | undefined> {
    const stored = await run<StoredThumb | Blob | undefined>('thumbs', 'readonly', (s) => s.get(faceId));
    if (stored === undefined || stored instanceof Blob) return stored;
    return new Blob([stored.bytes], { type: stored.type });
  },
  async put(faceId: string, blob: Blob): Promise<void> {
    const stored: StoredThumb = { type: blob.type, bytes: await blob.arrayBuffer() };
    await run('thumbs', 'readwrite', (s) => s.put(stored, faceId));
  },
  delete: (faceIds: string[]) =>
    run('thumbs', 'readwrite', (s) => {
      let last: IDBRequest = s.count();
      for (const id of faceIds) last = s.delete(id);
      return last;
    }),
  /** Drop thumbnails of faces no longer in the collection (deleted here or on another device). */
  async keepOnly(faceIds: Set<string>): Promise<void> {
    const keys = (await run<IDBValidKey[]>('thumbs', 'readonly', (s) => s.getAllKeys())) as string[];
    const gone = keys.filter((k) => !faceIds.has(k));
    if (gone.length) await thumbs.delete(gone);
  },
  clear: () => run('thumbs', 'readwrite', (s) => s.clear()),
};

export interface Settings {
  /** Similarity (0-100) a live or photo match needs. */
  threshold: number;
  /** Sync server the Sync screen offers, default this page's origin. */
  server: string;
}

export async function loadSettings(): Promise<Settings> {
  const saved = (await run<Partial<Settings> | undefined>('settings', 'readonly', (s) => s.get('settings'))) ?? {};
  return { threshold: 90, server: location.origin, ...saved };
}

export async function saveSettings(settings: Settings): Promise<void> {
  await run('settings', 'readwrite', (s) => s.put(settings, 'settings'));
}
