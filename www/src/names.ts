// A person is a Rekognition user whose UserId is their name, spelled in UserId's alphabet
// ([a-zA-Z0-9_.\-:]): so the name travels with the collection when it syncs, and every
// device shows the same one. Spaces become `_`; any other character outside the alphabet
// (and `_`, `.`, `:` themselves) becomes `.` + two hex digits per UTF-8 byte.

const PLAIN = /[A-Za-z0-9-]/;
export const MAX_USER_ID = 128;

export function userIdOf(name: string): string {
  const trimmed = name.trim().replace(/\s+/g, ' ');
  let out = '';
  for (const ch of trimmed) {
    if (ch === ' ') out += '_';
    else if (PLAIN.test(ch)) out += ch;
    else for (const b of new TextEncoder().encode(ch)) out += '.' + b.toString(16).padStart(2, '0');
  }
  return out;
}

export function nameOf(userId: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < userId.length; i++) {
    const c = userId[i];
    if (c === '.' && /^[0-9a-f]{2}$/.test(userId.slice(i + 1, i + 3))) {
      bytes.push(parseInt(userId.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...new TextEncoder().encode(c === '_' ? ' ' : c));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Why a name cannot be a person's name, or null. */
export function nameProblem(name: string): string | null {
  if (!name.trim()) return 'Type a name.';
  if (userIdOf(name).length > MAX_USER_ID) return 'That name is too long.';
  return null;
}
