// Sync in the engine's thread (the worker, or the page): the HTTP side of the shared client
// state machine (which runs in wasm, `Engine.syncGroup`), the sync state in IndexedDB, the
// live channel, automatic sync and status events.
//
// Tabs of one origin share a database: a sync runs under the Web Lock `likeness-sync:<db>`,
// and reads the state from IndexedDB inside it, so two tabs never push the same records.
// The state is written (and committed) before every push, and local changes live in the
// collections themselves until the server has them: nothing here ever discards them.
//
// The group key is kept as its recovery phrase, or (after `protect`) only wrapped under a
// passphrase (Argon2id); then each page that syncs unlocks it into its own memory.

import { syncNewGroupKey, syncKeyId, syncJoinConfirmation, syncWrapKey, syncUnwrapKey } from './wasm/likeness_wasm.js';
import { LikenessError } from './errors.js';
import { KeyValue } from './key-value.js';

const STATE_KEY = 'state';
const CONFIG_KEY = 'config';

function offline(e) {
  return new LikenessError('SyncOfflineException', `the sync server is unreachable: ${e?.message ?? e}`);
}

/** A server refusal: `code` is the server's stable code. */
function refused(status, body) {
  let code = 'HttpError';
  let message = `HTTP ${status}`;
  try {
    const v = JSON.parse(new TextDecoder().decode(body));
    code = v.code ?? code;
    message = v.message ?? message;
  } catch {
    // Not JSON: keep the status.
  }
  const name = code === 'WrongKey' ? 'WrongKeyException' : 'SyncServerException';
  return Object.assign(new LikenessError(name, `the sync server refused: ${code}: ${message}`), { code, status });
}

/** The sync server's HTTP API for one device. */
class Server {
  constructor(base, groupId = '', token = '') {
    this.base = String(base).replace(/\/+$/, '');
    this.groupId = groupId;
    this.token = token;
  }

  async send(method, path, body, json) {
    const headers = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = json ? 'application/json' : 'application/octet-stream';
    let response;
    try {
      response = await fetch(this.base + path, { method, headers, body: json && body !== undefined ? JSON.stringify(body) : body });
    } catch (e) {
      throw offline(e);
    }
    let bytes;
    try {
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (e) {
      throw offline(e);
    }
    if (!response.ok) throw refused(response.status, bytes);
    return { response, bytes };
  }

  async json(method, path, body) {
    const { bytes } = await this.send(method, path, body, true);
    return bytes.length ? JSON.parse(new TextDecoder().decode(bytes)) : {};
  }

  collection(tag) {
    return `/v1/groups/${this.groupId}/collections/${tag}`;
  }

  // ---- the SyncHost the wasm state machine calls ----------------------------------------

  async putCollection(tag, keyCheck) {
    await this.send('PUT', this.collection(tag), keyCheck, false);
  }
  async push(tag, body) {
    const { bytes } = await this.send('POST', `${this.collection(tag)}/records`, body, false);
    return JSON.parse(new TextDecoder().decode(bytes)).sequences;
  }
  async pull(tag, after) {
    try {
      const { response, bytes } = await this.send('GET', `${this.collection(tag)}/records?after=${after}`);
      return { body: bytes, more: response.headers.get('likeness-more') === 'true' };
    } catch (e) {
      if (e.code === 'SnapshotRequired') return { snapshotRequired: true };
      throw e;
    }
  }
  async getSnapshot(tag) {
    try {
      const { response, bytes } = await this.send('GET', `${this.collection(tag)}/snapshot`);
      return { covers: Number(response.headers.get('likeness-snapshot-seq')), record: bytes };
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }
  async putSnapshot(tag, covers, record) {
    await this.send('PUT', `${this.collection(tag)}/snapshot?covers=${covers}`, record, false);
  }
}

/** `<server>#<group>.<invite>.<key>`: the part after `#` never reaches a server. */
function joinCode(server, groupId, invite, recoveryPhrase) {
  return `${server}#${groupId}.${invite}.${recoveryPhrase.replace(/-/g, '')}`;
}

function parseJoinCode(code) {
  const bad = () => new LikenessError('InvalidParameterException', 'not a Likeness join code');
  const text = String(code ?? '').trim();
  const hash = text.indexOf('#');
  if (hash < 0) throw bad();
  const [groupId, invite, phrase] = text.slice(hash + 1).split('.');
  if (!groupId || !invite || !phrase) throw bad();
  return { server: text.slice(0, hash), groupId, invite, phrase };
}

/**
 * One database's sync. `engine` is the wasm Engine, `withCollections(fn)` runs `fn` holding
 * the database's lock, `emit(status)` reports status changes.
 */
export class Sync {
  #engine;
  #withCollections;
  #emit;
  #kv;
  #lockName;
  #auto = false;
  #timer = null;
  #live = null;
  #running = null;
  #again = false;
  #backoffMs = 1000;
  /** The recovery phrase unwrapped by `unlock` (memory only). */
  #unlocked = null;
  #onOnline = () => this.#schedule(0);

  constructor(engine, database, withCollections, emit) {
    this.#engine = engine;
    this.#withCollections = withCollections;
    this.#emit = emit;
    this.#lockName = database == null ? null : `likeness-sync:${database}`;
    this.kvName = database == null ? null : `${database}:sync`;
    this.status = { state: 'idle' };
  }

  async #store() {
    this.#kv ??= await KeyValue.open(this.kvName);
    return this.#kv;
  }

  async #config() {
    const config = await (await this.#store()).get(CONFIG_KEY);
    if (!config) {
      throw new LikenessError('ResourceNotFoundException', 'this database is not in a sync group: create or join one');
    }
    return config;
  }

  /** The group key's recovery phrase: stored in the clear, or unlocked. */
  #phrase(config) {
    if (config.recoveryPhrase) return config.recoveryPhrase;
    if (this.#unlocked) return this.#unlocked;
    throw new LikenessError('SyncLockedException', 'the group key is protected by a passphrase: unlock it first');
  }

  /** The config to store: the phrase wrapped under `passphrase` when one is given. */
  static #keep(config, phrase, passphrase) {
    const rest = { ...config };
    delete rest.recoveryPhrase;
    delete rest.wrappedKey;
    if (passphrase == null) return { ...rest, recoveryPhrase: phrase };
    Sync.#checkPassphrase(passphrase);
    return { ...rest, wrappedKey: syncWrapKey(phrase, passphrase) };
  }

  static #checkPassphrase(passphrase) {
    if (passphrase != null && (typeof passphrase !== 'string' || passphrase.length === 0)) {
      throw new LikenessError('InvalidParameterException', 'passphrase: a non-empty string');
    }
  }

  #server(config) {
    return new Server(config.server, config.groupId, config.token);
  }

  #setStatus(status) {
    this.status = status;
    this.#emit(status);
  }

  async #assertNotJoined() {
    if (await (await this.#store()).get(CONFIG_KEY)) {
      throw new LikenessError('ResourceAlreadyExistsException', 'this database is already in a sync group');
    }
  }

  /** Create a sync group on `server`; the recovery phrase is returned once, never stored elsewhere. */
  async create({ server, label = '', passphrase } = {}) {
    if (!server) throw new LikenessError('InvalidParameterException', 'server is required');
    await this.#assertNotJoined();
    const key = syncNewGroupKey();
    Sync.#checkPassphrase(passphrase); // before the server is asked
    const s = new Server(server);
    const v = await s.json('POST', '/v1/groups', { key_id: key.keyId, label });
    const config = Sync.#keep({ server: s.base, groupId: v.group_id, deviceId: v.device_id, token: v.token }, key.recoveryPhrase, passphrase);
    await (await this.#store()).set(CONFIG_KEY, config);
    this.#unlocked = passphrase == null ? null : key.recoveryPhrase;
    return { groupId: config.groupId, deviceId: config.deviceId, recoveryPhrase: key.recoveryPhrase };
  }

  /**
   * A single-use join code for another device (it holds the group key: share it privately),
   * and the short code the joining device will show too, so the person can compare them.
   */
  async invite() {
    const config = await this.#config();
    this.#phrase(config); // locked: refuse before spending an invite
    const v = await this.#server(config).json('POST', `/v1/groups/${config.groupId}/invites`, {});
    return {
      joinCode: joinCode(config.server, config.groupId, v.invite, this.#phrase(config)),
      shortCode: syncJoinConfirmation(this.#phrase(config), config.groupId, v.invite),
      expiresAt: v.expires_at,
    };
  }

  /** Join the group of a join code from `invite()` (or `likeness sync invite`). */
  async join(code, { label = '', passphrase } = {}) {
    await this.#assertNotJoined();
    const { server, groupId, invite, phrase } = parseJoinCode(code);
    const keyId = syncKeyId(phrase);
    Sync.#checkPassphrase(passphrase);
    const s = new Server(server);
    const v = await s.json('POST', '/v1/join', { invite, label });
    if (v.group_id !== groupId || v.key_id !== keyId) {
      throw new LikenessError('WrongKeyException', 'the join code does not match the group it opened');
    }
    const config = Sync.#keep({ server: s.base, groupId, deviceId: v.device_id, token: v.token }, phrase, passphrase);
    await (await this.#store()).set(CONFIG_KEY, config);
    this.#unlocked = passphrase == null ? null : phrase;
    return { groupId, deviceId: config.deviceId, shortCode: syncJoinConfirmation(phrase, groupId, invite) };
  }

  /**
   * Keep the group key only wrapped under `passphrase` (Argon2id): the recovery phrase is
   * removed from storage, and each page that syncs must `unlock` first. On a key already
   * protected (and unlocked here) this changes the passphrase.
   */
  async protect(passphrase) {
    const config = await this.#config();
    const phrase = this.#phrase(config);
    await (await this.#store()).set(CONFIG_KEY, Sync.#keep(config, phrase, passphrase));
    this.#unlocked = phrase;
    return this.keyStatus();
  }

  /** Store the key as its recovery phrase again (`WrongPassphraseException` on a wrong one). */
  async unprotect(passphrase) {
    const config = await this.#config();
    if (!config.wrappedKey) return this.keyStatus();
    const phrase = syncUnwrapKey(config.wrappedKey, String(passphrase ?? ''));
    await (await this.#store()).set(CONFIG_KEY, Sync.#keep(config, phrase));
    this.#unlocked = null;
    return this.keyStatus();
  }

  /** Unwrap a protected key into this page's memory; automatic sync resumes. */
  async unlock(passphrase) {
    const config = await this.#config();
    if (config.wrappedKey) this.#unlocked = syncUnwrapKey(config.wrappedKey, String(passphrase ?? ''));
    this.#schedule(0);
    return this.keyStatus();
  }

  /** Forget the unwrapped key (a protected group stops syncing here until `unlock`). */
  lock() {
    this.#unlocked = null;
  }

  /** `{protected, locked}`: whether the key is kept wrapped, and whether it is unusable here now. */
  async keyStatus() {
    const config = await (await this.#store()).get(CONFIG_KEY);
    const isProtected = Boolean(config?.wrappedKey);
    return { protected: isProtected, locked: isProtected && !this.#unlocked };
  }

  /** Which collections this device syncs: `{only: [ids] | null, groupCollections: [ids]}`. */
  async collections() {
    await this.#config();
    const raw = await (await this.#store()).get(STATE_KEY);
    const state = raw ? JSON.parse(raw) : {};
    return { only: state.only ?? null, groupCollections: state.directory?.names ?? [] };
  }

  /**
   * Sync only the collections `ids` (the others stay on this device: not published, not
   * pulled), or every collection of the group (`null`, the default).
   */
  async setCollections(ids) {
    await this.#config();
    if (ids != null && (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && /^[a-zA-Z0-9_.-]{1,255}$/.test(id)))) {
      throw new LikenessError('InvalidParameterException', 'collections: an array of CollectionIds, or null for all');
    }
    const update = async () => {
      const kv = await this.#store();
      const raw = await kv.get(STATE_KEY);
      const state = raw ? JSON.parse(raw) : {};
      state.only = ids == null ? null : [...new Set(ids)].sort();
      await kv.set(STATE_KEY, JSON.stringify(state));
    };
    // Under the sync lock: never between a round's read and write of the state.
    await (this.#lockName ? navigator.locks.request(this.#lockName, update) : update());
    this.localWrite();
    return this.collections();
  }

  /** The group's devices, this one marked. */
  async devices() {
    const config = await this.#config();
    const v = await this.#server(config).json('GET', `/v1/groups/${config.groupId}/devices`);
    return v.devices.map((d) => ({
      deviceId: d.device_id,
      label: d.label,
      createdAt: d.created_at,
      revokedAt: d.revoked_at ?? null,
      thisDevice: d.device_id === config.deviceId,
    }));
  }

  async revoke(deviceId) {
    const config = await this.#config();
    await this.#server(config).send('DELETE', `/v1/groups/${config.groupId}/devices/${encodeURIComponent(deviceId)}`);
  }

  /**
   * Leave the group: stop syncing, revoke this device on the server when it can be reached,
   * and forget the group here. The collections stay on this device.
   */
  async leave() {
    this.stop();
    const config = await this.#config();
    try {
      await this.#server(config).send('DELETE', `/v1/groups/${config.groupId}/devices/${config.deviceId}`);
    } catch (e) {
      if (e.name !== 'SyncOfflineException' && e.status !== 401) throw e;
    }
    const kv = await this.#store();
    await kv.set(STATE_KEY, undefined);
    await kv.set(CONFIG_KEY, undefined);
    this.#unlocked = null;
    this.#setStatus({ state: 'idle' });
  }

  /** Sync now: one full round under the tabs' sync lock. Resolves with the report. */
  async now() {
    const config = await this.#config();
    let phrase;
    try {
      phrase = this.#phrase(config);
    } catch (e) {
      this.#setStatus({ state: 'error', code: e.name, message: e.message });
      throw e;
    }
    this.#setStatus({ state: 'syncing' });
    const round = async () => {
      const kv = await this.#store();
      // Read inside the lock: another tab may have synced since.
      const state = (await kv.get(STATE_KEY)) ?? '';
      const host = this.#server(config);
      host.saveState = (json) => kv.set(STATE_KEY, json);
      return this.#withCollections(() => this.#engine.syncGroup(config.groupId, phrase, state, host));
    };
    try {
      const r = this.#lockName ? await navigator.locks.request(this.#lockName, round) : await round();
      const report = {
        pulledRecords: r.PulledRecords,
        pulledSnapshot: r.PulledSnapshot,
        pushedRecords: r.PushedRecords,
        wroteSnapshot: r.WroteSnapshot,
        bytesDown: r.BytesDown,
        bytesUp: r.BytesUp,
        collections: r.Collections,
      };
      this.#backoffMs = 1000;
      this.#setStatus({ state: 'idle', report, at: Date.now() });
      return report;
    } catch (e) {
      const err = LikenessError.from(e);
      if (e?.code) err.code = e.code;
      if (e?.status) err.status = e.status;
      this.#setStatus({
        state: err.name === 'SyncOfflineException' ? 'offline' : 'error',
        code: err.code ?? err.name,
        message: err.message,
      });
      throw err;
    }
  }

  /**
   * Sync automatically: now, after every local write, when another device pushes (the live
   * channel), when the browser comes back online, and every `intervalMs`. Offline rounds are
   * retried with backoff. A revoked device stops.
   */
  async start({ intervalMs = 60_000 } = {}) {
    await this.#config();
    if (this.#auto) return;
    this.#auto = true;
    this.intervalMs = intervalMs;
    globalThis.addEventListener?.('online', this.#onOnline);
    this.#listen();
    this.#schedule(0);
  }

  stop() {
    this.#auto = false;
    globalThis.removeEventListener?.('online', this.#onOnline);
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#live?.abort();
    this.#live = null;
  }

  get running() {
    return this.#auto;
  }

  /** Called by the host after each local write. */
  localWrite() {
    if (this.#auto) this.#schedule(50);
  }

  #schedule(delayMs) {
    if (!this.#auto) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#round(), delayMs);
  }

  async #round() {
    if (!this.#auto) return;
    if (this.#running) {
      // One round at a time; another follows if something asked meanwhile.
      this.#again = true;
      return;
    }
    let next = this.intervalMs;
    this.#running = this.now().catch((e) => {
      if (e.status === 401 || e.code === 'Unauthorized') {
        // Revoked: no retry will help.
        this.stop();
        return;
      }
      if (e.name === 'SyncLockedException') {
        next = null; // until `unlock` (which schedules a round)
        return;
      }
      next = this.#backoffMs;
      this.#backoffMs = Math.min(this.#backoffMs * 2, 60_000);
    });
    await this.#running;
    this.#running = null;
    if (this.#again) {
      this.#again = false;
      next = 0;
    }
    if (next != null) this.#schedule(next);
  }

  /** The live channel: server-sent events read through fetch (so the token is a header). */
  async #listen() {
    let backoff = 500;
    while (this.#auto) {
      const config = await this.#config().catch(() => null);
      if (!config) return;
      const controller = new AbortController();
      this.#live = controller;
      try {
        const response = await fetch(`${config.server}/v1/groups/${config.groupId}/events`, {
          headers: { authorization: `Bearer ${config.token}`, accept: 'text/event-stream' },
          signal: controller.signal,
        });
        if (response.status === 401) {
          this.#schedule(0); // the round reports the refusal and stops
          return;
        }
        if (response.ok && response.body) {
          backoff = 500;
          this.#schedule(0); // connected (again): whatever was missed
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffered = '';
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            buffered += value;
            const lines = buffered.split('\n');
            buffered = lines.pop();
            if (lines.some((l) => l.startsWith('data:'))) this.#schedule(0);
          }
        }
      } catch {
        // Offline or aborted: retried below while automatic sync is on.
      }
      if (!this.#auto) return;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 30_000);
    }
  }

  close() {
    this.stop();
    this.#kv?.close();
  }
}
