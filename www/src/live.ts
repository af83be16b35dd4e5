// Live: the camera with every face boxed and named (the package's streaming face search; a
// name stays with its track), and guided enrolment from the camera.

import type { Likeness, FaceSearchStream, FaceSearchFrame, DetectFacesResponse } from 'likeness';
import { h, StatusLine, describeError } from './ui';
import { COLLECTION, People, matchName, plainReasons } from './people';
import { nameProblem } from './names';
import type { Settings } from './appdata';

const SHOTS = 3;
const SHOT_HINTS = ['Look straight at the camera.', 'Turn your head a little to one side.', 'Now a little to the other side.'];

export class LiveScreen {
  readonly el: HTMLElement;
  private startBtn = h('button', { type: 'button', onclick: () => (this.camera ? this.stop() : void this.start()) }, 'Start camera');
  private video = h('video', { muted: true, playsinline: true, autoplay: true, 'aria-label': 'Camera' });
  private overlay = h('canvas', { class: 'overlay', 'aria-hidden': 'true' });
  private faces = h('ul', { class: 'live-faces', 'aria-live': 'polite', 'aria-label': 'Faces in view' });
  private statsEl = h('pre', { class: 'stats', hidden: true });
  private status = new StatusLine();
  private camera: MediaStream | null = null;
  private stream: FaceSearchStream | null = null;
  private facing: 'user' | 'environment' = 'user';
  private restartTimer = 0;
  private enrolling = false;
  private enrolLog = h('ol', { class: 'enrol-log', 'aria-label': 'Enrolment feedback' });
  private enrolStatus = new StatusLine();
  /** Milliseconds from the page's start to the first face named (shown to tests and curious people as `data-first-match-ms`). */
  firstMatchMs: number | null = null;

  constructor(private likeness: Likeness, private people: People, private settings: Settings) {
    const switchBtn = h('button', { type: 'button', onclick: () => void this.switchCamera() }, 'Switch camera');
    const statsBox = h('input', { type: 'checkbox', id: 'show-stats', onchange: (e: Event) => (this.statsEl.hidden = !(e.target as HTMLInputElement).checked) });
    const nameInput = h('input', { id: 'enrol-name', autocomplete: 'off', placeholder: 'Their name' });
    const enrolBtn = h('button', { type: 'button', onclick: () => void this.enrol(nameInput.value) }, 'Enrol from camera');
    this.el = h('section', { id: 'live', 'aria-labelledby': 'live-title' },
      h('h2', { id: 'live-title' }, 'Live'),
      h('div', { class: 'toolbar' }, this.startBtn, switchBtn, h('label', {}, statsBox, ' Show frame rate and timings')),
      this.status.el,
      h('div', { class: 'stage' }, this.video, this.overlay),
      this.statsEl,
      this.faces,
      h('form', { class: 'enrol', onsubmit: (e: Event) => { e.preventDefault(); void this.enrol(nameInput.value); } },
        h('h3', {}, 'Enrol from the camera'),
        h('p', { class: 'hint' }, `One person in view, close and well lit. The app takes ${SHOTS} shots by itself and says why it refuses one.`),
        h('label', { for: 'enrol-name' }, 'Name'), nameInput, enrolBtn,
        this.enrolStatus.el, this.enrolLog),
    );
    likeness.onChange(() => this.scheduleRestart());
  }

  /**
   * The screen is shown: start at once where the camera is already allowed (a kiosk, a
   * returning visit), with the camera `early` if one was opened while the engine loaded.
   */
  async shown(early: MediaStream | null = null): Promise<void> {
    if (this.camera) return;
    const camera = early ?? (await LiveScreen.openEarly().catch(() => null));
    if (camera) await this.start(camera);
    else this.status.set('Press Start camera to match faces live.');
  }

  /** The camera, asked for only if the person already allowed it (no prompt before the app shows). */
  static async openEarly(): Promise<MediaStream | null> {
    const state = await navigator.permissions?.query({ name: 'camera' as PermissionName }).then((p) => p.state, () => 'prompt');
    return state === 'granted' ? navigator.mediaDevices.getUserMedia(LiveScreen.constraints('user')) : null;
  }

  private static constraints(facing: 'user' | 'environment'): MediaStreamConstraints {
    return { video: { facingMode: facing, width: 640, height: 480 }, audio: false };
  }

  /** Open the camera (or take one already open) and search every frame. */
  async start(opened?: MediaStream): Promise<void> {
    if (this.camera) return;
    try {
      this.camera = opened ?? (await navigator.mediaDevices.getUserMedia(LiveScreen.constraints(this.facing)));
    } catch (e) {
      this.status.error(e);
      return;
    }
    this.video.srcObject = this.camera;
    await this.video.play().catch(() => {});
    this.startBtn.textContent = 'Stop camera';
    this.status.set('Camera on. Faces are matched on this device.');
    await this.startSearch();
  }

  private async startSearch(): Promise<void> {
    if (!this.camera) return;
    try {
      this.stream = await this.likeness.startFaceSearchStream({
        source: this.camera,
        collectionId: COLLECTION,
        faceMatchThreshold: this.settings.threshold,
        maxFaces: 1,
        onFrame: (f) => this.draw(f),
      });
      const stream = this.stream;
      stream.done.catch((e) => {
        if (this.stream === stream) this.status.error(e);
      });
    } catch (e) {
      this.status.error(e);
    }
  }

  /** After enrolment (here or synced in), search again so tracks in view are named at once. */
  private scheduleRestart(): void {
    if (!this.stream) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = window.setTimeout(async () => {
      const old = this.stream;
      this.stream = null;
      await old?.stop();
      await this.startSearch();
    }, 300);
  }

  /** The threshold changed: search again with it. */
  restartForSettings(): void {
    this.scheduleRestart();
  }

  stop(): void {
    if (!this.camera) return;
    const stream = this.stream;
    this.stream = null;
    void stream?.stop();
    this.camera?.getTracks().forEach((t) => t.stop());
    this.camera = null;
    this.video.srcObject = null;
    this.startBtn.textContent = 'Start camera';
    this.overlay.getContext('2d')?.clearRect(0, 0, this.overlay.width, this.overlay.height);
    this.faces.replaceChildren();
    this.status.set('Camera off.');
  }

  private async switchCamera(): Promise<void> {
    this.facing = this.facing === 'user' ? 'environment' : 'user';
    if (this.camera) {
      this.stop();
      await this.start();
    }
  }

  private draw(frame: FaceSearchFrame): void {
    const w = this.video.videoWidth, hgt = this.video.videoHeight;
    if (!w || !hgt) return;
    if (this.overlay.width !== w) this.overlay.width = w;
    if (this.overlay.height !== hgt) this.overlay.height = hgt;
    const ctx = this.overlay.getContext('2d')!;
    ctx.clearRect(0, 0, w, hgt);
    ctx.lineWidth = Math.max(2, w / 240);
    ctx.font = `${Math.round(w / 28)}px system-ui, sans-serif`;
    const items: HTMLElement[] = [];
    for (const f of frame.faceSearchResponse) {
      const b = f.detectedFace.boundingBox;
      const m = f.matchedFaces[0];
      const label = m ? `${matchName(m.face)} ${m.similarity.toFixed(0)}%` : 'Unknown';
      const color = m ? '#2f9e44' : '#e8590c';
      ctx.strokeStyle = color;
      ctx.strokeRect(b.left * w, b.top * hgt, b.width * w, b.height * hgt);
      const tw = ctx.measureText(label).width + 8;
      const ty = Math.max(0, b.top * hgt - w / 22);
      ctx.fillStyle = color;
      ctx.fillRect(b.left * w, ty, tw, w / 22);
      ctx.fillStyle = '#fff';
      ctx.fillText(label, b.left * w + 4, ty + w / 28);
      items.push(h('li', { 'data-track': f.index, 'data-name': m ? matchName(m.face) : '' }, label));
      if (m && this.firstMatchMs == null) {
        this.firstMatchMs = performance.now();
        this.el.dataset.firstMatchMs = this.firstMatchMs.toFixed(0);
      }
    }
    this.faces.replaceChildren(...items);
    if (!this.statsEl.hidden && this.stream) {
      const s = this.stream.stats;
      this.statsEl.textContent = `${s.fps.toFixed(1)} fps · pixels ${s.imageMs.toFixed(1)} ms · detect+track ${s.trackMs.toFixed(1)} ms · search ${s.searchMs.toFixed(1)} ms · name ${s.embedMs.toFixed(0)} ms · embed ${s.fullEmbedMs.toFixed(0)} ms · latency ${s.latencyMs.toFixed(0)} ms`;
    }
  }

  /** Guided enrolment: shots taken when exactly one good face is in view. */
  private async enrol(name: string): Promise<void> {
    const problem = nameProblem(name);
    if (problem) return this.enrolStatus.set(problem, 'error');
    if (this.enrolling) return;
    if (!this.camera) await this.start();
    if (!this.camera) return;
    this.enrolling = true;
    this.enrolLog.replaceChildren();
    let taken = 0;
    let lastReason = '';
    const deadline = performance.now() + 60_000;
    try {
      while (taken < SHOTS && this.camera && performance.now() < deadline) {
        this.enrolStatus.set(`Shot ${taken + 1} of ${SHOTS}: ${SHOT_HINTS[taken]}`);
        const shot = await this.snapshot();
        const reason = shot ? await this.refusal(shot) : 'The camera has no picture yet.';
        if (reason) {
          if (reason !== lastReason) this.enrolLog.append(h('li', { class: 'refused' }, reason));
          lastReason = reason;
          await sleep(250);
          continue;
        }
        const result = await this.people.enrol(name, shot!, `camera-${Date.now()}`, 'HIGH');
        if (result.added) {
          taken++;
          lastReason = '';
          this.enrolLog.append(h('li', { class: 'taken' }, `Shot ${taken} taken.`));
          await sleep(600); // time to turn a little
        } else {
          const why = result.refused.map((r) => r.replace(/^camera-\d+: /, '')).join('; ');
          this.enrolLog.append(h('li', { class: 'refused' }, `Refused: ${why}.`));
          await sleep(250);
        }
      }
      if (taken === SHOTS) this.enrolStatus.set(`Enrolled ${name} (${SHOTS} shots).`, 'ok');
      else if (taken) this.enrolStatus.set(`Enrolled ${name} with ${taken} shot${taken > 1 ? 's' : ''}; add more later for better matching.`, 'ok');
      else this.enrolStatus.set('No shot could be taken: see why above.', 'error');
    } catch (e) {
      this.enrolStatus.set(describeError(e), 'error');
    } finally {
      this.enrolling = false;
    }
  }

  private async snapshot(): Promise<Blob | null> {
    const w = this.video.videoWidth, hgt = this.video.videoHeight;
    if (!w || !hgt) return null;
    const canvas = new OffscreenCanvas(w, hgt);
    canvas.getContext('2d')!.drawImage(this.video, 0, 0);
    return canvas.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
  }

  /** Why this shot is refused, in plain words, from the engine's quality signals; '' if good. */
  private async refusal(shot: Blob): Promise<string> {
    let found: DetectFacesResponse;
    try {
      found = await this.likeness.detectFaces({ image: shot });
    } catch (e) {
      return describeError(e);
    }
    return shotProblem(found, this.video.videoWidth);
  }
}

/** The guide's rules: exactly one face, big, frontal enough, sharp and lit. */
export function shotProblem(found: DetectFacesResponse, imageWidth: number): string {
  const faces = found.faceDetails;
  if (faces.length === 0) return 'No face in view.';
  if (faces.length > 1) return `${faces.length} faces in view: only the person enrolling should be in the picture.`;
  const f = faces[0];
  if (f.boundingBox.width * imageWidth < 90) return 'Too far: come closer to the camera.';
  if (Math.abs(f.pose.yaw) > 40 || Math.abs(f.pose.pitch) > 30) return 'Face the camera more directly.';
  if (f.quality.brightness < 15) return 'Too dark: add some light.';
  if (f.quality.brightness > 95) return 'Too bright: avoid strong light behind or on the face.';
  if (f.quality.sharpness < 8) return 'Too blurry: hold still.';
  // IndexFaces' default (AUTO) quality filter's bar: a shot that passes here is indexed.
  if (f.confidence < 80) return `Not clearly a face (${plainReasons(['LOW_CONFIDENCE'])}).`;
  return '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
