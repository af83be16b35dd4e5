// The app's people, over one collection of the package: a person is a Rekognition user (its
// UserId spells the name, see names.ts) with the faces associated to it; faces without a
// user are "unknown faces" (from group photos, or refused by the person they were meant for).

import type { Likeness, Face, FaceDetail } from 'likeness';
import { nameOf, userIdOf } from './names';
import { thumbs } from './appdata';
import { faceThumbnail } from './ui';

export const COLLECTION = 'people';

export interface Person {
  userId: string;
  name: string;
  faces: Face[];
}

export interface EnrolResult {
  /** Faces indexed and associated to the person. */
  added: number;
  /** Why a photo gave nothing: no face, quality, or it does not look like the person's other faces. */
  refused: string[];
}

const REASONS: Record<string, string> = {
  EXTREME_POSE: 'the face is turned too far',
  LOW_BRIGHTNESS: 'too dark or too bright',
  LOW_SHARPNESS: 'too blurry',
  LOW_CONFIDENCE: 'not clearly a face',
  SMALL_BOUNDING_BOX: 'the face is too small',
  LOW_FACE_QUALITY: 'poor quality',
  EXCEEDS_MAX_FACES: 'more faces than asked for',
};
export const plainReasons = (reasons: string[]): string =>
  reasons.filter((r) => r !== 'LOW_FACE_QUALITY' || reasons.length === 1).map((r) => REASONS[r] ?? r).join(', ');

export class People {
  constructor(readonly likeness: Likeness) {}

  /** The app's collection exists (created on first use; another device may have made it). */
  async ensureCollection(): Promise<void> {
    const { collectionIds } = await this.likeness.listCollections({ maxResults: 1000 });
    if (!collectionIds.includes(COLLECTION)) {
      try {
        await this.likeness.createCollection({ collectionId: COLLECTION });
      } catch (e) {
        if ((e as Error).name !== 'ResourceAlreadyExistsException') throw e;
      }
    }
  }

  async allFaces(): Promise<Face[]> {
    const faces: Face[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.likeness.listFaces({ collectionId: COLLECTION, maxResults: 4096, nextToken });
      faces.push(...page.faces);
      nextToken = page.nextToken;
    } while (nextToken);
    return faces;
  }

  async list(): Promise<{ people: Person[]; unknown: Face[] }> {
    const users: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.likeness.listUsers({ collectionId: COLLECTION, maxResults: 500, nextToken });
      users.push(...page.users.map((u) => u.userId));
      nextToken = page.nextToken;
    } while (nextToken);
    const faces = await this.allFaces();
    const byUser = new Map<string, Person>(users.map((u) => [u, { userId: u, name: nameOf(u), faces: [] }]));
    const unknown: Face[] = [];
    for (const f of faces) {
      const p = f.userId ? byUser.get(f.userId) : undefined;
      if (p) p.faces.push(f);
      else unknown.push(f);
    }
    const people = [...byUser.values()].sort((a, b) => a.name.localeCompare(b.name));
    void thumbs.keepOnly(new Set(faces.map((f) => f.faceId)));
    return { people, unknown };
  }

  async ensureUser(userId: string): Promise<void> {
    try {
      await this.likeness.createUser({ collectionId: COLLECTION, userId });
    } catch (e) {
      if ((e as Error).name !== 'ConflictException' && (e as Error).name !== 'ResourceAlreadyExistsException') throw e;
    }
  }

  /**
   * Index the largest face of `image` for `name` and associate it (Rekognition's check that
   * it looks like the person's other faces included: a refused face stays an unknown face).
   */
  async enrol(name: string, image: Blob, label: string, qualityFilter: 'AUTO' | 'HIGH' = 'AUTO'): Promise<EnrolResult> {
    const userId = userIdOf(name);
    const indexed = await this.likeness.indexFaces({
      collectionId: COLLECTION,
      image,
      maxFaces: 1,
      qualityFilter,
      externalImageId: externalIdOf(label),
    });
    const refused: string[] = [];
    for (const u of indexed.unindexedFaces) {
      if (!u.reasons.includes('EXCEEDS_MAX_FACES')) refused.push(`${label}: ${plainReasons(u.reasons)}`);
    }
    const record = indexed.faceRecords[0];
    if (!record) {
      if (!refused.length) refused.push(`${label}: no face found`);
      return { added: 0, refused };
    }
    await thumbs.put(record.face.faceId, await faceThumbnail(image, record.face.boundingBox));
    await this.ensureUser(userId);
    const assoc = await this.likeness.associateFaces({ collectionId: COLLECTION, userId, faceIds: [record.face.faceId] });
    for (const u of assoc.unsuccessfulFaceAssociations) {
      const why = u.reasons.includes('LOW_MATCH_CONFIDENCE')
        ? `does not look like ${name}'s other photos (kept as an unknown face)`
        : u.reasons.join(', ');
      refused.push(`${label}: ${why}`);
    }
    return { added: assoc.associatedFaces.length, refused };
  }

  /** Every face of a group photo, as unknown faces to name later. */
  async addUnnamed(image: Blob, label: string): Promise<number> {
    const indexed = await this.likeness.indexFaces({ collectionId: COLLECTION, image, maxFaces: 100, externalImageId: externalIdOf(label) });
    for (const r of indexed.faceRecords) await thumbs.put(r.face.faceId, await faceThumbnail(image, r.face.boundingBox));
    return indexed.faceRecords.length;
  }

  /** Move faces to a person (created if needed), whoever they belonged to. */
  async moveFaces(faces: Face[], toName: string): Promise<void> {
    const to = userIdOf(toName);
    await this.ensureUser(to);
    const from = new Map<string, string[]>();
    for (const f of faces) if (f.userId && f.userId !== to) from.set(f.userId, [...(from.get(f.userId) ?? []), f.faceId]);
    for (const [userId, faceIds] of from) await this.disassociate(userId, faceIds);
    const ids = faces.filter((f) => f.userId !== to).map((f) => f.faceId);
    for (const faceIds of chunks(ids, USER_FACES_PER_CALL)) {
      // The person decided: no look-alike check.
      await this.likeness.associateFaces({ collectionId: COLLECTION, userId: to, faceIds, userMatchThreshold: 0 });
    }
  }

  private async disassociate(userId: string, ids: string[]): Promise<void> {
    for (const faceIds of chunks(ids, USER_FACES_PER_CALL)) {
      await this.likeness.disassociateFaces({ collectionId: COLLECTION, userId, faceIds });
    }
  }

  /** Rename = a new user with the same faces (a UserId cannot change), then the old one goes. */
  async rename(person: Person, newName: string): Promise<void> {
    if (userIdOf(newName) === person.userId) return;
    await this.moveFaces(person.faces, newName);
    await this.likeness.deleteUser({ collectionId: COLLECTION, userId: person.userId });
  }

  async merge(from: Person, into: Person): Promise<void> {
    await this.moveFaces(from.faces, into.name);
    await this.likeness.deleteUser({ collectionId: COLLECTION, userId: from.userId });
  }

  async deleteFace(face: Face): Promise<void> {
    if (face.userId) await this.likeness.disassociateFaces({ collectionId: COLLECTION, userId: face.userId, faceIds: [face.faceId] });
    await this.likeness.deleteFaces({ collectionId: COLLECTION, faceIds: [face.faceId] });
    await thumbs.delete([face.faceId]);
  }

  /** The person and their faces: gone from this device (and, synced, from the others). */
  async deletePerson(person: Person): Promise<void> {
    const ids = person.faces.map((f) => f.faceId);
    await this.disassociate(person.userId, ids);
    for (const faceIds of chunks(ids, DELETE_FACES_PER_CALL)) await this.likeness.deleteFaces({ collectionId: COLLECTION, faceIds });
    await this.likeness.deleteUser({ collectionId: COLLECTION, userId: person.userId });
    await thumbs.delete(ids);
  }

  /** Who is in a photo: people (users) and unknown faces at the threshold. */
  async search(image: Blob, threshold: number): Promise<{ people: { name: string; similarity: number }[]; faces: { face: Face; similarity: number }[]; searched: FaceDetail | null }> {
    const users = await this.likeness.searchUsersByImage({ collectionId: COLLECTION, image, userMatchThreshold: threshold, maxUsers: 5 });
    const faces = await this.likeness.searchFacesByImage({ collectionId: COLLECTION, image, faceMatchThreshold: threshold, maxFaces: 5 });
    return {
      people: users.userMatches.map((m) => ({ name: nameOf(m.user.userId), similarity: m.similarity })),
      faces: faces.faceMatches.map((m) => ({ face: m.face, similarity: m.similarity })),
      searched: users.searchedFace?.faceDetail ?? null,
    };
  }
}

/** Rekognition's limits on face IDs per call: AssociateFaces / DisassociateFaces, DeleteFaces. */
const USER_FACES_PER_CALL = 100;
const DELETE_FACES_PER_CALL = 4096;

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** A file name as an ExternalImageId ([a-zA-Z0-9_.\-:]+, at most 255). */
export function externalIdOf(label: string): string {
  const id = label.replace(/[^A-Za-z0-9_.\-:]+/g, '_').slice(-255);
  return id || 'photo';
}

/** The name a match shows: its person, else "Unknown face". */
export function matchName(face: Face): string {
  return face.userId ? nameOf(face.userId) : 'Unnamed face';
}
