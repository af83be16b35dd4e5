// The app's service worker (vite.config.ts fills in the file list and version at build
// time): precaches the app, the engine and the models at install, so after the first visit
// the app starts and matches offline. Pages: network first (a new build shows at once),
// the cached app when offline. Files: cache first (their names carry content hashes).
// The sync API (/v1/) is never cached.

const VERSION = __VERSION__;
const PRECACHE = __PRECACHE__;
const CACHE = `likeness-app-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('likeness-app-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

const API = /^\/(v1\/|health$|metrics$|openapi\.json$)/;

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin) return;
  const scope = new URL(self.registration.scope);
  const path = '/' + url.pathname.slice(scope.pathname.length);
  if (API.test(path)) return;
  if (req.mode === 'navigate') {
    event.respondWith(
      fetch(req).catch(async () => (await caches.match(req, { ignoreSearch: true })) ?? (await caches.match(new URL('./', scope).href))),
    );
    return;
  }
  event.respondWith(
    caches.match(req).then((hit) => hit ?? fetch(req).then((res) => {
      if (res.ok && res.type === 'basic') {
        const copy = res.clone();
        void caches.open(CACHE).then((c) => c.put(req, copy));
      }
      return res;
    })),
  );
});
