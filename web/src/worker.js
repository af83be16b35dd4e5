// Worker entry: hosts the engine off the main thread. The page talks to it through
// `Likeness.open({ worker: true })`; messages are {id, method, request} in and
// {id, result} / {id, error: {name, message, code}, stopped} / {progress} / {syncStatus} out.

import { Host } from './host.js';

let host = null;

function reply(id, body, transfer = []) {
  self.postMessage({ id, ...body }, transfer);
}

self.onmessage = async ({ data }) => {
  const { id, method, request } = data;
  try {
    if (method === 'open') {
      host = await Host.open(
        request,
        (progress) => self.postMessage({ progress }),
        (syncStatus) => self.postMessage({ syncStatus }),
      );
      reply(id, { result: { faceModelVersion: host.faceModelVersion, timings: host.timings } });
      return;
    }
    if (!host) throw Object.assign(new Error('the engine is not open'), { name: 'InvalidStateError' });
    const result = await host.call(method, request);
    const transfer = result?.changes instanceof Uint8Array ? [result.changes.buffer] : [];
    reply(id, { result }, transfer);
  } catch (e) {
    // `stopped`: the engine trapped and this worker is done; the page starts a new one.
    const error = { name: e?.name ?? 'InternalServerError', message: e?.message ?? String(e), code: e?.code };
    reply(id, { error, stopped: host?.stopped != null });
  }
};
