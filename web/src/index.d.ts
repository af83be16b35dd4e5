// Hand-written types for the `likeness` package. Shapes mirror Amazon Rekognition's
// requests and responses with camelCase keys.

/** Anything the engine can read pixels from. Encoded bytes keep their EXIF orientation. */
export type ImageSource =
  | Blob
  | File
  | ArrayBuffer
  | ArrayBufferView
  | ImageData
  | ImageBitmap
  | HTMLImageElement
  | HTMLCanvasElement
  | HTMLVideoElement
  | OffscreenCanvas
  | VideoFrame;

/** A model or module given as a URL or as bytes. */
export type AssetSource = string | URL | ArrayBuffer | Uint8Array;

export interface LoadProgress {
  /** Which asset: "blazeface-short.onnx", "blazeface-full.onnx" or "faceapi-resnet.onnx". */
  file: string;
  loaded: number;
  /** 0 while the size is unknown (no Content-Length, or a compressed response); the last event of a file has `loaded === total`. */
  total: number;
}

export interface OpenOptions {
  /** IndexedDB database holding the collections. Default "likeness"; `null` keeps them in memory only. */
  database?: string | null;
  /** Where the models come from. Default: `models/` next to the package's `index.js`. */
  models?: {
    /** A folder URL (ending in "/") holding the three model files. */
    baseUrl?: string | URL;
    detectorShort?: AssetSource;
    detectorFull?: AssetSource;
    embedder?: AssetSource;
  };
  /** The .wasm module. Default: `wasm/likeness_wasm_bg.wasm` next to `index.js`. */
  wasm?: AssetSource | WebAssembly.Module;
  /** Run the engine in a module Worker (default: true where Worker exists). */
  worker?: boolean;
  /** Override the worker script URL (bundlers that copy `likeness/worker` elsewhere). */
  workerUrl?: string | URL;
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Keep the embedder's prepared form (tract's own format, about 22 MB of model weights,
   * nothing about faces) in IndexedDB (`likeness-model-cache`), so later opens skip most of
   * its set-up. Default: on, unless `database` is null.
   */
  modelCache?: boolean;
}

export type QualityFilter = 'NONE' | 'AUTO' | 'LOW' | 'MEDIUM' | 'HIGH';
export type OrientationCorrection = 'ROTATE_0' | 'ROTATE_90' | 'ROTATE_180' | 'ROTATE_270';
export type QualityReason =
  | 'EXCEEDS_MAX_FACES'
  | 'EXTREME_POSE'
  | 'LOW_BRIGHTNESS'
  | 'LOW_SHARPNESS'
  | 'LOW_CONFIDENCE'
  | 'SMALL_BOUNDING_BOX'
  | 'LOW_FACE_QUALITY';
export type UserStatus = 'CREATED' | 'ACTIVE';

/** Ratios of the image's width and height. */
export interface BoundingBox {
  width: number;
  height: number;
  left: number;
  top: number;
}
export interface Landmark {
  /** mouthLeft/mouthRight are absent on faces a live stream only tracked (no landmark run). */
  type: 'eyeLeft' | 'eyeRight' | 'nose' | 'mouthLeft' | 'mouthRight' | 'upperJawlineLeft' | 'upperJawlineRight';
  x: number;
  y: number;
}
export interface FaceDetail {
  boundingBox: BoundingBox;
  landmarks: Landmark[];
  /** Degrees. */
  pose: { roll: number; yaw: number; pitch: number };
  /** 0-100. */
  quality: { brightness: number; sharpness: number };
  /**
   * 0-100: how likely the box holds a face, read as Rekognition's (about 99.9 for a clear
   * face; under 50 for what is more likely not a face, which is listed after every likely
   * face). On a still it is MTCNN's ONet face probability; on a video frame, BlazeFace's
   * score mapped onto that scale.
   */
  confidence: number;
}
export interface Face {
  faceId: string;
  boundingBox: BoundingBox;
  imageId: string;
  externalImageId?: string;
  confidence: number;
  indexFacesModelVersion: string;
  userId?: string;
}
export interface FaceMatch {
  /** Calibrated 0-100: 80 accepts 1 in 100 different-person pairs, 90 1 in 1,000, 95 1 in 10,000, 99 1 in 100,000. */
  similarity: number;
  face: Face;
}
export interface User {
  userId: string;
  userStatus: UserStatus;
}
export interface UserMatch {
  similarity: number;
  user: User;
}

export interface CollectionRequest {
  collectionId: string;
}
export interface CreateCollectionResponse {
  statusCode: number;
  collectionArn: string;
  faceModelVersion: string;
}
export interface DescribeCollectionResponse {
  faceCount: number;
  userCount: number;
  faceModelVersion: string;
  /** Spelled as Rekognition's DescribeCollection spells it (CreateCollection's is `collectionArn`). */
  collectionARN: string;
  /** Seconds since the epoch. */
  creationTimestamp: number;
}
export interface ListCollectionsRequest {
  maxResults?: number;
  nextToken?: string;
}
export interface ListCollectionsResponse {
  collectionIds: string[];
  faceModelVersions: string[];
  nextToken?: string;
}

export interface IndexFacesRequest {
  collectionId: string;
  image: ImageSource;
  externalImageId?: string;
  /** 1-100: keep the largest faces. */
  maxFaces?: number;
  /** Default "AUTO". */
  qualityFilter?: QualityFilter;
}
export interface IndexFacesResponse {
  faceRecords: { face: Face; faceDetail: FaceDetail }[];
  orientationCorrection: OrientationCorrection;
  faceModelVersion: string;
  unindexedFaces: { reasons: QualityReason[]; faceDetail: FaceDetail }[];
}
export interface ListFacesRequest {
  collectionId: string;
  maxResults?: number;
  nextToken?: string;
  userId?: string;
  faceIds?: string[];
}
export interface ListFacesResponse {
  faces: Face[];
  nextToken?: string;
  faceModelVersion: string;
}
export interface DeleteFacesRequest {
  collectionId: string;
  faceIds: string[];
}
export interface DeleteFacesResponse {
  deletedFaces: string[];
  unsuccessfulFaceDeletions: {
    faceId: string;
    userId?: string;
    reasons: ('ASSOCIATED_TO_AN_EXISTING_USER' | 'FACE_NOT_FOUND')[];
  }[];
}

export interface SearchFacesRequest {
  collectionId: string;
  faceId: string;
  /** Default 80. */
  faceMatchThreshold?: number;
  /** Default 80. */
  maxFaces?: number;
}
export interface SearchFacesResponse {
  searchedFaceId: string;
  faceMatches: FaceMatch[];
  faceModelVersion: string;
}
export interface SearchFacesByImageRequest {
  collectionId: string;
  image: ImageSource;
  faceMatchThreshold?: number;
  maxFaces?: number;
  /** Applied to the searched (largest) face. Default "NONE". */
  qualityFilter?: QualityFilter;
}
export interface SearchFacesByImageResponse {
  searchedFaceBoundingBox: BoundingBox;
  searchedFaceConfidence: number;
  faceMatches: FaceMatch[];
  faceModelVersion: string;
}

export interface UserRequest {
  collectionId: string;
  userId: string;
  clientRequestToken?: string;
}
export interface ListUsersRequest {
  collectionId: string;
  maxResults?: number;
  nextToken?: string;
}
export interface ListUsersResponse {
  users: User[];
  nextToken?: string;
}
export interface AssociateFacesRequest {
  collectionId: string;
  userId: string;
  faceIds: string[];
  /** Default 75. */
  userMatchThreshold?: number;
  clientRequestToken?: string;
}
export interface AssociateFacesResponse {
  associatedFaces: { faceId: string }[];
  unsuccessfulFaceAssociations: {
    faceId: string;
    userId?: string;
    confidence?: number;
    reasons: ('FACE_NOT_FOUND' | 'ASSOCIATED_TO_A_DIFFERENT_USER' | 'LOW_MATCH_CONFIDENCE')[];
  }[];
  userStatus: UserStatus;
}
export interface DisassociateFacesRequest {
  collectionId: string;
  userId: string;
  faceIds: string[];
  clientRequestToken?: string;
}
export interface DisassociateFacesResponse {
  disassociatedFaces: { faceId: string }[];
  unsuccessfulFaceDisassociations: {
    faceId: string;
    userId?: string;
    reasons: ('FACE_NOT_FOUND' | 'ASSOCIATED_TO_A_DIFFERENT_USER')[];
  }[];
  userStatus: UserStatus;
}
export interface SearchUsersRequest {
  collectionId: string;
  /** Exactly one of userId and faceId. */
  userId?: string;
  faceId?: string;
  userMatchThreshold?: number;
  maxUsers?: number;
}
export interface SearchUsersResponse {
  userMatches: UserMatch[];
  faceModelVersion: string;
  searchedFace?: { faceId: string };
  searchedUser?: { userId: string };
}
export interface SearchUsersByImageRequest {
  collectionId: string;
  image: ImageSource;
  userMatchThreshold?: number;
  maxUsers?: number;
  qualityFilter?: QualityFilter;
}
export interface SearchUsersByImageResponse {
  userMatches: UserMatch[];
  faceModelVersion: string;
  searchedFace?: { faceDetail: FaceDetail };
  unsearchedFaces: {
    faceDetails: FaceDetail;
    reasons: ('FACE_NOT_LARGEST' | 'EXCEEDS_MAX_FACES' | QualityReason)[];
  }[];
}

export interface DetectFacesRequest {
  image: ImageSource;
}
export interface DetectFacesResponse {
  faceDetails: FaceDetail[];
  orientationCorrection: OrientationCorrection;
}
export interface CompareFacesRequest {
  sourceImage: ImageSource;
  targetImage: ImageSource;
  /** Default 80. */
  similarityThreshold?: number;
}
export interface CompareFacesResponse {
  sourceImageFace: { boundingBox: BoundingBox; confidence: number };
  faceMatches: { similarity: number; face: FaceDetail }[];
  unmatchedFaces: FaceDetail[];
  sourceImageOrientationCorrection: OrientationCorrection;
  targetImageOrientationCorrection: OrientationCorrection;
}

export interface ExportCollectionResponse {
  collectionId: string;
  /** The collection as one LKNS change set. Contains face vectors: biometric data. */
  changes: Uint8Array;
}
export interface ImportChangesRequest {
  /** The collection the changes must belong to; changes for any other are refused. */
  collectionId: string;
  changes: Uint8Array | ArrayBuffer;
}

export interface ChangeEvent {
  method: string;
  collectionId?: string;
}

/** A failed call. `name` is the Rekognition exception name, or `StorageException` for IndexedDB failures. */
export class LikenessError extends Error {
  name:
    | 'InvalidParameterException'
    | 'InvalidImageFormatException'
    | 'ImageTooLargeException'
    | 'ResourceNotFoundException'
    | 'ResourceAlreadyExistsException'
    | 'InvalidPaginationTokenException'
    | 'ConflictException'
    | 'IdempotentParameterMismatchException'
    | 'ServiceQuotaExceededException'
    | 'InvalidSnapshotException'
    | 'StorageException'
    | 'ModelLoadError'
    | 'InvalidStateError'
    | 'InternalServerError'
    | 'SyncOfflineException'
    | 'SyncServerException'
    | 'WrongKeyException'
    | 'TamperedRecordException'
    | 'ReplayedRecordException'
    | 'InvalidRecordException'
    | 'InvalidRecoveryPhraseException'
    | 'SyncLockedException'
    | 'WrongPassphraseException'
    | 'InvalidWrappedKeyException'
    | string;
  /** For `SyncServerException`: the sync server's stable code (`Unauthorized`, `QuotaExceeded`, `RateLimited`, ...). */
  code?: string;
  constructor(name: string, message: string);
}

/** What one sync round did. */
export interface SyncReport {
  pulledRecords: number;
  pulledSnapshot: boolean;
  pushedRecords: number;
  wroteSnapshot: boolean;
  bytesDown: number;
  bytesUp: number;
  /** Every CollectionId the group syncs. */
  collections: string[];
}

export interface SyncStatus {
  state: 'idle' | 'syncing' | 'offline' | 'error';
  /** For `offline` and `error`: the exception name, or the server's code. */
  code?: string;
  message?: string;
  /** After a successful round. */
  report?: SyncReport;
  at?: number;
  /** From `status()`: whether automatic sync is on. */
  running?: boolean;
  /** From `status()`: whether the key is kept wrapped under a passphrase, and whether this page has yet to unlock it. */
  protected?: boolean;
  locked?: boolean;
}

/** Whether the group key is kept wrapped under a passphrase, and whether this page has yet to unlock it. */
export interface SyncKeyStatus {
  protected: boolean;
  locked: boolean;
}

export interface SyncDevice {
  deviceId: string;
  label: string;
  createdAt: number;
  revokedAt: number | null;
  thisDevice: boolean;
}

/**
 * This database's collections synced with the person's other devices through a Likeness
 * server, end-to-end encrypted: the server stores sealed records it cannot read.
 */
export interface LikenessSync {
  /** Create a group on `server`. Show `recoveryPhrase` once: it is the key, and never sent anywhere. */
  /** With `passphrase`, only the key wrapped under it (Argon2id) is stored: see {@link LikenessSync.protect}. */
  create(options: { server: string; label?: string; passphrase?: string }): Promise<{ groupId: string; deviceId: string; recoveryPhrase: string }>;
  /** A single-use, expiring join code for another device. It holds the group key: share it privately. */
  /** `shortCode` (six digits) is what the joining device shows too: have the person compare them. */
  invite(): Promise<{ joinCode: string; shortCode: string; expiresAt: number }>;
  join(joinCode: string, options?: { label?: string; passphrase?: string }): Promise<{ groupId: string; deviceId: string; shortCode: string }>;
  /**
   * Keep the group key at rest only wrapped under `passphrase` (Argon2id, 19 MiB, 2 passes);
   * each page that syncs must then `unlock` it, and until then sync fails with
   * `SyncLockedException`. On a protected key unlocked here, changes the passphrase.
   */
  protect(passphrase: string): Promise<SyncKeyStatus>;
  /** Store the key as its recovery phrase again. Rejects with `WrongPassphraseException`. */
  unprotect(passphrase: string): Promise<SyncKeyStatus>;
  /** Unwrap the key into this page's memory; automatic sync resumes. Rejects with `WrongPassphraseException`. */
  unlock(passphrase: string): Promise<SyncKeyStatus>;
  /** Forget the unwrapped key in this page. */
  lock(): Promise<SyncKeyStatus>;
  /** One round now: pull and merge, push what the server lacks. Offline: rejects with `SyncOfflineException`, losing nothing. */
  now(): Promise<SyncReport>;
  /** Sync after every local write, when another device pushes, on reconnect, and every `intervalMs` (default 60 s). */
  start(options?: { intervalMs?: number }): Promise<SyncStatus>;
  stop(): Promise<SyncStatus>;
  status(): Promise<SyncStatus>;
  /** Which collections this device syncs (`only: null`: all of the group's), and the group's. */
  collections(): Promise<{ only: string[] | null; groupCollections: string[] }>;
  /** Sync only these collections (the others stay on this device), or all of them (`null`). */
  setCollections(collectionIds: string[] | null): Promise<{ only: string[] | null; groupCollections: string[] }>;
  devices(): Promise<SyncDevice[]>;
  revoke(deviceId: string): Promise<void>;
  /** Stop, revoke this device, forget the group. The collections stay on this device. */
  leave(): Promise<void>;
  onStatus(listener: (status: SyncStatus) => void): () => void;
}

/** One tracked face of a frame and what it matched (Rekognition's stream processor `FaceSearchResponse`). */
export interface FaceSearchResponse {
  /** The track: stays the same while the face stays in view (Rekognition's `Person.Index`). */
  index: number;
  detectedFace: FaceDetail;
  /** The track's best matches so far (empty: nobody at the threshold). */
  matchedFaces: FaceMatch[];
}

export interface FaceSearchFrame {
  /** Milliseconds: since the stream started (camera), or the video's media time. */
  timestamp: number;
  faceSearchResponse: FaceSearchResponse[];
  /** Tracks that ended with this frame. */
  ended: number[];
  /**
   * This frame's costs in milliseconds: pixels out of the frame (engine thread); detect +
   * track (+ embed when `embedIn: 'thread'`); search; capture to answer. `embedded`: faces
   * sent to be embedded (new tracks, clearly better views, rechecks); in the embedder worker
   * so far, median: `embedMs`, a new face's crop sent to its first network pass back (what
   * names it, provisionally), of which `embedRunMs` in the worker itself (the rest waits
   * behind passes already queued, another face's), and `fullEmbedMs`, a crop sent to both
   * passes back (the photo path's flip-averaged vector, which replaces the provisional matches);
   * `pendingEmbeddings`: still out there.
   */
  stats: { imageMs: number; trackMs: number; searchMs: number; latencyMs: number; embedded: number; embedMs: number; embedRunMs: number; fullEmbedMs: number; pendingEmbeddings: number };
}

/** A person at one time of a video (Rekognition's `PersonMatch`). */
export interface PersonMatch {
  timestamp: number;
  person: { index: number; boundingBox: BoundingBox; face: FaceDetail };
  faceMatches: FaceMatch[];
}

export interface FaceSearchStreamOptions {
  /**
   * A camera (from getUserMedia), a playing `<video>`, or an iterable (sync or async) of
   * frames searched one after another, none skipped (VideoFrames carry their timestamps;
   * the frames stay the caller's to close).
   */
  source:
    | MediaStream
    | HTMLVideoElement
    /** A camera this stream opens (getUserMedia) and stops with itself; denied: `AccessDeniedException`. */
    | { camera: MediaTrackConstraints | true }
    | Iterable<VideoFrame | ImageBitmap | ImageData>
    | AsyncIterable<VideoFrame | ImageBitmap | ImageData>;
  collectionId: string;
  /** 0-100, default 80. */
  faceMatchThreshold?: number;
  /** Matches per face, default 5. */
  maxFaces?: number;
  /** `near` (webcam distance, default) or `far` (smaller faces, about twice the cost). */
  range?: 'near' | 'far';
  /**
   * Where new faces are embedded: `worker` (default; a second engine in its own worker, so
   * detection keeps its frame rate and a name arrives a few frames later) or `thread` (the
   * engine's thread: named in the same frame, the frames behind it wait).
   */
  embedIn?: 'worker' | 'thread';
  onFrame?: (frame: FaceSearchFrame) => void;
}

/** A running face search over video. */
export interface FaceSearchStream {
  /** Settles when the search stops: resolves after `stop()` or a video's end; rejects with `StreamEndedException` if the camera's track ends, or a frame's error. */
  readonly done: Promise<void>;
  /** Frames processed per second (last 2 s), frames skipped while two were in flight, and median ms per stage (last 300 frames). */
  readonly stats: { fps: number; framesDropped: number; imageMs: number; trackMs: number; searchMs: number; latencyMs: number; embedMs: number; embedRunMs: number; fullEmbedMs: number };
  persons(options?: { sortBy?: 'TIMESTAMP' | 'INDEX' }): Promise<PersonMatch[]>;
  stop(): Promise<void>;
}

export interface StartFaceSearchOptions {
  /** An MP4 or WebM file (or anything this browser plays), as a File, Blob or URL; or a `<video>` (played as it is). */
  video: Blob | string | URL | HTMLVideoElement;
  collectionId: string;
  /** 0-100, default 80. */
  faceMatchThreshold?: number;
  /** Matches per face, default 5. */
  maxFaces?: number;
  /** `near` (default) or `far` (smaller faces, about twice the cost). */
  range?: 'near' | 'far';
  /** As for streams: `worker` (default) embeds in a second worker, in parallel with decoding and detection. */
  embedIn?: 'worker' | 'thread';
  /** Order of `persons`, as GetFaceSearch's `SortBy`; default `TIMESTAMP`. */
  sortBy?: 'TIMESTAMP' | 'INDEX';
  /** Frames searched per second of video, default 10 (one sampled frame every 100 ms). */
  framesPerSecond?: number;
  onProgress?: (progress: { processedMillis: number; durationMillis: number | null; framesProcessed: number }) => void;
  /** Cancels: the promise rejects with the signal's reason (an `AbortError`). */
  signal?: AbortSignal;
}

/** Rekognition's `VideoMetadata`; fields the container does not say are null. */
export interface VideoMetadata {
  /** `h264`, `vp8`, `vp9`, `av1`, ... */
  codec: string | null;
  durationMillis: number | null;
  /** `mp4`, `mov`, `webm`, `matroska`. */
  format: string | null;
  frameRate: number | null;
  frameHeight: number | null;
  frameWidth: number | null;
}

/** What GetFaceSearch returns for a finished job, plus how it ran. */
export interface FaceSearchResult {
  jobStatus: 'SUCCEEDED';
  videoMetadata: VideoMetadata;
  persons: PersonMatch[];
  stats: {
    /** `VideoDecoder` (WebCodecs, demuxed here) or `video element` (played, the fallback). */
    decoder: 'VideoDecoder' | 'video element';
    framesProcessed: number;
    elapsedMillis: number;
    secondsPerVideoSecond: number | null;
  };
}

export const MODEL_FILES: { detectorShort: string; detectorFull: string; embedder: string };

/**
 * The engine and the collections of one IndexedDB database. Every operation is async and
 * rejects with a {@link LikenessError}. After a WebAssembly trap the calls in flight reject
 * with `InternalServerError`; in a worker (the default) the next call starts a fresh one,
 * which reopens the stored collections. An open whose engine traps while loading in a worker
 * is tried once more in a fresh worker (its progress is reported again).
 */
export class Likeness {
  static open(options?: OpenOptions): Promise<Likeness>;
  static deleteDatabase(database?: string): Promise<void>;
  readonly faceModelVersion: string;
  /** Start-up: fetching and compiling (ms), model set-up and opening the database (ms), and whether the embedder's prepared form was used. */
  readonly timings: { fetchMs: number; initMs: number; preparedEmbedder: boolean };
  onChange(listener: (event: ChangeEvent) => void): () => void;
  /** Sync with the person's other devices. */
  readonly sync: LikenessSync;
  close(): void;

  createCollection(request: CollectionRequest): Promise<CreateCollectionResponse>;
  deleteCollection(request: CollectionRequest): Promise<{ statusCode: number }>;
  describeCollection(request: CollectionRequest): Promise<DescribeCollectionResponse>;
  listCollections(request?: ListCollectionsRequest): Promise<ListCollectionsResponse>;
  indexFaces(request: IndexFacesRequest): Promise<IndexFacesResponse>;
  listFaces(request: ListFacesRequest): Promise<ListFacesResponse>;
  deleteFaces(request: DeleteFacesRequest): Promise<DeleteFacesResponse>;
  searchFaces(request: SearchFacesRequest): Promise<SearchFacesResponse>;
  searchFacesByImage(request: SearchFacesByImageRequest): Promise<SearchFacesByImageResponse>;
  /** Streaming face search over a camera or `<video>`: tracked faces and their matches per frame, in the worker. */
  startFaceSearchStream(options: FaceSearchStreamOptions): Promise<FaceSearchStream>;
  /**
   * Stored-video face search (StartFaceSearch + GetFaceSearch): every person in the video at
   * every sampled frame with their track's best matches. Rejects with
   * `InvalidParameterException` for what is not a playable video, `InvalidImageFormatException`
   * for frames that cannot be decoded, the signal's reason when cancelled. A decoder or `<video>`
   * that answers nothing for 20 s while the page is visible fails it the same way instead of
   * leaving it pending; a `<video>` given as it is plays muted (restored afterwards).
   */
  startFaceSearch(options: StartFaceSearchOptions): Promise<FaceSearchResult>;
  createUser(request: UserRequest): Promise<Record<string, never>>;
  deleteUser(request: UserRequest): Promise<Record<string, never>>;
  listUsers(request: ListUsersRequest): Promise<ListUsersResponse>;
  associateFaces(request: AssociateFacesRequest): Promise<AssociateFacesResponse>;
  disassociateFaces(request: DisassociateFacesRequest): Promise<DisassociateFacesResponse>;
  searchUsers(request: SearchUsersRequest): Promise<SearchUsersResponse>;
  searchUsersByImage(request: SearchUsersByImageRequest): Promise<SearchUsersByImageResponse>;
  detectFaces(request: DetectFacesRequest): Promise<DetectFacesResponse>;
  compareFaces(request: CompareFacesRequest): Promise<CompareFacesResponse>;
  exportCollection(request: CollectionRequest): Promise<ExportCollectionResponse>;
  importChanges(request: ImportChangesRequest): Promise<{ collectionId: string }>;
}

export default Likeness;
