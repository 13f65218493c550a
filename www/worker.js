// The model lives here, off the main thread, so the page never freezes while a batch runs.
// Messages: { id, op, args } in; { id, ok, result | error } out (pixels transferred, not copied).
// Two builds of the same library: the CPU one (burn's flex backend, small, loaded first) and
// the WebGPU one (flex + wgpu, ~4× larger), fetched only where a hardware GPU can use it.
const BUILDS = { cpu: "../retrato.js", gpu: "../gpu/retrato.js" };
let wasm = null;

const ops = {
  async start({ backend, build }) {
    const url = BUILDS[build];
    if (!url) throw new Error(`unknown build '${build}' (cpu or gpu)`);
    wasm = await import(url);
    self.retratoBuild = build; // for the browser tests, which pick a worker by its build
    await wasm.default();
    return { ...(await wasm.initBackend(backend)), build };
  },
  load: ({ bytes }) => wasm.loadModel(bytes),
  generate: ({ seed, first, count }) => wasm.generate(seed, first, count),
  // A portrait is { seed, index } or { latent } (a photo's): variations and morphs take either.
  draw: ({ latents }) => wasm.drawLatents(latents),
  variations: ({ portrait, count, strength }) => wasm.variations(portrait, count, strength),
  interpolate: ({ from, to, frames }) => wasm.interpolate(from, to, frames),
  // "Use my photo": the photo is decoded here and stays in this worker only.
  photoOpen: ({ bytes }) => wasm.openPhoto(bytes),
  photoClose: () => wasm.closePhoto(),
  invertStart: ({ model, discriminator, square, options }) => wasm.invertStart(model, discriminator, square, options),
  invertStep: ({ count }) => wasm.invertStep(count),
  invertEnd: () => wasm.invertEnd(),
  // Fine-tuning: pictures are decoded here (the same decoder as native training).
  prepare: ({ bytes, size }) => ({ rgb: wasm.prepareImage(bytes, size) }),
  tuneStart: ({ model, discriminator, pixels, options }) => wasm.fineTuneStart(model, discriminator, pixels, options),
  tuneStep: ({ count }) => wasm.fineTuneStep(count),
  tuneSamples: ({ seed, count }) => wasm.fineTuneSamples(seed, count),
  tuneCheckpoint: async () => ({ bytes: await wasm.fineTuneCheckpoint() }),
  tuneResume: ({ state, pixels, totalSteps }) => wasm.fineTuneResume(state, pixels, BigInt(totalSteps)),
  tuneExport: ({ state, name }) => ({ bytes: wasm.exportModel(state, name) }),
  tuneEnd: () => wasm.fineTuneEnd(),
};

// One call at a time, in the order they came: the wasm calls that await the GPU would
// otherwise interleave (a checkpoint asked for while a training step is in flight finds
// no run to save).
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  queue = queue.then(() => answer(data)).catch(() => {});
};

async function answer({ id, op, args }) {
  try {
    if (op !== "start" && !wasm) throw new Error("the model worker has not started");
    const started = performance.now();
    const result = await ops[op](args);
    const ms = performance.now() - started;
    const buffer = result?.rgba ?? result?.rgb ?? result?.bytes ?? result?.portrait?.rgba ?? result?.preview?.rgba;
    self.postMessage({ id, ok: true, result, ms }, buffer ? [buffer.buffer] : []);
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error?.message ?? error) });
  }
}
