// Streaming face search on the page's side: frames from a camera (MediaStream) or a <video>
// go to the engine's thread one at a time, as fast as it answers; frames that arrive while
// one is in flight are skipped, never queued, so results stay live and the page never blocks.

import { LikenessError } from './errors.js';

const median = (xs) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** A <video> playing `source` (a MediaStream, or a <video> used as it is). */
async function videoFor(source) {
  if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) return { video: source, owned: false };
  if (typeof MediaStream !== 'undefined' && source instanceof MediaStream) {
    if (source.getVideoTracks().length === 0) throw new LikenessError('InvalidParameterException', 'the MediaStream has no video track');
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = source;
    try {
      await video.play();
    } catch (e) {
      throw new LikenessError('InvalidParameterException', `cannot play the MediaStream: ${e.message}`);
    }
    return { video, owned: true };
  }
  throw new LikenessError('InvalidParameterException', 'source: a MediaStream (camera) or an HTMLVideoElement');
}

/**
 * One running face search over a video or camera. `done` settles when it stops: resolves
 * after `stop()` or the end of a <video>, rejects if the camera's track ends
 * (`StreamEndedException`) or a frame fails.
 */
export class FaceSearchStream {
  #call;
  #id;
  #video;
  #owned;
  #onFrame;
  #stopped = false;
  #busy = false;
  #last = -1;
  #start = performance.now();
  #processed = [];
  #track = [];
  #search = [];
  #dropped = 0;
  #settle;
  #watchdog = null;

  static async start(call, { source, collectionId, faceMatchThreshold, maxFaces, range, onFrame = () => {} } = {}) {
    if (!collectionId) throw new LikenessError('InvalidParameterException', 'collectionId is required');
    const { video, owned } = await videoFor(source);
    const { streamId } = await call('faceSearchStart', { collectionId, faceMatchThreshold, maxFaces, range });
    return new FaceSearchStream(call, streamId, video, owned, source, onFrame);
  }

  constructor(call, id, video, owned, source, onFrame) {
    this.#call = call;
    this.#id = id;
    this.#video = video;
    this.#owned = owned;
    this.#onFrame = onFrame;
    this.done = new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.done.catch(() => {}); // the caller may never look; stop() still reports through it
    // A camera track that ends (unplugged, permission revoked, or stopped by the page, which
    // fires no 'ended' event) stops the search with an error.
    const tracks = source instanceof MediaStream ? source.getVideoTracks() : [];
    if (tracks.length) {
      const check = () => {
        if (tracks.every((t) => t.readyState === 'ended')) {
          this.#finish(new LikenessError('StreamEndedException', 'the camera stream ended'));
        }
      };
      for (const t of tracks) t.addEventListener('ended', check);
      this.#watchdog = setInterval(check, 250);
    }
    if (!owned) video.addEventListener('ended', () => this.#finish(null));
    this.#next();
  }

  #next() {
    if (this.#stopped) return;
    if (typeof this.#video.requestVideoFrameCallback === 'function') {
      this.#video.requestVideoFrameCallback((_, meta) => this.#frame(meta.mediaTime));
    } else {
      setTimeout(() => this.#frame(this.#video.currentTime), 1000 / 30);
    }
  }

  async #frame(mediaTime) {
    this.#next();
    if (this.#stopped) return;
    if (this.#busy) {
      this.#dropped += 1;
      return;
    }
    this.#busy = true;
    // A camera's clock is the page's; a file's is its own media time.
    const ms = this.#owned ? performance.now() - this.#start : mediaTime * 1000;
    const timestamp = Math.max(this.#last + 1, Math.round(ms));
    this.#last = timestamp;
    try {
      const result = await this.#call('faceSearchFrame', { streamId: this.#id, image: this.#video, timestamp });
      if (this.#stopped) return;
      const now = performance.now();
      this.#processed.push(now);
      while (this.#processed.length && this.#processed[0] < now - 2000) this.#processed.shift();
      this.#track.push(result.stats.trackMs);
      this.#search.push(result.stats.searchMs);
      if (this.#track.length > 300) {
        this.#track.shift();
        this.#search.shift();
      }
      this.#onFrame(result);
    } catch (e) {
      this.#finish(LikenessError.from(e));
    } finally {
      this.#busy = false;
    }
  }

  /**
   * `{fps, framesDropped, trackMs, searchMs}`: frames processed per second over the last
   * 2 s, frames skipped because one was in flight, and median milliseconds per stage
   * (detect + track + embed where due; search).
   */
  get stats() {
    const span = this.#processed.length > 1 ? (this.#processed.at(-1) - this.#processed[0]) / 1000 : 0;
    return {
      fps: span > 0 ? (this.#processed.length - 1) / span : 0,
      framesDropped: this.#dropped,
      trackMs: median(this.#track),
      searchMs: median(this.#search),
    };
  }

  /** Every person seen so far at every processed frame, with their track's best matches. */
  async persons({ sortBy = 'TIMESTAMP' } = {}) {
    return (await this.#call('faceSearchPersons', { streamId: this.#id, sortBy })).persons;
  }

  /** Stop: no more frames are sent; `done` resolves. The camera itself is the caller's. */
  async stop() {
    await this.#finish(null);
  }

  async #finish(error) {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#watchdog);
    if (this.#owned) {
      this.#video.pause();
      this.#video.srcObject = null;
    }
    try {
      await this.#call('faceSearchStop', { streamId: this.#id });
    } catch {
      // The engine may be gone (closed, trapped): nothing left to free.
    }
    if (error) this.#settle.reject(error);
    else this.#settle.resolve();
  }
}
