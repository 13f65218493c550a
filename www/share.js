// The share link: the URL's hash carries model, seed, count, view and selection, so opening
// it reproduces the same portraits (models from the catalogue only: a file from disk never
// leaves the machine, so it cannot be in a link). A photo's portrait travels as its latent
// (`z`, float32 in base64url): the numbers the model draws it from, never the photo.

const COUNTS = [1, 16, 64];

export function readHash(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const number = (key) => (/^\d+$/.test(params.get(key) ?? "") ? Number(params.get(key)) : undefined);
  const count = number("n");
  return {
    model: params.get("model") ?? undefined,
    seed: /^\d+$/.test(params.get("seed") ?? "") ? params.get("seed") : undefined,
    count: COUNTS.includes(count) ? count : undefined,
    selected: number("sel"),
    view: params.get("view") === "variations" ? "variations" : "grid",
    latent: decodeLatent(params.get("z")),
  };
}

export function writeHash({ model, seed, count, selected, view, latent }) {
  const params = new URLSearchParams();
  if (model) params.set("model", model);
  params.set("seed", seed);
  params.set("n", String(count));
  if (selected !== undefined && selected >= 0) params.set("sel", String(selected));
  if (view === "variations") params.set("view", view);
  if (latent) params.set("z", encodeLatent(latent));
  history.replaceState(null, "", `#${params}`);
  return location.href;
}

/// A latent as base64url of its float32 values (little-endian).
export function encodeLatent(latent) {
  const bytes = new Uint8Array(Float32Array.from(latent).buffer);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/// The latent of a `z` parameter, or undefined when there is none or it is not one.
export function decodeLatent(text) {
  if (!text || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    if (binary.length === 0 || binary.length % 4 !== 0) return undefined;
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const values = Array.from(new Float32Array(bytes.buffer));
    return values.every(Number.isFinite) ? values : undefined;
  } catch {
    return undefined;
  }
}
