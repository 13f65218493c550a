// The peer of the page benchmark: the DCGAN generator of a retrato model file, with the same
// weights, written in TensorFlow.js ops (what a web developer would otherwise use). Backend
// from ?backend=webgpu|webgl|wasm|cpu; draws `#n` portraits (default 1) on load, then
// exposes window.bench(count) for timed batches. Timings include reading the pixels back.
/* global tf */

const params = new URLSearchParams(location.search);
const backend = params.get("backend") ?? "webgpu";
const model = params.get("model") ?? "/www/models/random-dcgan-64.safetensors";

/// safetensors → { name: Float32Array, shape } (F16 and F32).
function readSafetensors(buffer) {
  const view = new DataView(buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [start, end] = info.data_offsets;
    const bytes = buffer.slice(8 + headerLength + start, 8 + headerLength + end);
    const values = info.dtype === "F32" ? new Float32Array(bytes) : halfToFloat(new Uint16Array(bytes));
    tensors[name] = { values, shape: info.shape };
  }
  return tensors;
}

function halfToFloat(halves) {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) {
    const h = halves[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    out[i] = exponent === 0 ? sign * 2 ** -14 * (fraction / 1024)
      : exponent === 31 ? (fraction ? NaN : sign * Infinity)
      : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}

/// PyTorch ConvTranspose2d [in, out, kh, kw] → tfjs conv2dTranspose filter [kh, kw, out, in].
function filter({ values, shape }) {
  return tf.tidy(() => tf.tensor4d(values, shape).transpose([2, 3, 1, 0]));
}

function buildGenerator(tensors) {
  const blocks = [];
  for (let i = 0; `generator.blocks.${i}.conv.weight` in tensors; i++) {
    const p = `generator.blocks.${i}`;
    const t = (name) => tf.tensor1d(tensors[`${p}.norm.${name}`].values);
    blocks.push({ w: filter(tensors[`${p}.conv.weight`]), gamma: t("weight"), beta: t("bias"),
      mean: t("running_mean"), variance: t("running_var"), first: i === 0 });
  }
  const toRgb = filter(tensors["generator.to_rgb.weight"]);
  const latentDim = tensors["generator.blocks.0.conv.weight"].shape[0];
  /// z [n, nz] → images in [0, 1], NHWC.
  return {
    latentDim,
    forward: (z) => tf.tidy(() => {
      let x = z.reshape([z.shape[0], 1, 1, latentDim]);
      for (const b of blocks) {
        const [h, w] = [x.shape[1], x.shape[2]];
        const out = b.first ? [x.shape[0], 4, 4, b.w.shape[2]] : [x.shape[0], h * 2, w * 2, b.w.shape[2]];
        x = tf.conv2dTranspose(x, b.w, out, b.first ? 1 : 2, b.first ? "valid" : "same");
        x = tf.relu(tf.batchNorm(x, b.mean, b.variance, b.beta, b.gamma, 1e-5));
      }
      const [n, h, w] = x.shape;
      x = tf.tanh(tf.conv2dTranspose(x, toRgb, [n, h * 2, w * 2, 3], 2, "same"));
      return x.add(1).div(2).clipByValue(0, 1);
    }),
  };
}

async function portraits(generator, count) {
  const images = generator.forward(tf.randomNormal([count, generator.latentDim], 0, 1, "float32", 0));
  const pixels = await images.data();
  images.dispose();
  return pixels;
}

async function main() {
  const started = performance.now();
  if (backend === "wasm") tf.wasm.setWasmPaths("/tfjs/tfjs-backend-wasm/dist/");
  await tf.setBackend(backend);
  await tf.ready();
  const tensors = readSafetensors(await (await fetch(model)).arrayBuffer());
  const generator = buildGenerator(tensors);
  const count = Number(location.hash.replace(/^#n=/, "")) || 1;
  const first = await portraits(generator, count);
  const canvas = document.getElementById("grid");
  canvas.width = 64;
  canvas.height = 64;
  const rgba = new Uint8ClampedArray(64 * 64 * 4);
  for (let i = 0; i < 64 * 64; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = Math.round(first[i * 3 + c] * 255);
    rgba[i * 4 + 3] = 255;
  }
  canvas.getContext("2d").putImageData(new ImageData(rgba, 64, 64), 0, 0);
  window.coldStartMs = performance.now();
  window.bench = async (n) => {
    const t0 = performance.now();
    await portraits(generator, n);
    return performance.now() - t0;
  };
  window.backendInUse = tf.getBackend();
  window.loadMs = performance.now() - started;
}

main().catch((error) => { window.benchError = String(error); });
