// The engine's home thread: loads the wasm module and the models, opens IndexedDB, and runs
// each call. Used directly on the main thread, or inside worker.js.

import init, { Engine } from './wasm/likeness_wasm.js';
import { toCamel, toPascal } from './casing.js';
import { engineImage } from './images.js';
import { LikenessError } from './errors.js';
import { Sync } from './sync.js';
import { WorkerClient } from './worker-client.js';
import { keepRecent, median } from './stats.js';
import { preparedEmbedder } from './model-cache.js';

export const MODEL_FILES = {
  detectorShort: 'blazeface-short.onnx',
  detectorFull: 'blazeface-full.onnx',
  embedder: 'faceapi-resnet.onnx',
};

/**
 * Which request fields hold images, whether the call touches collections (and so takes the
 * database's Web Lock, which makes tabs of one origin take turns), and for image operations
 * on collections the engine method that takes the image once it is prepared (detected and
 * embedded before the lock, so other tabs never wait for this tab's inference).
 */
export const OPERATIONS = {
  createCollection: { collections: true },
  deleteCollection: { collections: true },
  describeCollection: { collections: true },
  listCollections: { collections: true },
  indexFaces: { collections: true, images: ['image'], prepared: 'indexFacesPrepared' },
  listFaces: { collections: true },
  deleteFaces: { collections: true },
  searchFaces: { collections: true },
  searchFacesByImage: { collections: true, images: ['image'], prepared: 'searchFacesByImagePrepared' },
  createUser: { collections: true },
  deleteUser: { collections: true },
  listUsers: { collections: true },
  associateFaces: { collections: true },
  disassociateFaces: { collections: true },
  searchUsers: { collections: true },
  searchUsersByImage: { collections: true, images: ['image'], prepared: 'searchUsersByImagePrepared' },
  detectFaces: { images: ['image'] },
  compareFaces: { images: ['sourceImage', 'targetImage'] },
  exportCollection: { collections: true },
  importChanges: { collections: true },
  // Face search over video (`video.js`): run by `Host.#faceSearch`.
  faceSearchStart: {},
  faceSearchFrame: { images: ['image'] },
  faceSearchPersons: {},
  faceSearchStop: {},
  // The video embedder worker's one call: one network pass over a face crop.
  embedChipPass: {},
};

const MUTATIONS = new Set([
  'createCollection',
  'deleteCollection',
  'indexFaces',
  'deleteFaces',
  'createUser',
  'deleteUser',
  'associateFaces',
  'disassociateFaces',
  'importChanges',
]);

async function fetchWithProgress(url, file, onProgress) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new LikenessError('ModelLoadError', `cannot fetch ${url}: ${e.message}`);
  }
  if (!response.ok) throw new LikenessError('ModelLoadError', `cannot fetch ${url}: HTTP ${response.status}`);
  // Content-Length counts the encoded body: with a Content-Encoding (gzip from the server),
  // the decoded size is unknown until the end.
  const encoding = response.headers.get('content-encoding');
  const total = encoding && encoding !== 'identity' ? 0 : Number(response.headers.get('content-length')) || 0;
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onProgress({ file, loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress({ file, loaded, total });
  }
  if (total !== loaded) onProgress({ file, loaded, total: loaded }); // done: the size is known now
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

async function modelBytes(source, file, onProgress) {
  if (source instanceof Uint8Array) {
    onProgress({ file, loaded: source.length, total: source.length });
    return source;
  }
  if (source instanceof ArrayBuffer) return modelBytes(new Uint8Array(source), file, onProgress);
  return fetchWithProgress(source, file, onProgress);
}

/**
 * Default asset locations: next to this module in the package's dist/. Written as literal
 * `new URL('./…', import.meta.url)` so bundlers (Vite, webpack, Parcel) copy the files.
 */
export function defaultUrls() {
  return {
    wasm: new URL('./wasm/likeness_wasm_bg.wasm', import.meta.url).href,
    detectorShort: new URL('./models/blazeface-short.onnx', import.meta.url).href,
    detectorFull: new URL('./models/blazeface-full.onnx', import.meta.url).href,
    embedder: new URL('./models/faceapi-resnet.onnx', import.meta.url).href,
  };
}

/** The sync operations (`likeness.sync.*`), run by `Host.call` as `sync.<name>`. */
export const SYNC_OPERATIONS = ['create', 'invite', 'join', 'now', 'start', 'stop', 'status', 'collections', 'setCollections', 'devices', 'revoke', 'leave', 'protect', 'unprotect', 'unlock', 'lock'];

/**
 * Watch this realm for WebAssembly traps, which escape an async engine call as uncaught
 * errors and leave its promise pending. `trapped` rejects with the first one (or with what
 * `fail` is given); `onTrap` hears of it too. `stop` removes the listeners.
 */
function watchTraps(onTrap = () => {}) {
  let fail;
  const trapped = new Promise((_, reject) => {
    fail = reject;
  });
  trapped.catch(() => {});
  const listener = (ev) => {
    const err = ev.error ?? ev.reason;
    if (err instanceof WebAssembly.RuntimeError) {
      ev.preventDefault();
      onTrap(err);
      fail(err);
    }
  };
  globalThis.addEventListener?.('error', listener);
  globalThis.addEventListener?.('unhandledrejection', listener);
  const stop = () => {
    globalThis.removeEventListener?.('error', listener);
    globalThis.removeEventListener?.('unhandledrejection', listener);
  };
  return { trapped, fail, stop };
}

export class Host {
  constructor(engine, database, onSyncStatus = () => {}) {
    this.engine = engine;
    // In-memory engines (database null) share nothing, so they need no lock and no channel.
    this.lockName = database == null ? null : `likeness:${database}`;
    this.channel = this.lockName && typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(this.lockName) : null;
    const withCollections = (fn) => (this.lockName ? navigator.locks.request(this.lockName, fn) : fn());
    this.sync = new Sync(engine, database, withCollections, (status) => {
      // Merged changes from other devices: tell this origin's other tabs, as a local write would.
      if (status.report?.pulledRecords > 0 || status.report?.pulledSnapshot) {
        this.channel?.postMessage({ method: 'sync', collectionId: null });
      }
      onSyncStatus(status);
    });
    // A WebAssembly trap (out of memory, a bug) inside an async engine call escapes as an
    // uncaught error and the call's promise never settles; the instance is unusable after
    // it. Watch for traps so every call in flight, and every later one, fails instead.
    this.stopped = null;
    const traps = watchTraps((trap) => this.#stop(trap));
    this.trapped = traps.trapped;
    this.failAll = traps.fail;
    this.close = () => {
      traps.stop();
      this.sync.close();
      this.channel?.close();
      clearTimeout(this.embedderTimer);
      this.embedder?.close();
      this.embedder = null; // no embedder worker starts after this
      this.engine.free();
    };
  }

  #stop(trap) {
    if (this.stopped) return;
    this.stopped = new LikenessError(
      'InternalServerError',
      `the engine stopped after a WebAssembly trap (${trap.message}); open a new Likeness instance`,
    );
    this.failAll(this.stopped);
  }

  /**
   * Load everything. `options.models` maps detectorShort/detectorFull/embedder to URLs or
   * bytes, or gives `baseUrl` for all three; `options.wasm` is a URL, bytes or a
   * WebAssembly.Module. Progress is reported per file as bytes arrive.
   */
  static async open(options = {}, onProgress = () => {}, onSyncStatus = () => {}) {
    const database = options.database === undefined ? 'likeness' : options.database;
    // Tabs share one database and one replica id; without Web Locks they could interleave
    // writes and reuse clock stamps. Fail closed rather than risk that.
    if (database != null && !globalThis.navigator?.locks) {
      throw new LikenessError(
        'StorageException',
        'this browser has no Web Locks (navigator.locks), which keep tabs sharing a database from ' +
          'interleaving writes; use a browser that has them, or open with {database: null} to keep ' +
          'collections in memory only',
      );
    }
    const models = options.models ?? {};
    const defaults = defaultUrls();
    const base = models.baseUrl ? new URL(models.baseUrl, globalThis.location?.href) : null;
    const modelUrl = (key) => models[key] ?? (base ? new URL(MODEL_FILES[key], base).href : defaults[key]);
    const started = performance.now();
    try {
      await init({ module_or_path: options.wasm ?? defaults.wasm });
    } catch (e) {
      throw new LikenessError('ModelLoadError', `cannot load the WebAssembly module: ${e.message}`);
    }
    const [short, full, embedder] = await Promise.all(
      Object.keys(MODEL_FILES).map((key) => modelBytes(modelUrl(key), MODEL_FILES[key], onProgress)),
    );
    // The embedder's prepared form from an earlier visit; a failure to read it only costs time.
    const modelCache = options.modelCache ?? database != null;
    const cache = modelCache ? await preparedEmbedder(embedder, Engine.preparedEmbedderFormat()).catch(() => null) : null;
    const fetched = performance.now();
    let engine;
    // A trap while the models load would leave the open pending for ever: fail it instead.
    const loading = watchTraps();
    try {
      engine = await Promise.race([Engine.open(short, full, embedder, database, cache?.bytes ?? undefined), loading.trapped]);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        // `code` tells Likeness.open that a fresh instance may load (see WorkerTransport).
        throw Object.assign(new LikenessError('InternalServerError', `the engine trapped while loading (${e.message}); reload the page`), { code: 'WasmTrap' });
      }
      const err = LikenessError.from(e);
      // A model that tract cannot load is a loading problem, not a service fault.
      throw err.name === 'InternalServerError' ? new LikenessError('ModelLoadError', err.message) : err;
    } finally {
      loading.stop();
    }
    const fresh = engine.takePreparedEmbedder();
    // Kept before the open returns (a page may close its worker at once); only the first
    // open pays for it. A refusal (quota, private mode) only costs the next open time.
    if (fresh && cache) await cache.store(fresh).catch(() => {});
    const host = new Host(engine, database, onSyncStatus);
    host.timings = { fetchMs: fetched - started, initMs: performance.now() - fetched, preparedEmbedder: cache?.bytes != null };
    // What a second engine (the video embedder worker) loads: the same models and module.
    host.assets = { models: options.models, wasm: options.wasm, modelCache };
    return host;
  }

  get faceModelVersion() {
    return this.engine.faceModelVersion;
  }

  /** Run one operation: `request` is the camelCase request with image descriptors. */
  async call(method, request = {}) {
    if (method.startsWith('sync.')) return this.#sync(method.slice(5), request ?? {});
    const spec = OPERATIONS[method];
    if (!spec) throw new LikenessError('InvalidParameterException', `unknown operation ${method}`);
    if (this.stopped) throw this.stopped;
    try {
      if (method === 'faceSearchFrame') return await this.#faceSearchFrame(spec, request ?? {});
      // Bitmaps and video frames become RGBA here, before the lock: other tabs wait only for
      // the engine, not for this tab's pixel copies.
      const { images, rest } = await engineInputs(spec, request ?? {});
      if (method.startsWith('faceSearch')) return await this.#faceSearch(method, images, rest);
      // Detection and embedding need no collection state: done here, before the lock.
      const prepared = spec.prepared ? this.#prepare(method, images, rest) : null;
      const run = () => this.#invoke(method, images, rest, prepared);
      if (!spec.collections) return await Promise.race([run(), this.trapped]);
      const result = await this.#withLock(run);
      if (MUTATIONS.has(method)) {
        this.channel?.postMessage({ method, collectionId: request.collectionId ?? result?.collectionId });
        this.sync.localWrite();
      }
      return result;
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) this.#stop(e);
      throw this.stopped ?? LikenessError.from(e);
    }
  }

  async #sync(name, request) {
    if (this.stopped) throw this.stopped;
    const s = this.sync;
    try {
      switch (name) {
        case 'create':
          return await s.create(request);
        case 'protect':
          return await s.protect(request.passphrase);
        case 'unprotect':
          return await s.unprotect(request.passphrase);
        case 'unlock':
          return await s.unlock(request.passphrase);
        case 'lock':
          s.lock();
          return await s.keyStatus();
        case 'invite':
          return await s.invite();
        case 'join':
          return await s.join(request.joinCode, request);
        case 'now':
          return await s.now();
        case 'start':
          await s.start(request);
          return s.status;
        case 'stop':
          s.stop();
          return s.status;
        case 'status':
          return { ...s.status, running: s.running, ...(await s.keyStatus()) };
        case 'collections':
          return await s.collections();
        case 'setCollections':
          return await s.setCollections(request.collectionIds);
        case 'devices':
          return await s.devices();
        case 'revoke':
          await s.revoke(request.deviceId);
          return {};
        case 'leave':
          await s.leave();
          return {};
        default:
          throw new LikenessError('InvalidParameterException', `unknown sync operation ${name}`);
      }
    } catch (e) {
      const err = LikenessError.from(e);
      if (e?.code) err.code = e.code;
      throw err;
    }
  }

  /**
   * One video frame. Frames may arrive while earlier ones wait for the database lock, and
   * their pixels come out asynchronously: each takes its turn for pixels + tracking, so
   * frames are tracked in the order they came, and only the searches wait on the lock.
   */
  async #faceSearchFrame(spec, request) {
    const previous = this.frameTurn ?? Promise.resolve();
    let release;
    this.frameTurn = new Promise((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      const imageStart = performance.now();
      const { images, rest } = await engineInputs(spec, request);
      return await this.#faceSearch('faceSearchFrame', images, rest, performance.now() - imageStart, release);
    } finally {
      release();
    }
  }

  /** Face search over video: streams live here, one per video or camera. */
  async #faceSearch(method, images, rest, imageMs = 0, tracked = () => {}) {
    const e = this.engine;
    this.streams ??= new Map();
    const stream = () => {
      const s = this.streams.get(rest.streamId);
      if (!s) throw new LikenessError('ResourceNotFoundException', `no face search stream ${rest.streamId}`);
      return s;
    };
    switch (method) {
      case 'faceSearchStart': {
        const { collectionId, faceMatchThreshold, maxFaces, range, embedIn = 'worker' } = rest;
        if (embedIn !== 'worker' && embedIn !== 'thread') {
          throw new LikenessError('InvalidParameterException', `embedIn ${embedIn}: worker or thread`);
        }
        const wasm = e.faceSearchStart(toPascal({ collectionId, faceMatchThreshold, maxFaces }), range);
        // A missing collection fails the start, not the first frame with a face in it (a
        // video with no faces would otherwise "succeed" against a collection that is not there).
        try {
          await this.#withLock(() => e.describeCollection(toPascal({ collectionId })));
        } catch (err) {
          wasm.free();
          throw err;
        }
        // Embeddings in a second worker (the other core), so a new face does not hold up the
        // frames after it. It starts loading after this thread's first embedding (so its
        // model set-up does not compete with naming the first face), or after 2 s without
        // one; this thread embeds until it is ready.
        if (embedIn === 'worker' && this.embedder === undefined) {
          clearTimeout(this.embedderTimer);
          this.embedderTimer = setTimeout(() => this.#embedWorker(), 2000);
        }
        this.streamSeq = (this.streamSeq ?? 0) + 1;
        this.streams.set(this.streamSeq, { wasm, offThread: embedIn === 'worker', pending: new Set(), embedMs: [], runMs: [], fullMs: [], error: null });
        return { streamId: this.streamSeq };
      }
      case 'faceSearchFrame': {
        const s = stream();
        if (s.error) throw s.error;
        // The image half outside the database's lock; only the search takes it.
        const t0 = performance.now();
        const requests = e.faceSearchTrackDeferred(s.wasm, images[0], rest.timestamp);
        tracked(); // the next frame may take its turn
        const worker = s.offThread && this.embedder?.ready ? this.embedder : null;
        const inline = [];
        for (const r of requests) {
          if (worker) {
            // The crop's two network passes in the embedder worker. A new track's first pass
            // goes ahead of other work and is searched at once (a provisional name, half the
            // embedder's time); the sum of both, the photo path's vector, then resolves it.
            const sent = performance.now();
            const plain = worker.pass(r.chip, false, r.first);
            const mirrored = worker.pass(r.chip, true);
            const named = r.first
              ? plain.then(({ vector, runMs }) => {
                  keepRecent(s.embedMs, performance.now() - sent, 50);
                  keepRecent(s.runMs, runMs, 50);
                  return this.#withLock(() => e.faceSearchProvisional(s.wasm, r.index, vector));
                })
              : null;
            const p = Promise.all([plain, mirrored, named])
              .then(([{ vector: one }, { vector: other }]) => {
                keepRecent(s.fullMs, performance.now() - sent, 50);
                const sum = one.map((x, i) => x + other[i]);
                return this.#withLock(() => e.faceSearchResolve(s.wasm, r.index, rest.timestamp, sum));
              })
              .catch((err) => {
                if (!s.stopped) s.error ??= LikenessError.from(err);
              })
              .finally(() => s.pending.delete(p));
            s.pending.add(p);
          } else {
            inline.push([r.index, e.embedChip(r.chip)]);
          }
        }
        const t1 = performance.now();
        if (inline.length && s.offThread && this.embedder === undefined) {
          clearTimeout(this.embedderTimer);
          this.#embedWorker();
        }
        // Embedded here: searched before this frame's answer, so it names the face at once.
        for (const [index, vector] of inline) await this.#withLock(() => e.faceSearchResolve(s.wasm, index, rest.timestamp, vector));
        const out = await this.#withLock(() => e.faceSearchMatch(s.wasm));
        return {
          ...toCamel(out),
          stats: {
            imageMs,
            trackMs: t1 - t0,
            searchMs: performance.now() - t1,
            embedded: requests.length,
            embedMs: median(s.embedMs),
            embedRunMs: median(s.runMs),
            fullEmbedMs: median(s.fullMs),
            pendingEmbeddings: s.pending.size,
          },
        };
      }
      case 'faceSearchPersons': {
        const s = stream();
        // Every embedding in flight lands first: a stored video's answer is complete.
        while (s.pending.size) await Promise.all([...s.pending]);
        if (s.error) throw s.error;
        return { persons: toCamel(e.faceSearchPersons(s.wasm, rest.sortBy)) };
      }
      case 'faceSearchStop': {
        const s = this.streams.get(rest.streamId);
        this.streams.delete(rest.streamId);
        if (s) {
          s.stopped = true;
          await Promise.allSettled([...s.pending]);
          s.wasm.free();
        }
        return {};
      }
      default:
        throw new LikenessError('InvalidParameterException', `unknown operation ${method}`);
    }
  }

  /** Run `fn` (an engine call that touches collections) under the database's lock. */
  #withLock(fn) {
    const run = () => Promise.race([fn(), this.trapped]);
    return this.lockName ? navigator.locks.request(this.lockName, run) : run();
  }

  /** The video embedder: a second engine in its own worker, opened once, on first use. */
  #embedWorker() {
    if (this.embedder !== undefined) return this.embedder;
    this.embedder = typeof Worker === 'function' ? new EmbedWorker(this.assets ?? {}) : null;
    return this.embedder;
  }

  #prepare(method, images, rest) {
    if (method === 'indexFaces') return this.engine.prepareIndexFaces(toPascal(rest), images[0]);
    return this.engine.prepareSearch(images[0], method === 'searchUsersByImage');
  }

  async #invoke(method, images, rest, prepared) {
    const e = this.engine;
    if (prepared) return toCamel(await e[OPERATIONS[method].prepared](toPascal(rest), prepared));
    switch (method) {
      case 'detectFaces':
        return toCamel(e.detectFaces(images[0]));
      case 'compareFaces':
        return toCamel(e.compareFaces(toPascal(rest), images[0], images[1]));
      case 'exportCollection':
        return { collectionId: rest.collectionId, changes: await e.snapshot(toPascal(rest)) };
      case 'importChanges':
        return { collectionId: await e.applyChanges({ CollectionId: rest.collectionId }, rest.changes) };
      case 'embedChipPass':
        return e.embedChipPass(rest.chip, rest.mirrored);
      default:
        return toCamel(await e[method](toPascal(rest), ...images));
    }
  }
}

/**
 * A second engine in a worker of its own that only embeds face crops: the video path's
 * other core. `ready` once its models are loaded; if it fails to start, it stays not ready
 * and the caller embeds on its own thread. One pass is in the worker at a time, the others
 * wait here, urgent ones (a new face's first pass, which names it) ahead of the rest: a new
 * face waits for at most one pass already running, not for every recheck queued before it.
 */
class EmbedWorker {
  #urgent = [];
  #background = [];
  #busy = false;

  constructor(assets) {
    this.ready = false;
    try {
      this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    } catch {
      return;
    }
    this.client = new WorkerClient(this.worker);
    this.worker.onerror = () => {
      this.ready = false;
      this.#failAll(new LikenessError('InternalServerError', 'the embedder worker failed'));
    };
    this.client.post('open', { database: null, models: assets.models ?? {}, wasm: assets.wasm, modelCache: assets.modelCache }).then(
      () => {
        this.ready = !this.closed;
      },
      () => this.close(),
    );
  }

  /** One network pass over a crop (`mirrored`: over its mirror image): `{vector, runMs}`, the
   * raw descriptor and the time from posting it to the worker to its answer (any wait in this
   * queue behind other passes left out). */
  pass(chip, mirrored, urgent = false) {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new LikenessError('InvalidStateError', 'the embedder worker was closed'));
        return;
      }
      (urgent ? this.#urgent : this.#background).push({ chip, mirrored, resolve, reject });
      this.#next();
    });
  }

  #next() {
    if (this.#busy) return;
    const job = this.#urgent.shift() ?? this.#background.shift();
    if (!job) return;
    this.#busy = true;
    const started = performance.now();
    this.client
      .post('embedChipPass', { chip: job.chip, mirrored: job.mirrored })
      .then((vector) => job.resolve({ vector, runMs: performance.now() - started }), job.reject)
      .finally(() => {
        this.#busy = false;
        this.#next();
      });
  }

  #failAll(err) {
    for (const job of this.#urgent.splice(0).concat(this.#background.splice(0))) job.reject(err);
    this.client?.failAll(err);
  }

  close() {
    this.closed = true;
    this.ready = false;
    this.worker?.terminate();
    this.#failAll(new LikenessError('InvalidStateError', 'the embedder worker was closed'));
  }
}

/** Split a request into the engine's images (in `spec.images` order) and the other fields. */
async function engineInputs(spec, request) {
  const images = [];
  const rest = { ...request };
  for (const key of spec.images ?? []) {
    if (rest[key] == null) throw new LikenessError('InvalidParameterException', `${key} is required`);
    try {
      images.push(await engineImage(rest[key]));
    } catch (e) {
      throw new LikenessError('InvalidImageFormatException', `cannot read the image: ${e.message}`);
    }
    delete rest[key];
  }
  return { images, rest };
}
