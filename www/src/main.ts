// The Likeness app: opens the package (engine, models, IndexedDB) with a progress bar, and
// shows one screen at a time (Live, People, Video, Sync, Settings) by the URL's hash.

import { Likeness } from 'likeness';
import './style.css';
import { h, describeError } from './ui';
import { loadSettings } from './appdata';
import { People } from './people';
import { LiveScreen } from './live';
import { PeopleScreen } from './people-screen';
import { VideoScreen } from './video-screen';
import { SyncScreen } from './sync-screen';
import { SettingsScreen } from './settings-screen';

const SCREENS = ['live', 'people', 'video', 'sync', 'settings'] as const;
type ScreenName = (typeof SCREENS)[number];

async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  const loading = document.getElementById('loading')!;
  const bar = loading.querySelector('progress')!;
  const text = loading.querySelector('.progress-text')!;
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('./sw.js').catch(() => {});
  // Opening the live view with the camera already allowed: open it while the engine loads.
  const onLive = ['', '#', '#live'].includes(location.hash);
  const earlyCamera = onLive ? LiveScreen.openEarly().catch(() => null) : Promise.resolve(null);

  // Per model file: bytes so far and the size (0 while unknown: a compressed download).
  const loaded = new Map<string, [number, number]>();
  const likeness = await Likeness.open({
    onProgress: ({ file, loaded: l, total }) => {
      loaded.set(file, [l, total]);
      const files = [...loaded.values()];
      const done = files.reduce((n, [x]) => n + x, 0);
      const known = files.every(([, t]) => t > 0) && files.length === 3;
      if (known) {
        bar.max = files.reduce((n, [, t]) => n + t, 0);
        bar.value = done;
      } else {
        bar.removeAttribute('value'); // indeterminate until every size is known
      }
      text.textContent = `${(done / 1048576).toFixed(1)} MB of models`;
    },
  });
  const settings = await loadSettings();
  const people = new People(likeness);
  await people.ensureCollection();

  const live = new LiveScreen(likeness, people, settings);
  const peopleScreen = new PeopleScreen(likeness, people, settings);
  const video = new VideoScreen(likeness, settings);
  const sync = new SyncScreen(likeness, settings);
  const settingsScreen = new SettingsScreen(settings, () => live.restartForSettings());
  const screens: Record<ScreenName, HTMLElement> = {
    live: live.el,
    people: peopleScreen.el,
    video: video.el,
    sync: sync.el,
    settings: settingsScreen.el,
  };
  const labels: Record<ScreenName, string> = { live: 'Live', people: 'People', video: 'Video', sync: 'Sync', settings: 'Settings' };
  const nav = h('nav', { 'aria-label': 'Screens' }, h('ul', {}, ...SCREENS.map((s) => h('li', {}, h('a', { href: `#${s}`, 'data-screen': s }, labels[s])))));
  const mainEl = h('main', { id: 'main' }, ...SCREENS.map((s) => screens[s]));
  root.replaceChildren(h('header', {}, h('h1', {}, 'Likeness'), nav), mainEl);
  loading.remove();

  const show = () => {
    const hash = location.hash.slice(1);
    const current: ScreenName = (SCREENS as readonly string[]).includes(hash) ? (hash as ScreenName) : 'live';
    for (const s of SCREENS) {
      screens[s].hidden = s !== current;
      nav.querySelector(`[data-screen=${s}]`)!.toggleAttribute('aria-current', s === current);
    }
    if (current !== 'live') live.stop();
    else if (started) void live.shown();
    if (current === 'people') void peopleScreen.refresh();
    if (current === 'settings') void settingsScreen.refresh();
    if (current === 'sync') void sync.render();
    document.title = `${labels[current]} · Likeness`;
  };
  // An invite link (#join=CODE) joins, then shows Sync; the code leaves the address bar.
  const join = location.hash.startsWith('#join=') ? location.hash.slice(6) : null;
  if (join) history.replaceState(null, '', '#sync');
  let started = false;
  window.addEventListener('hashchange', show);
  show();
  const camera = await earlyCamera;
  if (!screens.live.hidden) await live.shown(camera);
  else camera?.getTracks().forEach((t) => t.stop());
  started = true;
  await peopleScreen.refresh();
  await sync.boot(join);
  // How long the engine took to load (fetch + compile, then model set-up), for the curious and the tests.
  document.body.dataset.engineMs = `${likeness.timings.fetchMs.toFixed(0)}+${likeness.timings.initMs.toFixed(0)}`;
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  const loading = document.getElementById('loading');
  if (loading) loading.replaceChildren(h('p', { class: 'status', 'data-kind': 'error', role: 'alert' }, `Likeness could not start: ${describeError(e)}`));
});
