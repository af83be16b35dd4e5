// Video: search a video file for the people in the collection (the package's stored-video
// face search, GetFaceSearch's persons), shown as one timeline row per track; click to seek.

import type { Likeness, PersonMatch, FaceSearchResult } from 'likeness';
import { h, StatusLine, describeError } from './ui';
import { COLLECTION, matchName } from './people';
import type { Settings } from './appdata';

export class VideoScreen {
  readonly el: HTMLElement;
  private player = h('video', { controls: true, playsinline: true, 'aria-label': 'The video searched' });
  private status = new StatusLine();
  private bar = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Search progress' });
  private timeline = h('div', { class: 'timeline' });
  private abort: AbortController | null = null;
  private cancelBtn = h('button', { type: 'button', hidden: true, onclick: () => this.abort?.abort() }, 'Cancel');

  constructor(private likeness: Likeness, private settings: Settings) {
    const input = h('input', { type: 'file', id: 'video-file', accept: 'video/*', onchange: (e: Event) => void this.search((e.target as HTMLInputElement).files?.[0]) });
    this.el = h('section', { id: 'video', 'aria-labelledby': 'video-title' },
      h('h2', { id: 'video-title' }, 'Video'),
      h('p', { class: 'hint' }, 'Find the people you enrolled in a video file. The video never leaves this device.'),
      h('div', { class: 'toolbar' }, h('label', { class: 'button', for: 'video-file' }, 'Choose a video'), input, this.cancelBtn),
      this.bar, this.status.el, this.player, this.timeline);
  }

  private async search(file: File | undefined): Promise<void> {
    if (!file) return;
    this.abort?.abort();
    const abort = (this.abort = new AbortController());
    this.player.src = URL.createObjectURL(file);
    this.timeline.replaceChildren();
    this.bar.hidden = false;
    this.cancelBtn.hidden = false;
    this.status.set(`Searching ${file.name}…`);
    try {
      const result = await this.likeness.startFaceSearch({
        video: file,
        collectionId: COLLECTION,
        faceMatchThreshold: this.settings.threshold,
        sortBy: 'INDEX',
        signal: abort.signal,
        onProgress: (p) => {
          this.bar.max = p.durationMillis ?? 1;
          this.bar.value = p.processedMillis;
        },
      });
      this.render(result);
    } catch (e) {
      this.status.set(abort.signal.aborted ? 'Search cancelled.' : describeError(e), abort.signal.aborted ? 'info' : 'error');
    } finally {
      this.bar.hidden = true;
      this.cancelBtn.hidden = true;
    }
  }

  private render(result: FaceSearchResult): void {
    const duration = result.videoMetadata.durationMillis ?? Math.max(1, ...result.persons.map((p) => p.timestamp));
    const tracks = new Map<number, PersonMatch[]>();
    for (const p of result.persons) tracks.set(p.person.index, [...(tracks.get(p.person.index) ?? []), p]);
    const rows: HTMLElement[] = [];
    for (const [index, seen] of tracks) {
      const best = seen.find((s) => s.faceMatches.length)?.faceMatches[0];
      const name = best ? matchName(best.face) : 'Unknown';
      const first = seen[0].timestamp, last = seen[seen.length - 1].timestamp;
      const label = `${name}${best ? ` (${best.similarity.toFixed(0)}%)` : ''}, ${fmt(first)}–${fmt(last)}`;
      const bar = h('div', { class: 'track-bar' });
      for (const s of seen) {
        bar.append(h('button', {
          type: 'button',
          class: 'tick' + (s.faceMatches.length ? ' known' : ''),
          style: `left:${(100 * s.timestamp) / duration}%`,
          'aria-label': `${name} at ${fmt(s.timestamp)}`,
          tabindex: s === seen[0] ? 0 : -1,
          onclick: () => this.seek(s.timestamp),
        }));
      }
      rows.push(h('div', { class: 'track', 'data-name': best ? name : '', 'data-index': index },
        h('button', { type: 'button', class: 'link', onclick: () => this.seek(first) }, label), bar));
    }
    const s = result.stats;
    this.status.set(`${tracks.size} ${tracks.size === 1 ? 'person' : 'people'} found in ${fmt(duration)} of video, searched in ${(s.elapsedMillis / 1000).toFixed(1)} s (${s.framesProcessed} frames).`, 'ok');
    this.timeline.replaceChildren(...rows);
  }

  private seek(ms: number): void {
    this.player.currentTime = ms / 1000;
    this.player.focus();
  }
}

const fmt = (ms: number) => `${Math.floor(ms / 60000)}:${((ms / 1000) % 60).toFixed(1).padStart(4, '0')}`;
