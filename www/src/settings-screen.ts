// Settings: the match threshold and what it means, storage, privacy.

import { h, StatusLine } from './ui';
import { saveSettings, thumbs, type Settings } from './appdata';

/** The package's documented false-accept rates of its calibrated similarity. */
const FAR: [number, string][] = [
  [80, '1 in 100'],
  [90, '1 in 1,000'],
  [95, '1 in 10,000'],
  [99, '1 in 100,000'],
];

export function meaning(threshold: number): string {
  const known = [...FAR].reverse().find(([t]) => threshold >= t);
  return known
    ? `At ${threshold}%, about ${known[1]} or fewer comparisons of two different people match by mistake.`
    : `Below 80%, more than 1 in 100 comparisons of two different people match by mistake.`;
}

export class SettingsScreen {
  readonly el: HTMLElement;
  private status = new StatusLine();
  private storage = h('p', { id: 'storage-used' });

  constructor(private settings: Settings, private onThreshold: () => void) {
    const value = h('output', { for: 'threshold', id: 'threshold-value' }, `${settings.threshold}%`);
    const explain = h('p', { id: 'threshold-meaning' }, meaning(settings.threshold));
    const slider = h('input', {
      type: 'range', id: 'threshold', min: 50, max: 99, step: 1, value: settings.threshold,
      'aria-describedby': 'threshold-meaning',
      oninput: (e: Event) => {
        const t = Number((e.target as HTMLInputElement).value);
        value.textContent = `${t}%`;
        explain.textContent = meaning(t);
      },
      onchange: async (e: Event) => {
        settings.threshold = Number((e.target as HTMLInputElement).value);
        await saveSettings(settings);
        this.onThreshold();
      },
    });
    this.el = h('section', { id: 'settings', 'aria-labelledby': 'settings-title' },
      h('h2', { id: 'settings-title' }, 'Settings'),
      h('div', { class: 'card' },
        h('label', { for: 'threshold' }, 'Match threshold '), value, slider, explain,
        h('table', {}, h('caption', {}, 'How often two different people match by mistake'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Threshold'), h('th', { scope: 'col' }, 'False matches'))),
          h('tbody', {}, ...FAR.map(([t, r]) => h('tr', {}, h('td', {}, `${t}%`), h('td', {}, r)))))),
      h('div', { class: 'card' },
        h('h3', {}, 'Storage'), this.storage,
        h('div', { class: 'toolbar' },
          h('button', { type: 'button', onclick: () => void this.persist() }, 'Keep my data (persistent storage)'),
          h('button', { type: 'button', onclick: () => void thumbs.clear().then(() => this.refresh()) }, 'Clear thumbnails')),
        this.status.el),
      h('div', { class: 'card privacy' },
        h('h3', {}, 'Privacy'),
        h('p', {}, 'Photos, faces and the face vectors made from them stay on this device. Detection, matching and storage all run in this browser; nothing is uploaded.'),
        h('p', {}, 'Only if you turn on sync are your people sent to the sync server, and then encrypted on this device first: the server stores them but cannot read them. Thumbnails never leave this device.'),
        h('p', {}, 'Deleting a face or a person erases it here and, with sync on, on your other devices.')),
    );
  }

  async refresh(): Promise<void> {
    const est = await navigator.storage?.estimate?.();
    const persisted = await navigator.storage?.persisted?.();
    this.storage.textContent = est
      ? `${mb(est.usage ?? 0)} used of ${mb(est.quota ?? 0)} available.${persisted ? ' Kept: the browser will not clear it under storage pressure.' : ''}`
      : 'This browser does not report storage.';
  }

  private async persist(): Promise<void> {
    const granted = await navigator.storage?.persist?.();
    this.status.set(granted ? 'The browser will keep your data.' : 'The browser declined; it may clear data when storage runs low.', granted ? 'ok' : 'info');
    await this.refresh();
  }
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
