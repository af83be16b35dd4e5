// Compiled with `tsc --noEmit` (see tsconfig.json): the hand-written types accept real usage
// and reject mistakes. Never executed.
import { Likeness, LikenessError, type FaceMatch, type IndexFacesResponse } from '../src/index.js';

export async function usage(file: File, video: HTMLVideoElement): Promise<string | undefined> {
  const likeness = await Likeness.open({
    database: 'kiosk',
    models: { baseUrl: '/models/' },
    onProgress: ({ file, loaded, total }) => console.debug(file, loaded, total),
  });
  await likeness.createCollection({ collectionId: 'staff' });
  const indexed: IndexFacesResponse = await likeness.indexFaces({
    collectionId: 'staff',
    image: file,
    externalImageId: 'ana',
    maxFaces: 1,
    qualityFilter: 'AUTO',
  });
  const faceIds = indexed.faceRecords.map((r) => r.face.faceId);
  await likeness.createUser({ collectionId: 'staff', userId: 'ana' });
  await likeness.associateFaces({ collectionId: 'staff', userId: 'ana', faceIds });
  const { userMatches } = await likeness.searchUsersByImage({ collectionId: 'staff', image: video });
  const { faceMatches } = await likeness.searchFacesByImage({ collectionId: 'staff', image: video, faceMatchThreshold: 95 });
  const best: FaceMatch | undefined = faceMatches[0];
  const page = await likeness.listFaces({ collectionId: 'staff', maxResults: 100 });
  if (page.nextToken) await likeness.listFaces({ collectionId: 'staff', nextToken: page.nextToken });
  const { changes } = await likeness.exportCollection({ collectionId: 'staff' });
  await likeness.importChanges({ collectionId: 'staff', changes });
  const stop = likeness.onChange(({ collectionId }) => console.debug(collectionId));
  stop();
  try {
    await likeness.describeCollection({ collectionId: 'missing' });
  } catch (e) {
    if (e instanceof LikenessError && e.name === 'ResourceNotFoundException') return undefined;
  }
  // @ts-expect-error qualityFilter takes Rekognition's levels only
  await likeness.indexFaces({ collectionId: 'staff', image: file, qualityFilter: 'BEST' });
  // @ts-expect-error collectionId is required
  await likeness.listFaces({});
  const { recoveryPhrase } = await likeness.sync.create({ server: 'https://sync.example', label: 'kiosk' });
  const { joinCode } = await likeness.sync.invite();
  const key: { protected: boolean; locked: boolean } = await likeness.sync.protect('passphrase');
  if (key.locked) await likeness.sync.unlock('passphrase');
  await likeness.sync.join(joinCode, { label: 'door', passphrase: 'other' });
  const report = await likeness.sync.now();
  const off = likeness.sync.onStatus((s) => {
    if (s.state === 'error' && s.code === 'Unauthorized') console.debug('revoked');
  });
  off();
  const devices = await likeness.sync.devices();
  await likeness.sync.revoke(devices.find((d) => !d.thisDevice)?.deviceId ?? '');
  console.debug(recoveryPhrase, joinCode, report.pulledRecords + report.bytesUp);
  const controller = new AbortController();
  const job = await likeness.startFaceSearch({
    video: new Blob([]),
    collectionId: 'staff',
    sortBy: 'INDEX',
    onProgress: (p) => console.debug(p.processedMillis, p.durationMillis),
    signal: controller.signal,
  });
  const first = job.persons[0];
  console.debug(job.videoMetadata.codec, job.videoMetadata.frameRate, first?.person.index, first?.faceMatches[0]?.similarity, job.stats.decoder);
  // @ts-expect-error sortBy is TIMESTAMP or INDEX
  await likeness.startFaceSearch({ video: 'clip.mp4', collectionId: 'staff', sortBy: 'NAME' });
  // @ts-expect-error a server is required
  await likeness.sync.create({});
  return best?.face.externalImageId ?? userMatches[0]?.user.userId;
}
