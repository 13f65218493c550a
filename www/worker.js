// The model lives here, off the main thread, so the page never freezes while a batch runs.
// Messages: { id, op, args } in; { id, ok, result | error } out (pixels transferred, not copied).
import init, {
  initBackend, loadModel, generate, variations, interpolate, prepareImage,
  fineTuneStart, fineTuneStep, fineTuneSamples, fineTuneCheckpoint, fineTuneResume, exportModel, fineTuneEnd,
} from "../retrato.js";

const ops = {
  async start({ backend }) {
    await init();
    return initBackend(backend);
  },
  load: ({ bytes }) => loadModel(bytes),
  generate: ({ seed, first, count }) => generate(seed, first, count),
  variations: ({ seed, index, count, strength }) => variations(seed, index, count, strength),
  interpolate: ({ from, to, frames }) => interpolate(from.seed, from.index, to.seed, to.index, frames),
  // Fine-tuning: pictures are decoded here (the same decoder as native training).
  prepare: ({ bytes, size }) => ({ rgb: prepareImage(bytes, size) }),
  tuneStart: ({ model, discriminator, pixels, options }) => fineTuneStart(model, discriminator, pixels, options),
  tuneStep: ({ count }) => fineTuneStep(count),
  tuneSamples: ({ seed, count }) => fineTuneSamples(seed, count),
  tuneCheckpoint: async () => ({ bytes: await fineTuneCheckpoint() }),
  tuneResume: ({ state, pixels, totalSteps }) => fineTuneResume(state, pixels, BigInt(totalSteps)),
  tuneExport: ({ state, name }) => ({ bytes: exportModel(state, name) }),
  tuneEnd: () => fineTuneEnd(),
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const started = performance.now();
    const result = await ops[op](args);
    const ms = performance.now() - started;
    const buffer = result?.rgba ?? result?.rgb ?? result?.bytes;
    self.postMessage({ id, ok: true, result, ms }, buffer ? [buffer.buffer] : []);
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error?.message ?? error) });
  }
};
