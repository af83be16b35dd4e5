// Sync: this device's people shared with the person's other devices through a Likeness sync
// server, end-to-end encrypted (the server stores records it cannot read). Create a group or
// join one by invite link or QR code; status, devices, revoke, leave.

import type { Likeness, SyncStatus } from 'likeness';
import qrcode from 'qrcode-generator';
import { h, StatusLine } from './ui';
import { saveSettings, type Settings } from './appdata';
import { confirmAction } from './dialog';

export class SyncScreen {
  readonly el: HTMLElement;
  private status = new StatusLine();
  private body = h('div');
  private joined = false;

  constructor(private likeness: Likeness, private settings: Settings) {
    this.el = h('section', { id: 'sync', 'aria-labelledby': 'sync-title' },
      h('h2', { id: 'sync-title' }, 'Sync'),
      h('p', { class: 'hint' }, 'Keep your people on all your devices. Everything is encrypted on this device with a key the server never sees.'),
      this.status.el, this.body);
    likeness.sync.onStatus((s) => this.showStatus(s));
  }

  /** Start syncing if this device is in a group; join when the page was opened from an invite link. */
  async boot(joinCode: string | null): Promise<void> {
    if (joinCode) await this.join(joinCode);
    try {
      await this.likeness.sync.start();
      this.joined = true;
    } catch (e) {
      if ((e as Error).name !== 'ResourceNotFoundException') this.status.error(e);
      this.joined = false;
    }
    await this.render();
  }

  private showStatus(s: SyncStatus): void {
    const text: Record<string, string> = {
      idle: s.report ? `Up to date (${new Date(s.at ?? Date.now()).toLocaleTimeString()}).` : 'Connected.',
      syncing: 'Syncing…',
      offline: 'Offline: changes wait on this device and go out when the server is back.',
      error: `Sync failed: ${s.message ?? s.code}`,
    };
    this.status.set(text[s.state] ?? s.state, s.state === 'error' ? 'error' : s.state === 'idle' ? 'ok' : 'info');
  }

  async render(): Promise<void> {
    if (!this.joined) return this.renderSetup();
    const devices = await this.likeness.sync.devices().catch(() => []);
    const list = h('ul', { class: 'devices' }, ...devices.map((d) => h('li', {},
      `${d.label || 'Unnamed device'}${d.thisDevice ? ' (this device)' : ''}${d.revokedAt ? ' — revoked' : ''}`,
      !d.thisDevice && !d.revokedAt ? h('button', { type: 'button', class: 'small danger', onclick: () => void this.revoke(d.deviceId, d.label) }, 'Revoke') : null)));
    const inviteOut = h('div', { class: 'invite' });
    this.body.replaceChildren(
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', onclick: () => void this.now() }, 'Sync now'),
        h('button', { type: 'button', onclick: () => void this.invite(inviteOut) }, 'Add a device'),
        h('button', { type: 'button', class: 'danger', onclick: () => void this.leave() }, 'Leave the group')),
      inviteOut,
      h('h3', {}, 'Devices'), list);
  }

  private renderSetup(): void {
    const server = h('input', { id: 'sync-server', type: 'url', value: this.settings.server });
    const label = h('input', { id: 'sync-label', value: deviceLabel() });
    const code = h('input', { id: 'sync-code', autocomplete: 'off', placeholder: 'Paste an invite link or code' });
    this.body.replaceChildren(
      h('div', { class: 'card' },
        h('h3', {}, 'Start syncing'),
        h('label', { for: 'sync-server' }, 'Sync server'), server,
        h('label', { for: 'sync-label' }, 'This device’s name'), label,
        h('button', { type: 'button', class: 'primary', onclick: () => void this.create(server.value, label.value) }, 'Create a group')),
      h('div', { class: 'card' },
        h('h3', {}, 'Join a group'),
        h('label', { for: 'sync-code' }, 'Invite from another device'), code,
        h('button', { type: 'button', onclick: () => void this.join(code.value, label.value).then(() => this.boot(null)) }, 'Join')));
  }

  private async create(server: string, label: string): Promise<void> {
    try {
      const { recoveryPhrase } = await this.likeness.sync.create({ server, label });
      this.settings.server = server;
      await saveSettings(this.settings);
      await this.boot(null);
      this.body.prepend(h('div', { class: 'card' },
        h('h3', {}, 'Your recovery phrase'),
        h('p', {}, 'Write it down: it is the only way back into the group if you lose every device. It is shown once.'),
        h('code', { class: 'phrase' }, recoveryPhrase)));
    } catch (e) {
      this.status.error(e);
    }
  }

  async join(input: string, label = deviceLabel()): Promise<void> {
    const code = input.trim().replace(/^.*#join=/, '');
    if (!code) return this.status.set('Paste the invite from your other device.', 'error');
    try {
      const { shortCode } = await this.likeness.sync.join(decodeURIComponent(code), { label });
      this.status.set(`Joined. Check that your other device shows ${shortCode}.`, 'ok');
    } catch (e) {
      this.status.error(e);
    }
  }

  private async invite(out: HTMLElement): Promise<void> {
    try {
      const { joinCode, shortCode, expiresAt } = await this.likeness.sync.invite();
      const link = `${location.origin}${location.pathname}#join=${encodeURIComponent(joinCode)}`;
      const qr = qrcode(0, 'M');
      qr.addData(link);
      qr.make();
      const svg = h('div', { class: 'qr', role: 'img', 'aria-label': 'QR code of the invite link' });
      svg.innerHTML = qr.createSvgTag({ cellSize: 4, margin: 2, scalable: true });
      out.replaceChildren(
        h('p', {}, 'On the other device, open this link or scan the code. It works once, until ', new Date(expiresAt).toLocaleTimeString(), '. It holds the group key: share it privately.'),
        svg,
        h('input', { id: 'invite-link', readonly: true, value: link, 'aria-label': 'Invite link' }),
        h('p', {}, 'The other device will show ', h('strong', { class: 'short-code' }, shortCode), ': check that it does.'));
    } catch (e) {
      this.status.error(e);
    }
  }

  private async now(): Promise<void> {
    try {
      const r = await this.likeness.sync.now();
      this.status.set(`Synced: ${r.pulledRecords} received, ${r.pushedRecords} sent.`, 'ok');
    } catch (e) {
      this.status.error(e);
    }
  }

  private async revoke(deviceId: string, label: string): Promise<void> {
    if (!(await confirmAction(`Revoke ${label || 'this device'}? It can no longer sync.`))) return;
    try {
      await this.likeness.sync.revoke(deviceId);
    } catch (e) {
      this.status.error(e);
    }
    await this.render();
  }

  private async leave(): Promise<void> {
    if (!(await confirmAction('Leave the group? Your people stay on this device; it stops syncing.'))) return;
    try {
      await this.likeness.sync.leave();
      this.joined = false;
      this.status.set('Left the group.');
    } catch (e) {
      this.status.error(e);
    }
    await this.render();
  }
}

function deviceLabel(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox/.test(ua) ? 'Firefox' : /Chrom/.test(ua) ? 'Chromium' : /Safari/.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : 'Linux';
  return `${browser} on ${os}`;
}
