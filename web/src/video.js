// Face search over video on the page's side.
// - Streaming (`FaceSearchStream`): frames from a camera (MediaStream) or a <video> go to the
//   engine's thread as fast as it answers, two in flight so this thread's frame capture and
//   the worker's transfer overlap the engine's work; frames that arrive while two are in flight
//   are skipped, never queued, so results stay live and the page never blocks.
// - Stored video (`searchVideo`): a file, blob, URL or <video> played faster than real time,
//   sampled at a fixed rate, every person found with timestamps, as GetFaceSearch answers.

import { LikenessError } from './errors.js';
import { keepRecent, median } from './stats.js';
import { probeVideo, demuxVideo } from './container.js';

/** Frames handed to the engine and not yet answered, at most. */
const IN_FLIGHT = 2;

/**
 * The frame a <video> shows now, as something `describeImage` takes without waiting: a
 * VideoFrame (captured synchronously, exactly the presented frame) where WebCodecs exists,
 * else the element itself (copied by createImageBitmap).
 */
function capture(video) {
  if (typeof VideoFrame === 'function') {
    try {
      return new VideoFrame(video);
    } catch {
      // No frame yet (readyState < 2): the element path says so with a typed error.
    }
  }
  return video;
}

/**
 * A <video> playing `source` (a MediaStream, or a <video> used as it is), or `{frames}` for
 * an iterable (sync or async) of VideoFrames or other images, searched one after another.
 */
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
  if (source != null && (typeof source[Symbol.asyncIterator] === 'function' || typeof source[Symbol.iterator] === 'function')) {
    return { frames: source };
  }
  if (source != null && typeof source === 'object' && 'camera' in source) {
    const camera = await openCamera(source.camera === true ? {} : source.camera);
    const { video } = await videoFor(camera);
    return { video, owned: true, camera };
  }
  throw new LikenessError('InvalidParameterException', 'source: a MediaStream (camera), {camera: constraints}, an HTMLVideoElement, or an iterable of VideoFrames');
}

/**
 * A camera by getUserMedia, its failures as typed errors: denied (`AccessDeniedException`),
 * no camera that fits (`InvalidParameterException`), in use elsewhere (`ResourceInUseException`).
 */
async function openCamera(constraints = {}) {
  if (!globalThis.navigator?.mediaDevices?.getUserMedia) {
    throw new LikenessError('InvalidParameterException', 'this page cannot open a camera (no navigator.mediaDevices: it needs a secure context, https or localhost)');
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
  } catch (e) {
    const names = {
      NotAllowedError: ['AccessDeniedException', 'camera access was denied'],
      SecurityError: ['AccessDeniedException', 'camera access is not allowed here'],
      NotFoundError: ['InvalidParameterException', 'no camera found'],
      OverconstrainedError: ['InvalidParameterException', 'no camera matches the constraints'],
      NotReadableError: ['ResourceInUseException', 'the camera cannot be read (in use by another application?)'],
    };
    const [name, what] = names[e?.name] ?? ['InvalidParameterException', 'cannot open the camera'];
    throw new LikenessError(name, `${what}: ${e?.message ?? e}`);
  }
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
  #inFlight = 0;
  #last = -1;
  #start = performance.now();
  #processed = [];
  #stages = { imageMs: [], trackMs: [], searchMs: [], latencyMs: [], embedMs: [], embedRunMs: [], fullEmbedMs: [] };
  #dropped = 0;
  #settle;
  #watchdog = null;
  /** A camera this stream opened itself (`source: {camera}`): stopped with the stream. */
  #camera = null;

  static async start(call, { source, collectionId, faceMatchThreshold, maxFaces, range, embedIn, onFrame = () => {} } = {}) {
    if (!collectionId) throw new LikenessError('InvalidParameterException', 'collectionId is required');
    const { video, owned, frames, camera } = await videoFor(source);
    let streamId;
    try {
      ({ streamId } = await call('faceSearchStart', { collectionId, faceMatchThreshold, maxFaces, range, embedIn }));
    } catch (e) {
      camera?.getTracks().forEach((t) => t.stop());
      throw e;
    }
    return new FaceSearchStream(call, streamId, video, owned, camera ?? source, onFrame, frames, camera);
  }

  constructor(call, id, video, owned, source, onFrame, frames, camera) {
    this.#call = call;
    this.#id = id;
    this.#video = video;
    this.#owned = owned;
    this.#camera = camera ?? null;
    this.#onFrame = onFrame;
    this.done = new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.done.catch(() => {}); // the caller may never look; stop() still reports through it
    if (frames) {
      this.#pump(frames);
      return;
    }
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

  /** Frames from an iterable, each searched in turn (nothing skipped); they stay the caller's. */
  async #pump(frames) {
    try {
      for await (const frame of frames) {
        if (this.#stopped) return;
        const ms = typeof VideoFrame === 'function' && frame instanceof VideoFrame ? frame.timestamp / 1000 : performance.now() - this.#start;
        const timestamp = Math.max(this.#last + 1, Math.round(ms));
        this.#last = timestamp;
        await this.#search(frame, timestamp);
        if (this.#stopped) return;
      }
      this.#finish(null);
    } catch (e) {
      this.#finish(LikenessError.from(e));
    }
  }

  /** One frame to the engine and its answer to `onFrame`; the frame stays the caller's. */
  async #search(image, timestamp) {
    const captured = performance.now();
    const result = await this.#call('faceSearchFrame', { streamId: this.#id, image, timestamp });
    if (this.#stopped) return;
    const now = performance.now();
    result.stats.latencyMs = now - captured;
    this.#processed.push(now);
    while (this.#processed.length && this.#processed[0] < now - 2000) this.#processed.shift();
    for (const [key, list] of Object.entries(this.#stages)) keepRecent(list, result.stats[key], 300);
    this.#onFrame(result);
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
    if (this.#inFlight >= IN_FLIGHT) {
      this.#dropped += 1;
      return;
    }
    this.#inFlight += 1;
    // A camera's clock is the page's; a file's is its own media time.
    const ms = this.#owned ? performance.now() - this.#start : mediaTime * 1000;
    const timestamp = Math.max(this.#last + 1, Math.round(ms));
    this.#last = timestamp;
    const image = capture(this.#video);
    try {
      await this.#search(image, timestamp);
    } catch (e) {
      this.#finish(LikenessError.from(e));
    } finally {
      if (image !== this.#video) image.close();
      this.#inFlight -= 1;
    }
  }

  /**
   * `{fps, framesDropped, imageMs, trackMs, searchMs, latencyMs, embedMs, embedRunMs, fullEmbedMs}`: frames processed
   * per second over the last 2 s, frames skipped because two were in flight, and median
   * milliseconds per stage over the last 300 frames: pixels out of the frame (in the engine's
   * thread), detect + track (+ embed, when embedding on the engine's thread), search, capture
   * to answer, and in the embedder worker a new face's first pass (sent to the vector that
   * names it back) and a crop's two passes (sent to the flip-averaged vector back).
   */
  get stats() {
    const span = this.#processed.length > 1 ? (this.#processed.at(-1) - this.#processed[0]) / 1000 : 0;
    const medians = Object.fromEntries(Object.entries(this.#stages).map(([k, v]) => [k, median(v)]));
    return { fps: span > 0 ? (this.#processed.length - 1) / span : 0, framesDropped: this.#dropped, ...medians };
  }

  /** Every person seen so far at every processed frame, with their track's best matches. */
  async persons({ sortBy = 'TIMESTAMP' } = {}) {
    return (await this.#call('faceSearchPersons', { streamId: this.#id, sortBy })).persons;
  }

  /** Stop: no more frames are sent; `done` resolves. A camera the caller opened stays open. */
  async stop() {
    await this.#finish(null);
  }

  async #finish(error) {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#watchdog);
    this.#camera?.getTracks().forEach((t) => t.stop());
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

const MEDIA_ERRORS = { 1: 'loading was aborted', 2: 'a network error', 3: 'the frames cannot be decoded', 4: 'the format or codec is not supported' };

/** A <video> element's failure as a typed error: undecodable frames, or not a video it plays. */
function mediaError(video, what) {
  const code = video.error?.code ?? 0;
  const detail = video.error?.message ? ` (${video.error.message})` : '';
  const name = code === 3 ? 'InvalidImageFormatException' : 'InvalidParameterException';
  return new LikenessError(name, `${what}: ${MEDIA_ERRORS[code] ?? 'it cannot be played'}${detail}`);
}

const aborted = (signal) => signal.reason ?? new DOMException('the face search was cancelled', 'AbortError');

/** The video's bytes (File, Blob or URL), or the caller's <video> as it is. */
async function videoSource(video, signal) {
  if (typeof HTMLVideoElement !== 'undefined' && video instanceof HTMLVideoElement) return { element: video };
  let blob = video;
  if (typeof video === 'string' || video instanceof URL) {
    let response;
    try {
      response = await fetch(video, { signal });
    } catch (e) {
      if (signal?.aborted) throw aborted(signal);
      throw new LikenessError('InvalidParameterException', `cannot fetch the video ${video}: ${e.message}`);
    }
    if (!response.ok) throw new LikenessError('InvalidParameterException', `cannot fetch the video ${video}: HTTP ${response.status}`);
    blob = await response.blob();
  }
  if (!(typeof Blob !== 'undefined' && blob instanceof Blob)) {
    throw new LikenessError('InvalidParameterException', 'video: a File, Blob, URL or HTMLVideoElement');
  }
  if (blob.size === 0) throw new LikenessError('InvalidParameterException', 'the video is empty');
  return { blob };
}

/**
 * How long a <video> may go without loading or presenting a frame, while the page is visible,
 * before the search fails typed instead of staying pending. Time while the page is hidden does
 * not count: browsers pause frame callbacks in background tabs, and a search there resumes.
 */
const ELEMENT_STALL_MS = 20_000;

/**
 * Calls `fail()` once ELEMENT_STALL_MS of visible time have passed; the caller stops the watch
 * (the returned function) when the progress it waits for comes.
 */
function watchStall(fail) {
  let silent = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    if (typeof document === 'undefined' || document.visibilityState !== 'hidden') silent += now - last;
    last = now;
    if (silent >= ELEMENT_STALL_MS) {
      clearInterval(timer);
      fail();
    }
  }, 500);
  return () => clearInterval(timer);
}

/** A muted <video> playing `blob`, loaded to its first frame; `release()` frees it. */
async function elementFor(blob, probe, signal) {
  const url = URL.createObjectURL(blob);
  const element = document.createElement('video');
  element.muted = true;
  element.playsInline = true;
  element.preload = 'auto';
  const release = () => {
    element.removeAttribute('src');
    element.load();
    URL.revokeObjectURL(url);
  };
  const kind = probe.format ? `this ${probe.format}${probe.codec ? ` (${probe.codec})` : ''} video` : 'this file (not an MP4 or WebM video)';
  let unwatch = () => {};
  try {
    await new Promise((resolve, reject) => {
      element.addEventListener('loadeddata', resolve, { once: true });
      element.addEventListener('error', () => reject(mediaError(element, `cannot play ${kind}`)), { once: true });
      signal?.addEventListener('abort', () => reject(aborted(signal)), { once: true });
      unwatch = watchStall(() =>
        reject(new LikenessError('InvalidParameterException', `cannot play ${kind}: no frame loaded in ${ELEMENT_STALL_MS / 1000} s`)),
      );
      element.src = url;
    });
  } catch (e) {
    release();
    throw e;
  } finally {
    unwatch();
  }
  return { element, release };
}

/**
 * Picks sampled frames from frames seen in presentation order: a frame is due when its time
 * reaches the next sample time; samples then follow every `interval` ms of video.
 */
class Sampler {
  constructor(interval) {
    this.interval = interval;
    this.next = 0;
  }
  due(ms) {
    if (ms + 0.5 < this.next) return false;
    this.next = Math.max(this.next + this.interval, ms + this.interval / 2);
    return true;
  }
}

/**
 * Stored-video face search (StartFaceSearch + GetFaceSearch in one call). MP4 (H.264, VP9)
 * and WebM (VP8, VP9, AV1, H.264) files are demuxed here and decoded with WebCodecs'
 * VideoDecoder as fast as the CPU allows; anything else this browser plays (and a <video>
 * given as it is) is played muted, faster than real time. A frame is searched every
 * 1/`framesPerSecond` s of video time. Resolves with `{jobStatus, videoMetadata, persons,
 * stats}`; `persons` is every tracked face at every sampled frame with its track's best
 * matches, sorted by `sortBy`.
 */
export async function searchVideo(call, options = {}) {
  const {
    video,
    collectionId,
    faceMatchThreshold,
    maxFaces,
    range,
    embedIn,
    sortBy = 'TIMESTAMP',
    framesPerSecond = 10,
    onProgress = () => {},
    signal,
  } = options;
  if (!collectionId) throw new LikenessError('InvalidParameterException', 'collectionId is required');
  if (video == null) throw new LikenessError('InvalidParameterException', 'video is required');
  if (sortBy !== 'TIMESTAMP' && sortBy !== 'INDEX') throw new LikenessError('InvalidParameterException', `sortBy ${sortBy}: TIMESTAMP or INDEX`);
  if (!(framesPerSecond > 0 && framesPerSecond <= 120)) throw new LikenessError('InvalidParameterException', 'framesPerSecond: more than 0, at most 120');
  if (signal?.aborted) throw aborted(signal);
  const started = performance.now();
  const source = await videoSource(video, signal);
  const probe = source.blob ? await probeVideo(source.blob) : {};
  let demuxed = null;
  if (source.blob && typeof VideoDecoder === 'function') {
    demuxed = await demuxVideo(source.blob);
    const supported = demuxed?.samples.some((s) => s.key) && (await VideoDecoder.isConfigSupported(demuxed.config).catch(() => ({}))).supported;
    if (!supported) demuxed = null;
  }
  let element = source.element ?? null;
  let release = () => {};
  if (!demuxed && !element) ({ element, release } = await elementFor(source.blob, probe, signal));
  const saved = element && { playbackRate: element.playbackRate, muted: element.muted };
  let streamId = null;
  try {
    ({ streamId } = await call('faceSearchStart', { collectionId, faceMatchThreshold, maxFaces, range, embedIn }));
    const durationMillis = probe.durationMillis ?? (element && Number.isFinite(element.duration) ? Math.round(element.duration * 1000) : null);
    const ctx = {
      sampler: new Sampler(1000 / framesPerSecond),
      signal,
      frames: 0,
      search: async (image, ms) => {
        await call('faceSearchFrame', { streamId, image, timestamp: Math.round(ms) });
        ctx.frames += 1;
        onProgress({ processedMillis: Math.round(ms), durationMillis, framesProcessed: ctx.frames });
      },
    };
    if (demuxed) await searchDecoded(demuxed, ctx);
    else await searchPlayed(element, probe.frameRate ?? 30, ctx);
    if (signal?.aborted) throw aborted(signal);
    const { persons } = await call('faceSearchPersons', { streamId, sortBy });
    const elapsed = performance.now() - started;
    const videoMetadata = {
      codec: probe.codec ?? null,
      durationMillis,
      format: probe.format ?? null,
      frameRate: probe.frameRate ?? null,
      frameHeight: probe.frameHeight ?? element?.videoHeight ?? demuxed?.config.codedHeight ?? null,
      frameWidth: probe.frameWidth ?? element?.videoWidth ?? demuxed?.config.codedWidth ?? null,
    };
    const stats = {
      decoder: demuxed ? 'VideoDecoder' : 'video element',
      framesProcessed: ctx.frames,
      elapsedMillis: Math.round(elapsed),
      secondsPerVideoSecond: durationMillis ? elapsed / durationMillis : null,
    };
    onProgress({ processedMillis: durationMillis, durationMillis, framesProcessed: ctx.frames });
    return { jobStatus: 'SUCCEEDED', videoMetadata, persons, stats };
  } finally {
    if (streamId != null) await call('faceSearchStop', { streamId }).catch(() => {});
    if (element) {
      element.pause();
      element.playbackRate = saved.playbackRate;
      element.muted = saved.muted;
    }
    release();
  }
}

/**
 * How long the decoder may hold frames without answering (a frame, an error, a dequeue, the
 * flush) before the video counts as undecodable: WebKitGTK 2.50 has been seen to go silent
 * on a damaged WebM instead of reporting an error, which would leave the search pending.
 */
const DECODER_STALL_MS = 20_000;

/** WebCodecs: decode every frame in order, search the due ones; a bad frame fails typed. */
async function searchDecoded({ config, samples }, ctx) {
  const due = [];
  let failure = null;
  let wake = () => {};
  let heard = performance.now();
  const answer = () => {
    heard = performance.now();
    wake();
  };
  const decoder = new VideoDecoder({
    output: (frame) => {
      if (ctx.sampler.due(frame.timestamp / 1000)) due.push(frame);
      else frame.close();
      answer();
    },
    error: (e) => {
      failure = new LikenessError('InvalidImageFormatException', `the video's frames cannot be decoded: ${e.message}`);
      answer();
    },
  });
  decoder.addEventListener('dequeue', answer);
  const onAbort = () => wake();
  ctx.signal?.addEventListener('abort', onAbort);
  const stall = setInterval(() => {
    if (performance.now() - heard < DECODER_STALL_MS) return;
    failure ??= new LikenessError('InvalidImageFormatException', `the video's frames cannot be decoded: the decoder stopped answering for ${DECODER_STALL_MS / 1000} s`);
    wake();
  }, 1000);
  try {
    decoder.configure(config);
    let i = samples.findIndex((s) => s.key);
    let flushed = null;
    let done = false;
    for (;;) {
      if (ctx.signal?.aborted) throw aborted(ctx.signal);
      if (failure) throw failure;
      // Keep the decoder a few frames ahead of the search, never further.
      while (i < samples.length && decoder.decodeQueueSize < 4 && due.length < 3) {
        const s = samples[i++];
        decoder.decode(new EncodedVideoChunk({ type: s.key ? 'key' : 'delta', timestamp: s.timestamp, duration: s.duration || undefined, data: s.data }));
      }
      if (i === samples.length && !flushed) {
        flushed = decoder.flush().then(
          () => {
            done = true;
            answer();
          },
          (e) => {
            failure ??= new LikenessError('InvalidImageFormatException', `the video's frames cannot be decoded: ${e.message}`);
            wake();
          },
        );
      }
      if (due.length > 0) {
        const frame = due.shift();
        try {
          await ctx.search(frame, frame.timestamp / 1000);
        } finally {
          frame.close();
          // Time spent searching is not the decoder's silence.
          heard = performance.now();
        }
        continue;
      }
      if (done) break;
      await new Promise((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    clearInterval(stall);
    ctx.signal?.removeEventListener('abort', onAbort);
    for (const f of due) f.close();
    if (decoder.state !== 'closed') decoder.close();
  }
}

/**
 * A <video> played muted: its first frame, then each presented frame that is due, the video
 * paused while it is searched. Faster than real time at up to `16 / frameRate` x, but slower
 * than WebCodecs: presented frames follow the display's refresh, so the rate is held where a
 * refresh shows about one video frame and no sample is skipped.
 */
async function searchPlayed(element, frameRate, ctx) {
  // Muted, so that autoplay rules let it play without a gesture (searchVideo restores it).
  element.muted = true;
  if (element.currentTime !== 0) {
    await new Promise((resolve, reject) => {
      const unwatch = watchStall(() => reject(new LikenessError('InvalidParameterException', `the video did not seek to its start in ${ELEMENT_STALL_MS / 1000} s`)));
      element.addEventListener('seeked', () => {
        unwatch();
        resolve();
      }, { once: true });
      element.currentTime = 0;
    });
  }
  element.playbackRate = Math.min(16, Math.max(0.25, 60 / frameRate));
  for (;;) {
    if (ctx.signal?.aborted) throw aborted(ctx.signal);
    const got = await nextFrame(element, ctx.signal);
    if (got.ended) break;
    const ms = got.mediaTime * 1000;
    if (!ctx.sampler.due(ms)) {
      if (got.image !== element) got.image.close();
      continue;
    }
    element.pause();
    try {
      await ctx.search(got.image, ms);
    } finally {
      if (got.image !== element) got.image.close();
    }
    if (element.ended) break;
  }
}

function nextFrame(element, signal) {
  return new Promise((resolve, reject) => {
    if (element.ended) {
      resolve({ ended: true });
      return;
    }
    let handle = 0;
    let unwatch = () => {};
    const done = () => {
      unwatch();
      element.removeEventListener('ended', onEnded);
      element.removeEventListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const onEnded = () => {
      done();
      element.cancelVideoFrameCallback?.(handle);
      resolve({ ended: true });
    };
    const onError = () => {
      done();
      reject(mediaError(element, 'the video stopped'));
    };
    const onAbort = () => {
      done();
      element.cancelVideoFrameCallback?.(handle);
      reject(aborted(signal));
    };
    element.addEventListener('ended', onEnded);
    element.addEventListener('error', onError);
    signal?.addEventListener('abort', onAbort);
    if (typeof element.requestVideoFrameCallback !== 'function') {
      done();
      reject(new LikenessError('InvalidParameterException', 'this browser has no requestVideoFrameCallback, which stored-video search needs'));
      return;
    }
    // WebKitGTK (2.50, under load) has been seen to play to the last frame and then neither end
    // nor present again: at the end, still, for a second, counts as ended.
    let still = 0;
    let lastTime = element.currentTime;
    const atEnd = setInterval(() => {
      const t = element.currentTime;
      still = t === lastTime && Number.isFinite(element.duration) && element.duration - t < 0.02 ? still + 1 : 0;
      lastTime = t;
      if (still >= 4) onEnded();
    }, 250);
    const unwatchStall = watchStall(() => {
      done();
      element.cancelVideoFrameCallback?.(handle);
      // Nothing loaded at all is a video that cannot be played; frames that stop coming, one
      // whose frames cannot be decoded.
      const at = `at ${element.currentTime.toFixed(2)} s of ${element.duration} s, ready state ${element.readyState}, network state ${element.networkState}`;
      reject(
        element.readyState < 2
          ? new LikenessError('InvalidParameterException', `the video loaded no frame in ${ELEMENT_STALL_MS / 1000} s (${at})`)
          : new LikenessError('InvalidImageFormatException', `the video presented no frame in ${ELEMENT_STALL_MS / 1000} s (${at})`),
      );
    });
    unwatch = () => {
      unwatchStall();
      clearInterval(atEnd);
    };
    handle = element.requestVideoFrameCallback((_, meta) => {
      done();
      resolve({ image: capture(element), mediaTime: meta.mediaTime, presented: meta.presentedFrames });
    });
    if (element.paused && !element.ended) {
      element.play().catch((e) => {
        if (element.error) return; // 'error' reports it
        done();
        reject(new LikenessError('InvalidParameterException', `cannot play the video: ${e.message}`));
      });
    }
  });
}
