// Image sources -> engine images. Runs where the caller is (main thread or a worker) and
// produces a descriptor that can be posted to the engine's thread without copying pixels
// twice: encoded bytes, RGBA pixels, an ImageBitmap or a VideoFrame.

import { LikenessError } from './errors.js';

const has = (name) => typeof globalThis[name] !== 'undefined';

/**
 * Normalise any supported source into `{bytes}`, `{width, height, data}`, `{bitmap}` or
 * `{frame}`. Buffers the caller owns are copied (never detached); bitmaps are re-created.
 */
export async function describeImage(source) {
  if (source == null) throw new LikenessError('InvalidParameterException', 'an image is required');
  if (source instanceof Uint8Array) return { bytes: source.slice() };
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source.slice(0)) };
  if (ArrayBuffer.isView(source)) {
    return { bytes: new Uint8Array(source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength)) };
  }
  if (has('Blob') && source instanceof Blob) return { bytes: new Uint8Array(await source.arrayBuffer()) };
  if (has('ImageData') && source instanceof ImageData) {
    return { width: source.width, height: source.height, data: new Uint8ClampedArray(source.data) };
  }
  if (has('VideoFrame') && source instanceof VideoFrame) return { frame: source.clone() };
  // ImageData-like plain objects ({width, height, data} with RGBA bytes).
  if (
    typeof source === 'object' &&
    Number.isInteger(source.width) &&
    Number.isInteger(source.height) &&
    (source.data instanceof Uint8ClampedArray || source.data instanceof Uint8Array)
  ) {
    return { width: source.width, height: source.height, data: new Uint8ClampedArray(source.data) };
  }
  if (has('HTMLVideoElement') && source instanceof HTMLVideoElement && source.readyState < 2) {
    throw new LikenessError('InvalidImageFormatException', 'the video has no frame yet (readyState < HAVE_CURRENT_DATA)');
  }
  if (has('HTMLImageElement') && source instanceof HTMLImageElement && !source.complete) {
    throw new LikenessError('InvalidImageFormatException', 'the image element has not finished loading');
  }
  const drawable =
    (has('ImageBitmap') && source instanceof ImageBitmap) ||
    (has('HTMLImageElement') && source instanceof HTMLImageElement) ||
    (has('HTMLCanvasElement') && source instanceof HTMLCanvasElement) ||
    (has('HTMLVideoElement') && source instanceof HTMLVideoElement) ||
    (has('OffscreenCanvas') && source instanceof OffscreenCanvas) ||
    (has('SVGImageElement') && source instanceof SVGImageElement);
  if (drawable) {
    try {
      return { bitmap: await createImageBitmap(source) };
    } catch (e) {
      throw new LikenessError('InvalidImageFormatException', `cannot read pixels from the image source: ${e.message}`);
    }
  }
  throw new LikenessError(
    'InvalidParameterException',
    'unsupported image source: use File, Blob, ArrayBuffer, Uint8Array, ImageData, ImageBitmap, ' +
      'HTMLImageElement, HTMLCanvasElement, HTMLVideoElement, OffscreenCanvas or VideoFrame',
  );
}

/** What to transfer when posting a descriptor to a worker. */
export function transferables(descriptor) {
  if (descriptor.bytes) return [descriptor.bytes.buffer];
  if (descriptor.data) return [descriptor.data.buffer];
  if (descriptor.bitmap) return [descriptor.bitmap];
  if (descriptor.frame) return [descriptor.frame];
  return [];
}

/**
 * A VideoFrame's RGBA pixels by `copyTo` (the browser converts from the frame's own format,
 * about twice as fast as drawing it on a canvas), or null where that conversion cannot be
 * trusted for this frame's format (see `copyToRgbaWorks`) and the canvas path must be used.
 */
async function frameRgba(frame) {
  const rect = frame.visibleRect;
  if (typeof frame.copyTo !== 'function' || !rect || rect.width !== frame.displayWidth || rect.height !== frame.displayHeight) return null;
  if (!(await copyToRgbaWorks(frame.format))) return null;
  try {
    const data = new Uint8ClampedArray(rect.width * rect.height * 4);
    await frame.copyTo(data, { format: 'RGBA' });
    return { width: rect.width, height: rect.height, data };
  } catch {
    return null; // an engine without RGBA conversion in copyTo: the canvas path below
  }
}

/** One probe colour (a strong red, so a red/blue swap shows) in each pixel format a frame may have. */
function probePlanes(format, w, h) {
  const fill = (pixel) => Uint8Array.from({ length: w * h * pixel.length }, (_, i) => pixel[i % pixel.length]);
  const [y, u, v] = [82, 90, 240]; // BT.601 limited range for about (255, 0, 0)
  switch (format) {
    case 'RGBA':
    case 'RGBX':
      return fill([230, 20, 30, 255]);
    case 'BGRA':
    case 'BGRX':
      return fill([30, 20, 230, 255]);
    case 'I420':
      return Uint8Array.from([...new Uint8Array(w * h).fill(y), ...new Uint8Array((w * h) / 4).fill(u), ...new Uint8Array((w * h) / 4).fill(v)]);
    case 'NV12':
      return Uint8Array.from([...new Uint8Array(w * h).fill(y), ...fill([u, v]).subarray(0, (w * h) / 2)]);
    default:
      return null;
  }
}

const copyToChecks = new Map();
/**
 * Whether `copyTo(…, {format: 'RGBA'})` really gives RGBA for frames of `format`, checked once
 * per format against drawing the same probe frame on a canvas. WebKitGTK 2.50 accepts the
 * option and writes the frame's own layout (BGRA: red and blue swapped), which silently costs
 * recognition; there the canvas path is used instead.
 */
function copyToRgbaWorks(format) {
  if (!copyToChecks.has(format)) {
    copyToChecks.set(
      format,
      (async () => {
        const [w, h] = [16, 16];
        const planes = probePlanes(format, w, h);
        if (!planes || typeof OffscreenCanvas !== 'function') return false;
        let frame;
        try {
          frame = new VideoFrame(planes, { format, codedWidth: w, codedHeight: h, timestamp: 0 });
          const copied = new Uint8ClampedArray(w * h * 4);
          await frame.copyTo(copied, { format: 'RGBA' });
          const ctx = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
          ctx.drawImage(frame, 0, 0);
          const drawn = ctx.getImageData(0, 0, w, h).data;
          const at = (w * (h / 2) + w / 2) * 4;
          return [0, 1, 2].every((c) => Math.abs(copied[at + c] - drawn[at + c]) <= 24) && drawn[at] > drawn[at + 2] + 64;
        } catch {
          return false;
        } finally {
          frame?.close();
        }
      })(),
    );
  }
  return copyToChecks.get(format);
}

/** A descriptor as the wasm engine takes it: encoded bytes or `{width, height, data}`. */
export async function engineImage(descriptor) {
  if (descriptor.bytes) return descriptor.bytes;
  if (descriptor.data) return descriptor;
  if (descriptor.frame) {
    const rgba = await frameRgba(descriptor.frame);
    if (rgba) {
      descriptor.frame.close();
      return rgba;
    }
  }
  const source = descriptor.bitmap ?? descriptor.frame;
  const width = descriptor.bitmap ? source.width : source.displayWidth;
  const height = descriptor.bitmap ? source.height : source.displayHeight;
  try {
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(source, 0, 0, width, height);
    return ctx.getImageData(0, 0, width, height);
  } finally {
    source.close();
  }
}
