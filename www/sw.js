// Offline after the first visit: the page shell, the CPU wasm (and the WebGPU build in gpu/,
// once a visit used it) and every model fetched are kept in the Cache API and served from
// there (stale-while-revalidate: the cached copy at once, a fresh one stored for next time).
// Only this origin's GET requests are touched.
const CACHE = "retrato-v4";
const SHELL = ["./", "index.html", "retrato.js", "retrato_bg.wasm", "www/main.js", "www/engine.js",
  "www/grid.js", "www/share.js", "www/worker.js", "www/finetune.js", "www/photo.js", "www/store.js", "www/style.css", "www/models/models.json"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const cached = await cache.match(request, { ignoreSearch: true });
      const fresh = fetch(request)
        .then((response) => {
          if (response.ok) cache.put(request, response.clone());
          return response;
        })
        .catch(() => undefined);
      if (cached) {
        event.waitUntil(fresh);
        return cached;
      }
      return (await fresh) ?? new Response("offline and not cached", { status: 503 });
    }),
  );
});
