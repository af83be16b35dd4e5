/**
 * Every failure of a Likeness call. `name` is the Rekognition exception name
 * (`InvalidParameterException`, `ResourceNotFoundException`, `InvalidImageFormatException`,
 * ...) or `StorageException` when IndexedDB refused (its message names the DOMException, for
 * example `QuotaExceededError`).
 */
export class LikenessError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }

  /** The same error from anything thrown (wasm Error, DOMException, plain value). */
  static from(e) {
    if (e instanceof LikenessError) return e;
    if (e && typeof e === 'object' && typeof e.message === 'string') {
      const name = typeof e.name === 'string' && e.name !== 'Error' ? e.name : 'InternalServerError';
      return new LikenessError(name, e.message);
    }
    return new LikenessError('InternalServerError', String(e));
  }
}
