// The `likeness` package: Rekognition's face collection operations, in the browser.
//
//   const likeness = await Likeness.open();
//   await likeness.createCollection({ collectionId: 'staff' });
//   await likeness.indexFaces({ collectionId: 'staff', image: file, externalImageId: 'ana' });
//   const { faceMatches } = await likeness.searchFacesByImage({ collectionId: 'staff', image: video });
//
// Every method is async, takes one camelCase request shaped like Rekognition's and resolves
// with a camelCase response; failures reject with a LikenessError named after the
// Rekognition exception. Collections live in IndexedDB on this device.

import { describeImage, transferables } from './images.js';
import { FaceSearchStream, searchVideo } from './video.js';
import { LikenessError } from './errors.js';
import { WorkerClient } from './worker-client.js';
import { OPERATIONS, MODEL_FILES } from './host.js';

export { LikenessError, MODEL_FILES };

const absolute = (u) => (typeof u === 'string' || u instanceof URL ? new URL(u, globalThis.location?.href).href : u);

function cloneableOptions(options) {
  const models = { ...(options.models ?? {}) };
  for (const k of Object.keys(models)) models[k] = absolute(models[k]);
  return { database: options.database, models, wasm: absolute(options.wasm), modelCache: options.modelCache };
}

/** Runs calls in this thread. */
class LocalTransport {
  static async open(options, onProgress, onSyncStatus) {
    const { Host } = await import('./host.js');
    const t = new LocalTransport();
    t.host = await Host.open(options, onProgress, onSyncStatus);
    t.info = { faceModelVersion: t.host.faceModelVersion, timings: t.host.timings };
    return t;
  }
  call(method, request) {
    if (this.closed) return Promise.reject(new LikenessError('InvalidStateError', 'the engine was closed'));
    return this.host.call(method, request);
  }
  close() {
    if (!this.closed) this.host.close();
    this.closed = true;
  }
}

/** Runs calls in a dedicated module Worker; images are transferred, not copied. */
class WorkerTransport {
  static async open(options, onProgress, onSyncStatus) {
    const t = new WorkerTransport();
    t.worker = options.workerUrl
      ? new Worker(options.workerUrl, { type: 'module' })
      : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    t.client = new WorkerClient(t.worker, (data) => {
      if (data.progress) onProgress(data.progress);
      else if (data.syncStatus) onSyncStatus(data.syncStatus);
      else if (data.stopped) t.stopped = true;
      return Boolean(data.progress || data.syncStatus);
    });
    t.worker.onerror = (ev) => {
      t.stopped = true;
      t.client.failAll(new LikenessError('InternalServerError', `worker failed: ${ev.message ?? 'unknown error'}`));
    };
    try {
      t.info = await t.post('open', cloneableOptions(options), []);
    } catch (e) {
      t.worker.terminate();
      throw e;
    }
    return t;
  }
  post(method, request, transfer) {
    if (this.closed) return Promise.reject(new LikenessError('InvalidStateError', 'the engine was closed'));
    return this.client.post(method, request, transfer);
  }
  call(method, request) {
    const transfer = [];
    for (const key of OPERATIONS[method]?.images ?? []) {
      if (request[key]) transfer.push(...transferables(request[key]));
    }
    return this.post(method, request, transfer);
  }
  close(err = new LikenessError('InvalidStateError', 'the engine was closed')) {
    this.closed = true;
    this.worker.terminate();
    this.client.failAll(err);
  }
}

/**
 * `likeness.sync`: this database's collections synced with the person's other devices through
 * a Likeness server, end-to-end encrypted (the server never holds the key).
 */
class LikenessSync {
  #call;
  #listeners;

  constructor(call, listeners) {
    this.#call = call;
    this.#listeners = listeners;
  }

  /** Create a group on `server`: `{groupId, deviceId, recoveryPhrase}` (show the phrase once). */
  create({ server, label = '', passphrase } = {}) { return this.#call('sync.create', { server, label, passphrase }); }
  /** A single-use join code for another device: `{joinCode, shortCode, expiresAt}`. It holds the key. */
  invite() { return this.#call('sync.invite', {}); }
  /** Join with a code from `invite()` on another device (or `likeness sync invite`). */
  join(joinCode, { label = '', passphrase } = {}) { return this.#call('sync.join', { joinCode, label, passphrase }); }
  /** Keep the key only wrapped under `passphrase` (or change it): `{protected, locked}`. */
  protect(passphrase) { return this.#call('sync.protect', { passphrase }); }
  /** Keep the key as its recovery phrase again. */
  unprotect(passphrase) { return this.#call('sync.unprotect', { passphrase }); }
  /** Unwrap a protected key for this page (each page unlocks its own). */
  unlock(passphrase) { return this.#call('sync.unlock', { passphrase }); }
  /** Forget the unwrapped key here. */
  lock() { return this.#call('sync.lock', {}); }
  /** One sync round now: the report (`pulledRecords`, `pushedRecords`, `bytesDown`, ...). */
  now() { return this.#call('sync.now', {}); }
  /** Sync automatically (after local writes, live, on reconnect, every `intervalMs`). */
  start({ intervalMs = 60_000 } = {}) { return this.#call('sync.start', { intervalMs }); }
  stop() { return this.#call('sync.stop', {}); }
  /** `{state: 'idle'|'syncing'|'offline'|'error', code?, message?, report?, running, protected, locked}`. */
  status() { return this.#call('sync.status', {}); }
  /** `{only: CollectionIds | null, groupCollections}`: which collections this device syncs. */
  collections() { return this.#call('sync.collections', {}); }
  /** Sync only `collectionIds` (others stay here), or every collection (`null`). */
  setCollections(collectionIds) { return this.#call('sync.setCollections', { collectionIds }); }
  devices() { return this.#call('sync.devices', {}); }
  revoke(deviceId) { return this.#call('sync.revoke', { deviceId }); }
  /** Stop syncing, revoke this device, forget the group. The collections stay here. */
  leave() { return this.#call('sync.leave', {}); }
  /** Call `listener(status)` on every status change; returns a function that stops it. */
  onStatus(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export class Likeness {
  #transport;
  #database;
  #reopen;
  #restarting = null;
  #closed = false;

  constructor(transport, database, reopen, statusListeners = new Set()) {
    this.#transport = transport;
    this.#database = database;
    this.#reopen = reopen;
    this.sync = new LikenessSync((method, request) => this.#callRaw(method, request), statusListeners);
  }

  /**
   * Load the engine and open the collections stored in IndexedDB database `database`
   * (default "likeness"; `null` keeps them in memory only). With `worker: true` (the default where module workers exist),
   * detection, embedding and search run in a Web Worker.
   */
  static async open(options = {}) {
    const onProgress = options.onProgress ?? (() => {});
    const statusListeners = new Set();
    const onSyncStatus = (status) => statusListeners.forEach((l) => l(status));
    const useWorker = options.worker ?? typeof Worker !== 'undefined';
    const openWorker = () => WorkerTransport.open(options, onProgress, onSyncStatus);
    let transport;
    if (useWorker) {
      try {
        transport = await openWorker();
      } catch (e) {
        // A WebAssembly trap while the engine loaded: JavaScriptCore (WebKitGTK 2.50) has been
        // seen to trap in about one open in a hundred, on input that loads the next time. A
        // fresh worker is a fresh instance: tried once more (progress is reported again).
        if (e?.code !== 'WasmTrap') throw e;
        transport = await openWorker();
      }
    } else {
      transport = await LocalTransport.open(options, onProgress, onSyncStatus);
    }
    // A worker that trapped is replaced by a fresh one (a new wasm instance) on the next
    // call. On the page's own thread the wasm instance cannot be replaced: calls keep failing.
    const reopen = useWorker ? openWorker : null;
    const database = options.database === undefined ? 'likeness' : options.database;
    return new Likeness(transport, database, reopen, statusListeners);
  }

  /** Delete a database and every collection in it. Open engines on it close their connection. */
  static deleteDatabase(database = 'likeness') {
    return new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(database);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(new LikenessError('StorageException', `cannot delete ${database}: ${req.error?.message}`));
    });
  }

  /** The embedder version stamped on every face (`faceModelVersion`). */
  get faceModelVersion() {
    return this.#transport.info.faceModelVersion;
  }

  /** Milliseconds spent fetching (wasm + models) and initialising (compile, model load, open). */
  get timings() {
    return this.#transport.info.timings;
  }

  /**
   * Call `listener({method, collectionId})` whenever another tab or worker on this origin
   * changes this database. Returns a function that stops listening.
   */
  onChange(listener) {
    if (this.#database == null || typeof BroadcastChannel === 'undefined') return () => {};
    const channel = new BroadcastChannel(`likeness:${this.#database}`);
    channel.onmessage = ({ data }) => listener(data);
    return () => channel.close();
  }

  /** Stop the worker (if any). Later calls reject. */
  close() {
    this.#closed = true;
    this.#transport.close();
  }

  /** Replace a worker that stopped after a WebAssembly trap; concurrent callers share one restart. */
  #restart() {
    this.#restarting ??= (async () => {
      try {
        this.#transport.close(
          new LikenessError('InternalServerError', 'the engine stopped after a WebAssembly trap; the outcome of this call is unknown'),
        );
        this.#transport = await this.#reopen();
      } finally {
        this.#restarting = null;
      }
    })();
    return this.#restarting;
  }

  async #call(method, request = {}) {
    if (request === null || typeof request !== 'object') {
      throw new LikenessError('InvalidParameterException', `${method} takes one request object`);
    }
    const prepared = { ...request };
    for (const key of OPERATIONS[method].images ?? []) {
      if (prepared[key] == null) throw new LikenessError('InvalidParameterException', `${key} is required`);
      prepared[key] = await describeImage(prepared[key]);
    }
    return this.#callRaw(method, prepared);
  }

  async #callRaw(method, request) {
    if (this.#transport.stopped && this.#reopen && !this.#closed) await this.#restart();
    return this.#transport.call(method, request);
  }

  createCollection(request) { return this.#call('createCollection', request); }
  deleteCollection(request) { return this.#call('deleteCollection', request); }
  describeCollection(request) { return this.#call('describeCollection', request); }
  listCollections(request = {}) { return this.#call('listCollections', request); }
  indexFaces(request) { return this.#call('indexFaces', request); }

  /**
   * Streaming face search over a camera (`MediaStream`) or a `<video>`: every processed
   * frame's tracked faces with their best matches so far go to `onFrame`
   * ({timestamp, faceSearchResponse: [{index, detectedFace, matchedFaces}], ended, stats}).
   * Resolves with a FaceSearchStream (`stop()`, `stats`, `persons()`, `done`).
   */
  startFaceSearchStream(options = {}) {
    return FaceSearchStream.start((method, request) => this.#call(method, request), options);
  }

  /**
   * Stored-video face search: StartFaceSearch + GetFaceSearch for a File, Blob, URL (mp4,
   * webm, whatever this browser plays) or a `<video>`, decoded by the browser faster than
   * real time. `{video, collectionId, faceMatchThreshold?, maxFaces?, sortBy?,
   * framesPerSecond? (10), range?, onProgress?, signal?}` resolves with `{jobStatus,
   * videoMetadata, persons, stats}`; `signal` (an AbortSignal) cancels.
   */
  startFaceSearch(options = {}) {
    return searchVideo((method, request) => this.#call(method, request), options);
  }
  listFaces(request) { return this.#call('listFaces', request); }
  deleteFaces(request) { return this.#call('deleteFaces', request); }
  searchFaces(request) { return this.#call('searchFaces', request); }
  searchFacesByImage(request) { return this.#call('searchFacesByImage', request); }
  createUser(request) { return this.#call('createUser', request); }
  deleteUser(request) { return this.#call('deleteUser', request); }
  listUsers(request) { return this.#call('listUsers', request); }
  associateFaces(request) { return this.#call('associateFaces', request); }
  disassociateFaces(request) { return this.#call('disassociateFaces', request); }
  searchUsers(request) { return this.#call('searchUsers', request); }
  searchUsersByImage(request) { return this.#call('searchUsersByImage', request); }
  detectFaces(request) { return this.#call('detectFaces', request); }
  compareFaces(request) { return this.#call('compareFaces', request); }
  /** The whole collection as bytes (LKNS change set): a backup, or a seed for another device. */
  exportCollection(request) { return this.#call('exportCollection', request); }
  /** Merge bytes from exportCollection (or a sync peer) into this device's collections. */
  importChanges(request) { return this.#call('importChanges', request); }
}

export default Likeness;
