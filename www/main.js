// The page: picks the backend, loads a model from www/models, draws seeded portraits.
// All model work happens in the wasm library; this file only wires the DOM.
import init, { initBackend, loadModel, generate } from "../retrato.js";

const $ = (id) => document.getElementById(id);
const TILE_PADDING = 2; // the CLI's grid padding, so both grids look alike
const COUNT = 16;

function setStatus(text) { $("status").textContent = text; }

function showBackend(backend) {
  const badge = $("backend");
  badge.dataset.state = backend.name;
  badge.textContent = backend.name === "webgpu" ? "WebGPU" : "CPU";
  badge.title = backend.reason;
  setStatus(backend.reason);
}

async function fetchModel(entry) {
  const response = await fetch(`www/models/${entry.file}`);
  if (!response.ok) throw new Error(`${entry.file}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function describe(info, entry) {
  const fid = info.metrics.fid === undefined ? "FID not measured" : `FID ${info.metrics.fid.toFixed(1)}`;
  const { family, image_size: size } = info.model;
  return `${entry.label}: ${family.toUpperCase()}, ${size}×${size}, ` +
    `trained on ${info.dataset || "unknown data"} (${info.steps} steps), ${fid}. ${info.notes}`;
}

function draw(portraits) {
  const { count, width, height, rgba } = portraits;
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const canvas = $("grid");
  canvas.width = columns * (width + TILE_PADDING) + TILE_PADDING;
  canvas.height = rows * (height + TILE_PADDING) + TILE_PADDING;
  const context = canvas.getContext("2d");
  context.fillStyle = "#181818";
  context.fillRect(0, 0, canvas.width, canvas.height);
  const tileBytes = width * height * 4;
  for (let i = 0; i < count; i++) {
    const tile = new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + i * tileBytes, tileBytes), width, height);
    const x = TILE_PADDING + (i % columns) * (width + TILE_PADDING);
    const y = TILE_PADDING + Math.floor(i / columns) * (height + TILE_PADDING);
    context.putImageData(tile, x, y);
  }
  canvas.dataset.seed = $("seed").value;
  canvas.dataset.drawn = String(count);
}

async function run() {
  const button = $("generate");
  button.disabled = true;
  try {
    const started = performance.now();
    const portraits = await generate($("seed").value, 0, COUNT);
    draw(portraits);
    setStatus(`${portraits.count} portraits in ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    setStatus(String(error.message ?? error));
  } finally {
    button.disabled = false;
  }
}

async function selectModel(entry) {
  setStatus(`loading ${entry.label}…`);
  const info = loadModel(await fetchModel(entry));
  $("card").textContent = describe(info, entry);
}

async function main() {
  await init();
  const forceCpu = new URLSearchParams(location.search).get("backend") === "cpu";
  showBackend(await initBackend(forceCpu));
  const catalog = await (await fetch("www/models/models.json")).json();
  const picker = $("model");
  for (const entry of catalog.models) picker.add(new Option(entry.label, entry.file));
  const entryFor = (file) => catalog.models.find((m) => m.file === file);
  picker.addEventListener("change", async () => { await selectModel(entryFor(picker.value)); await run(); });
  $("generate").addEventListener("click", run);
  $("random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 32));
    run();
  });
  await selectModel(catalog.models[0]);
  await run();
}

main().catch((error) => {
  $("backend").dataset.state = "error";
  $("backend").textContent = "error";
  setStatus(`retrato could not start: ${error.message ?? error}`);
});
