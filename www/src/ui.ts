// Small DOM helpers: the app has no UI library.

type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;
type Child = Node | string | null | undefined | false;

/** `h('button', {class: 'x', onclick: f}, 'Label')`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c != null && c !== false) el.append(c);
  return el;
}

/** A live region that announces what just happened (and keeps the last few lines visible). */
export class StatusLine {
  readonly el = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  set(text: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
    this.el.textContent = text;
    this.el.dataset.kind = kind;
  }
  error(e: unknown): void {
    this.set(describeError(e), 'error');
  }
}

/** A plain sentence for a LikenessError (its Rekognition exception name) or any error. */
export function describeError(e: unknown): string {
  const err = e as { name?: string; message?: string };
  const plain: Record<string, string> = {
    InvalidImageFormatException: 'That file is not an image the app can read.',
    ImageTooLargeException: 'That image is too large.',
    AccessDeniedException: 'The camera is blocked: allow it in the browser to use this.',
    NotFoundError: 'No camera was found.',
    SyncOfflineException: 'The sync server cannot be reached; changes wait on this device.',
    WrongKeyException: 'That invite is not for this group.',
    StorageException: 'The browser refused to store more (storage full or blocked).',
  };
  const name = err?.name ?? 'Error';
  return plain[name] ?? `${err?.message ?? String(e)} (${name})`;
}

export function progressBar(label: string): { el: HTMLElement; set(done: number, total: number): void } {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': label });
  const text = h('span', { class: 'progress-text' });
  const el = h('div', { class: 'progress', hidden: true }, bar, text);
  return {
    el,
    set(done, total) {
      el.hidden = total === 0 || done >= total;
      bar.max = Math.max(total, 1);
      bar.value = done;
      text.textContent = total ? `${done} / ${total}` : '';
    },
  };
}

/** A square JPEG thumbnail of `box` (ratios) in `image`, with a margin. */
export async function faceThumbnail(
  image: Blob | ImageBitmap | HTMLCanvasElement,
  box: { left: number; top: number; width: number; height: number },
  size = 96,
): Promise<Blob> {
  const bitmap = image instanceof Blob ? await createImageBitmap(image) : image;
  const w = bitmap.width, hgt = bitmap.height;
  const side = Math.max(box.width * w, box.height * hgt) * 1.4;
  const cx = (box.left + box.width / 2) * w, cy = (box.top + box.height / 2) * hgt;
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#888';
  ctx.fillRect(0, 0, size, size);
  ctx.drawImage(bitmap, cx - side / 2, cy - side / 2, side, side, 0, 0, size, size);
  if (image instanceof Blob) (bitmap as ImageBitmap).close();
  return canvas.convertToBlob({ type: 'image/jpeg', quality: 0.8 });
}

export function download(name: string, data: BlobPart, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
