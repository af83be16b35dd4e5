// A small key-value store over IndexedDB (or memory): the sync client's state and the
// prepared-model cache each keep one.

import { LikenessError } from './errors.js';

/** A small key-value store: an IndexedDB database of its own, or memory. */
export class KeyValue {
  static async open(name) {
    const kv = new KeyValue();
    if (name == null) {
      kv.memory = new Map();
      return kv;
    }
    kv.db = await new Promise((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('kv');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(new LikenessError('StorageException', `cannot open ${name}: ${req.error?.message}`));
    });
    return kv;
  }
  get(key) {
    if (this.memory) return Promise.resolve(this.memory.get(key));
    return new Promise((resolve, reject) => {
      const req = this.db.transaction('kv').objectStore('kv').get(key);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(new LikenessError('StorageException', req.error?.message ?? 'read failed'));
    });
  }
  /** Resolves once the write is committed (durable, as IndexedDB promises it). */
  set(key, value) {
    if (this.memory) {
      if (value === undefined) this.memory.delete(key);
      else this.memory.set(key, value);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction('kv', 'readwrite', { durability: 'strict' });
      if (value === undefined) tx.objectStore('kv').delete(key);
      else tx.objectStore('kv').put(value, key);
      tx.oncomplete = () => resolve();
      tx.onerror = tx.onabort = () =>
        reject(new LikenessError('StorageException', tx.error?.message ?? 'write failed'));
    });
  }
  /** Every key gone (resolves once committed). */
  clear() {
    if (this.memory) {
      this.memory.clear();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction('kv', 'readwrite');
      tx.objectStore('kv').clear();
      tx.oncomplete = () => resolve();
      tx.onerror = tx.onabort = () =>
        reject(new LikenessError('StorageException', tx.error?.message ?? 'clear failed'));
    });
  }
  close() {
    this.db?.close();
  }
}
