// A static file server for dist/ on localhost (a secure origin, which WebGPU requires), that
// records every request so tests can prove the page never leaves its origin.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".png": "image/png",
  ".safetensors": "application/octet-stream",
};

/// Serves `root` at /, and each `mounts` entry ("/prefix/": folder) at its prefix.
export async function serve(root, mounts = {}) {
  const requests = [];
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://localhost").pathname);
    requests.push(path);
    const [prefix, base] = Object.entries(mounts).find(([p]) => path.startsWith(p)) ?? ["/", root];
    const rest = `/${path.slice(prefix.length)}`;
    const file = join(base, normalize(rest.endsWith("/") ? `${rest}index.html` : rest));
    if (!file.startsWith(base)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      response.end(body);
    } catch {
      response.writeHead(404).end("not found");
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://localhost:${server.address().port}/`;
  return { url, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

/// Collects a page's uncaught errors and every request that leaves `origin` (data: and blob:
/// URLs stay inside the page), for the tests' "no errors, no foreign request" checks.
export function watchPage(context, page, origin) {
  const errors = [];
  const foreign = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  context.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith("data:") && !url.startsWith("blob:")) foreign.push(url);
  });
  return { errors, foreign };
}
