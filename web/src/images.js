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
 * about twice as fast as drawing it on a canvas), or null where that is not supported.
 */
async function frameRgba(frame) {
  const rect = frame.visibleRect;
  if (typeof frame.copyTo !== 'function' || !rect || rect.width !== frame.displayWidth || rect.height !== frame.displayHeight) return null;
  try {
    const data = new Uint8ClampedArray(rect.width * rect.height * 4);
    await frame.copyTo(data, { format: 'RGBA' });
    return { width: rect.width, height: rect.height, data };
  } catch {
    return null; // an engine without RGBA conversion in copyTo: the canvas path below
  }
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
