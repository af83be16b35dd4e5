// People: enrol from photos (files, a folder, drag and drop), the people and unknown faces
// with thumbnails, rename / merge / move / delete, search by photo, backup and restore.

import type { Likeness, Face } from 'likeness';
import { h, StatusLine, progressBar, download, describeError } from './ui';
import { COLLECTION, People, Person, matchName } from './people';
import { nameProblem } from './names';
import { thumbs, type Settings } from './appdata';
import { ask, confirmAction } from './dialog';

const IMAGE = /\.(jpe?g|png|webp|gif|bmp)$/i;

/** A photo to enrol and whose it is: its folder's name, else the typed name, else nobody's. */
interface Upload {
  file: File;
  person: string | null;
}

export class PeopleScreen {
  readonly el: HTMLElement;
  private status = new StatusLine();
  private progress = progressBar('Photos enrolled');
  private list = h('div', { class: 'people-list' });
  private nameInput = h('input', { id: 'photo-name', autocomplete: 'off', placeholder: 'Leave empty for group photos' });
  private searchOut = h('div', { class: 'search-out', 'aria-live': 'polite' });
  private current: { people: Person[]; unknown: Face[] } = { people: [], unknown: [] };
  private refreshing: Promise<void> | null = null;
  private again = false;

  constructor(private likeness: Likeness, private people: People, private settings: Settings) {
    const files = h('input', { type: 'file', id: 'photo-files', accept: 'image/*', multiple: true, onchange: (e: Event) => this.fromInput(e) });
    const folder = h('input', { type: 'file', id: 'photo-folder', webkitdirectory: true, multiple: true, onchange: (e: Event) => this.fromInput(e) });
    const drop = h('div', { class: 'drop', tabindex: 0, role: 'group', 'aria-label': 'Drop photos or folders here' },
      'Drop photos or folders here. A folder named after a person enrols its photos as that person.');
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); void this.fromDrop(e.dataTransfer!); });
    const searchFile = h('input', { type: 'file', id: 'search-photo', accept: 'image/*', onchange: (e: Event) => void this.search((e.target as HTMLInputElement).files?.[0]) });
    const importFile = h('input', { type: 'file', id: 'import-backup', accept: '.lkns,application/octet-stream', onchange: (e: Event) => void this.importBackup((e.target as HTMLInputElement).files?.[0]) });
    this.el = h('section', { id: 'people', 'aria-labelledby': 'people-title' },
      h('h2', { id: 'people-title' }, 'People'),
      h('div', { class: 'card' },
        h('h3', {}, 'Enrol from photos'),
        h('label', { for: 'photo-name' }, 'Whose photos (for files, not folders)'), this.nameInput,
        h('div', { class: 'toolbar' },
          h('label', { class: 'button', for: 'photo-files' }, 'Choose photos'), files,
          h('label', { class: 'button', for: 'photo-folder' }, 'Choose a folder'), folder),
        drop, this.progress.el, this.status.el),
      h('div', { class: 'card' },
        h('h3', {}, 'Search by photo'),
        h('label', { class: 'button', for: 'search-photo' }, 'Choose a photo to search'), searchFile, this.searchOut),
      this.list,
      h('div', { class: 'card' },
        h('h3', {}, 'Backup'),
        h('p', { class: 'hint' }, 'A backup holds face vectors: biometric data. Keep it private. Thumbnails are not in it.'),
        h('div', { class: 'toolbar' },
          h('button', { type: 'button', onclick: () => void this.exportBackup() }, 'Export backup'),
          h('label', { class: 'button', for: 'import-backup' }, 'Import backup'), importFile)),
    );
    likeness.onChange(() => void this.refresh());
  }

  /** Re-read and redraw; calls during a refresh run it once more after it (the list read may predate their change). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          this.current = await this.people.list();
          await this.render();
        } while (this.again);
      } catch (e) {
        this.status.error(e);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private async render(): Promise<void> {
    const { people, unknown } = this.current;
    const names = h('datalist', { id: 'people-names' }, ...people.map((p) => h('option', { value: p.name })));
    const cards: HTMLElement[] = [];
    for (const p of people) {
      cards.push(h('article', { class: 'person', 'data-person': p.name, 'aria-label': p.name },
        h('h3', {}, p.name, h('span', { class: 'count' }, ` · ${p.faces.length} face${p.faces.length === 1 ? '' : 's'}`)),
        h('div', { class: 'faces' }, ...(await Promise.all(p.faces.map((f) => this.faceTile(f))))),
        h('div', { class: 'toolbar' },
          h('button', { type: 'button', onclick: () => void this.rename(p) }, 'Rename'),
          h('button', { type: 'button', onclick: () => void this.merge(p) }, 'Merge into…'),
          h('button', { type: 'button', class: 'danger', onclick: () => void this.deletePerson(p) }, 'Delete'))));
    }
    const unknownCard = unknown.length
      ? h('article', { class: 'person unknown', 'aria-label': 'Unknown faces' },
          h('h3', {}, `Unknown faces · ${unknown.length}`),
          h('div', { class: 'faces' }, ...(await Promise.all(unknown.map((f) => this.faceTile(f))))))
      : null;
    const empty = people.length || unknown.length ? null : h('p', { class: 'hint' }, 'Nobody yet: enrol someone from photos or from the camera.');
    const parts: Node[] = [names, h('h3', {}, `${people.length} ${people.length === 1 ? 'person' : 'people'}`), ...cards];
    if (empty) parts.push(empty);
    if (unknownCard) parts.push(unknownCard);
    this.list.replaceChildren(...parts);
  }

  private async faceTile(face: Face): Promise<HTMLElement> {
    const blob = await thumbs.get(face.faceId).catch(() => undefined);
    const label = `Face from ${face.externalImageId ?? 'a photo'}`;
    const img = blob
      ? h('img', { src: URL.createObjectURL(blob), alt: label, width: 72, height: 72 })
      : h('div', { class: 'no-thumb', role: 'img', 'aria-label': `${label} (no thumbnail on this device)` }, '?');
    return h('figure', { class: 'face', 'data-face': face.faceId },
      img,
      h('figcaption', {},
        h('button', { type: 'button', class: 'small', 'aria-label': `Move ${label}`, onclick: () => void this.moveFace(face) }, 'Move'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${label}`, onclick: () => void this.deleteFace(face) }, 'Delete')));
  }

  private fromInput(e: Event): void {
    const input = e.target as HTMLInputElement;
    const files = [...(input.files ?? [])];
    input.value = '';
    void this.enrolAll(files.map((file) => ({ file, person: folderOf(file.webkitRelativePath) })));
  }

  private async fromDrop(dt: DataTransfer): Promise<void> {
    // Both read now: a DataTransfer is emptied once the drop event returns.
    const files = [...dt.files];
    const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
    const uploads: Upload[] = [];
    for (const [i, entry] of entries.entries()) {
      try {
        await walk(entry, null, uploads);
      } catch {
        // An entry the engine cannot read back (WebKit: NotFoundError for a file with no
        // path on disk): the dropped file itself, where it is one.
        if (entry.isFile && files[i]) uploads.push({ file: files[i], person: null });
      }
    }
    if (!entries.length) for (const file of files) uploads.push({ file, person: null });
    await this.enrolAll(uploads);
  }

  private async enrolAll(uploads: Upload[]): Promise<void> {
    const typed = this.nameInput.value.trim();
    const photos = uploads.filter((u) => IMAGE.test(u.file.name) || u.file.type.startsWith('image/'));
    if (!photos.length) return this.status.set('No photos there (JPEG, PNG, WebP, GIF or BMP).', 'error');
    const problem = typed ? nameProblem(typed) : null;
    if (problem) return this.status.set(problem, 'error');
    let added = 0, unnamed = 0;
    const refused: string[] = [];
    const enrolled = new Set<string>();
    this.progress.set(0, photos.length);
    for (const [i, u] of photos.entries()) {
      const who = u.person ?? (typed || null);
      try {
        if (who) {
          const r = await this.people.enrol(who, u.file, u.file.name);
          added += r.added;
          refused.push(...r.refused);
          if (r.added) enrolled.add(who);
        } else {
          unnamed += await this.people.addUnnamed(u.file, u.file.name);
        }
      } catch (e) {
        refused.push(`${u.file.name}: ${describeError(e)}`);
      }
      this.progress.set(i + 1, photos.length);
    }
    const parts = [`${added} face${added === 1 ? '' : 's'} enrolled for ${[...enrolled].join(', ') || 'nobody'}`];
    if (unnamed) parts.push(`${unnamed} unknown face${unnamed === 1 ? '' : 's'} added`);
    if (refused.length) parts.push(`refused: ${refused.join('; ')}`);
    this.status.set(parts.join('. ') + '.', refused.length && !added ? 'error' : 'ok');
    await this.refresh();
  }

  private async rename(p: Person): Promise<void> {
    const name = await ask(`Rename ${p.name}`, 'New name', p.name);
    if (name == null) return;
    const problem = nameProblem(name);
    if (problem) return this.status.set(problem, 'error');
    if (this.current.people.some((o) => o.name === name.trim() && o !== p)) {
      return this.status.set(`${name.trim()} already exists: use Merge to join them.`, 'error');
    }
    await this.act(() => this.people.rename(p, name), `Renamed ${p.name} to ${name.trim()}.`);
  }

  private async merge(p: Person): Promise<void> {
    const others = this.current.people.filter((o) => o !== p).map((o) => o.name);
    if (!others.length) return this.status.set('There is nobody else to merge with.', 'error');
    const into = await ask(`Merge ${p.name} into…`, 'Person to keep', '', others);
    if (into == null) return;
    const target = this.current.people.find((o) => o.name === into.trim());
    if (!target || target === p) return this.status.set('Choose one of the people listed.', 'error');
    await this.act(() => this.people.merge(p, target), `Merged ${p.name} into ${target.name}.`);
  }

  private async moveFace(face: Face): Promise<void> {
    const to = await ask('Move this face to…', 'Person (a new name creates them)', '', this.current.people.map((o) => o.name));
    if (to == null) return;
    const problem = nameProblem(to);
    if (problem) return this.status.set(problem, 'error');
    await this.act(() => this.people.moveFaces([face], to), `Moved the face to ${to.trim()}.`);
  }

  private async deleteFace(face: Face): Promise<void> {
    if (!(await confirmAction('Delete this face? It is erased from this device (and, with sync on, from your other devices).'))) return;
    await this.act(() => this.people.deleteFace(face), 'Face deleted.');
  }

  private async deletePerson(p: Person): Promise<void> {
    if (!(await confirmAction(`Delete ${p.name} and their ${p.faces.length} face${p.faces.length === 1 ? '' : 's'}? This cannot be undone.`))) return;
    await this.act(() => this.people.deletePerson(p), `${p.name} deleted.`);
  }

  private async act(op: () => Promise<void>, done: string): Promise<void> {
    try {
      await op();
      this.status.set(done, 'ok');
    } catch (e) {
      this.status.error(e);
    }
    await this.refresh();
  }

  private async search(file: File | undefined): Promise<void> {
    if (!file) return;
    this.searchOut.replaceChildren(h('p', {}, 'Searching…'));
    try {
      const r = await this.people.search(file, this.settings.threshold);
      const rows = r.people.map((m) => h('li', { 'data-name': m.name }, `${m.name}: ${m.similarity.toFixed(1)}% similar`));
      const unnamed = r.faces.filter((m) => !m.face.userId).map((m) => h('li', {}, `${matchName(m.face)} (${m.face.externalImageId ?? ''}): ${m.similarity.toFixed(1)}%`));
      this.searchOut.replaceChildren(
        rows.length || unnamed.length
          ? h('ul', { class: 'search-results' }, ...rows, ...unnamed)
          : h('p', { 'data-empty': true }, `Nobody matches at ${this.settings.threshold}% or more.`));
    } catch (e) {
      this.searchOut.replaceChildren(h('p', { class: 'status', 'data-kind': 'error' }, describeError(e)));
    }
  }

  private async exportBackup(): Promise<void> {
    try {
      const { changes } = await this.likeness.exportCollection({ collectionId: COLLECTION });
      download(`likeness-people-${new Date().toISOString().slice(0, 10)}.lkns`, changes as Uint8Array<ArrayBuffer>);
      this.status.set(`Backup exported (${(changes.byteLength / 1024).toFixed(0)} KB).`, 'ok');
    } catch (e) {
      this.status.error(e);
    }
  }

  private async importBackup(file: File | undefined): Promise<void> {
    if (!file) return;
    await this.act(async () => {
      await this.likeness.importChanges({ collectionId: COLLECTION, changes: new Uint8Array(await file.arrayBuffer()) });
    }, `Backup ${file.name} imported.`);
  }
}

function folderOf(relativePath: string): string | null {
  const parts = relativePath.split('/');
  return parts.length >= 2 ? parts[parts.length - 2] : null;
}

/** Every file under a dropped entry, with the name of the folder it sits in. */
async function walk(entry: FileSystemEntry, folder: string | null, out: Upload[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
    out.push({ file, person: folder });
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const child of batch) await walk(child, entry.name, out);
    }
  }
}
