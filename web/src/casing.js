// Rekognition's wire shapes are PascalCase; the JS API is camelCase. Only object keys
// change: values (enum strings such as "AUTO", landmark types such as "eyeLeft", ids) and
// typed arrays pass through untouched.

const isPlainObject = (v) => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;

function mapKeys(value, rename) {
  if (Array.isArray(value)) return value.map((v) => mapKeys(v, rename));
  if (!isPlainObject(value)) return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[rename(k)] = mapKeys(v, rename);
  }
  return out;
}

/** `{collectionId, maxFaces}` -> `{CollectionId, MaxFaces}`. */
export const toPascal = (value) => mapKeys(value, (k) => k.charAt(0).toUpperCase() + k.slice(1));

/** `{FaceMatches: [{Similarity}]}` -> `{faceMatches: [{similarity}]}`. */
export const toCamel = (value) => mapKeys(value, (k) => k.charAt(0).toLowerCase() + k.slice(1));
