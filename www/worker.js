// The model lives here, off the main thread, so the page never freezes while a batch runs.
// Messages: { id, op, args } in; { id, ok, result | error } out (pixels transferred, not copied).
import init, { initBackend, loadModel, generate, variations, interpolate } from "../retrato.js";

const ops = {
  async start({ backend }) {
    await init();
    return initBackend(backend);
  },
  load: ({ bytes }) => loadModel(bytes),
  generate: ({ seed, first, count }) => generate(seed, first, count),
  variations: ({ seed, index, count, strength }) => variations(seed, index, count, strength),
  interpolate: ({ from, to, frames }) => interpolate(from.seed, from.index, to.seed, to.index, frames),
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const started = performance.now();
    const result = await ops[op](args);
    const ms = performance.now() - started;
    const transfer = result?.rgba ? [result.rgba.buffer] : [];
    self.postMessage({ id, ok: true, result, ms }, transfer);
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error?.message ?? error) });
  }
};
