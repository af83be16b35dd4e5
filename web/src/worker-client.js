// Calls into a module Worker that runs worker.js: {id, method, request} out, {id, result} or
// {id, error: {name, message, code}} back, paired by id. Messages that answer no call
// (progress, sync status) go to `onEvent`, which returns true for those it took.

import { LikenessError } from './errors.js';

export class WorkerClient {
  #pending = new Map();
  #nextId = 1;

  constructor(worker, onEvent = () => false) {
    this.worker = worker;
    worker.onmessage = ({ data }) => {
      if (onEvent(data)) return;
      const p = this.#pending.get(data.id);
      if (!p) return;
      this.#pending.delete(data.id);
      if (data.error) {
        const err = new LikenessError(data.error.name, data.error.message);
        p.reject(data.error.code ? Object.assign(err, { code: data.error.code }) : err);
      } else {
        p.resolve(data.result);
      }
    };
  }

  post(method, request, transfer = []) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, request }, transfer);
    });
  }

  /** Reject every call still waiting for its answer. */
  failAll(err) {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
