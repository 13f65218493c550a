// The share link: the URL's hash carries model, seed, count, view and selection, so opening
// it reproduces the same portraits (models from the catalogue only: a file from disk never
// leaves the machine, so it cannot be in a link).

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
  };
}

export function writeHash({ model, seed, count, selected, view }) {
  const params = new URLSearchParams();
  if (model) params.set("model", model);
  params.set("seed", seed);
  params.set("n", String(count));
  if (selected !== undefined && selected >= 0) params.set("sel", String(selected));
  if (view === "variations") params.set("view", view);
  history.replaceState(null, "", `#${params}`);
  return location.href;
}
