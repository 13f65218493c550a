// The page: wires the DOM to the model worker (engine.js). Everything about models, latents
// and pixels happens in the wasm library inside the worker; this file only decides what to
// ask for and draws the answers.
import { Engine } from "./engine.js";
import { drawGrid, tileAt, animate, downloadPng, downloadTile, recordWebm } from "./grid.js";
import { readHash, writeHash } from "./share.js";
import { FineTune } from "./finetune.js";
import { Photo } from "./photo.js";
import { getModel, listModels } from "./store.js";

const $ = (id) => document.getElementById(id);
const MORPH_FRAMES = 16;
const VARIATION_STRENGTH = 0.3;

const state = {
  catalog: [],
  entry: null, // the catalogue entry, { file: "mine:NAME" } for the visitor's own, or null for a file from disk
  modelName: "",
  info: null, // the loaded model's header
  count: 16,
  view: "grid", // "grid": portraits of the seed; "variations": around the selected one
  selected: -1,
  origin: null, // for variations: { seed, index } or { latent }
  photo: null, // the visitor's photo as a portrait: { latent, portrait } (portrait: in the current model, or null)
  photoChosen: false, // whether the side panel shows the photo's portrait rather than a tile
  portraits: null,
  layout: null,
  morphFrom: null,
  morph: null,
  stopMorph: () => {},
};

function setStatus(text, kind = "info") {
  $("status").textContent = text;
  $("status").dataset.kind = kind;
}

function showBackend(backend) {
  const badge = $("backend");
  badge.dataset.state = backend.name;
  badge.textContent = backend.name === "webgpu" ? "WebGPU" : "CPU";
  badge.title = backend.adapter ? `${backend.reason} · ${backend.adapter}` : backend.reason;
  $("backend-reason").textContent = badge.title;
}

const engine = new Engine({ onBackend: showBackend });
const MINE = "mine:"; // picker values of the visitor's own (fine-tuned) models

const fineTune = new FineTune({
  engine,
  current: () => ({ bytes: engine.modelBytes, name: state.modelName, entry: state.entry, info: state.info }),
  onModel: async (name) => {
    await fillPicker();
    if (name === null) return;
    await loadEntry(findEntry(MINE + name));
    state.view = "grid";
    await render();
  },
});

const photo = new Photo({
  engine,
  current: () => ({ bytes: engine.modelBytes, entry: state.entry, info: state.info }),
  onFound: async (latent) => {
    state.photo = { latent, portrait: null };
    await drawPhoto();
    choosePhoto();
  },
});

/// What a portrait reference says, for titles and the status line.
function label(portrait) {
  return portrait.latent ? "your photo's portrait" : `portrait ${portrait.index} of seed ${portrait.seed}`;
}

function capitalised(text) {
  return text[0].toUpperCase() + text.slice(1);
}

/// The selected portrait as the worker takes it: { seed, index } or { latent }, or null.
function chosen() {
  if (state.photoChosen && state.photo?.portrait) return { latent: state.photo.latent };
  if (state.view === "grid" && state.selected >= 0) return { seed: seed(), index: state.selected };
  return null;
}

/// Draws the photo's latent in the current model (a related model draws the same person; a
/// model of another latent size cannot, and says so).
async function drawPhoto() {
  if (!state.photo) return;
  $("photo-mine-box").hidden = false;
  try {
    state.photo.portrait = await engine.run("draw", { latents: state.photo.latent });
    drawGrid($("photo-mine"), state.photo.portrait, { columns: 1 });
    $("photo-mine").dataset.model = state.modelName;
    $("photo-mine").hidden = false;
    $("photo-mine-caption").textContent = `Your photo's portrait in ${state.modelName}: click it to select it; ` +
      "pick another model above to see the same person there.";
  } catch (error) {
    state.photo.portrait = null;
    state.photoChosen = false;
    $("photo-mine").hidden = true;
    $("photo-mine-caption").textContent = `Your photo's portrait cannot be drawn in ${state.modelName}: ${error.message ?? error}`;
  }
}

async function choosePhoto() {
  if (!state.photo?.portrait) return;
  if (state.morphFrom && state.view === "grid") {
    const from = state.morphFrom;
    state.morphFrom = null;
    await morph(from, { latent: state.photo.latent });
    return;
  }
  state.photoChosen = true;
  state.selected = -1;
  if (state.portraits) redraw();
  writeHash(shareState());
}

/// The catalogue, then the visitor's own models (IndexedDB) in their own group.
async function fillPicker() {
  const select = $("model");
  const chosen = select.value;
  select.replaceChildren(...state.catalog.map((entry) => new Option(entry.label, entry.file)));
  const mine = await listModels().catch(() => []);
  state.mine = mine.map((m) => ({ file: MINE + m.name, label: m.name }));
  if (state.mine.length) {
    const group = document.createElement("optgroup");
    group.label = "Your models (this browser)";
    group.append(...state.mine.map((entry) => new Option(entry.label, entry.file)));
    select.append(group);
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function findEntry(file) {
  return state.catalog.find((m) => m.file === file) ?? state.mine?.find((m) => m.file === file);
}

function describe(info, name) {
  const { family, image_size: size } = info.model;
  const e = info.evaluation;
  const quality = e
    ? `FID ${e.fid.toFixed(1)} on ${e.n} portraits against ${e.reference}` +
      (e.floor === undefined || e.floor === null ? "" : ` (real-vs-real floor ${e.floor.toFixed(1)})`)
    : info.metrics.fid === undefined ? "FID not measured" : `FID ${info.metrics.fid.toFixed(1)}`;
  return `${name}: ${family.toUpperCase()}, ${size}×${size}, trained on ${info.dataset || "unknown data"} ` +
    `(${info.steps} steps), ${quality}. ${info.notes}`;
}

async function loadBytes(bytes, name, entry) {
  setStatus(`loading ${name}…`);
  const info = await engine.load(bytes);
  state.entry = entry;
  state.modelName = name;
  state.info = info;
  $("card").textContent = describe(info, name);
  await drawPhoto();
  $("terms").textContent = entry?.terms ?? "";
  $("terms").hidden = !entry?.terms;
  if (entry) $("model").value = entry.file;
}

async function loadEntry(entry) {
  if (entry.file.startsWith(MINE)) {
    const model = await getModel(entry.file.slice(MINE.length));
    if (!model) throw new Error(`${entry.label}: not in this browser's storage any more`);
    await loadBytes(model.bytes, model.name, entry);
    return;
  }
  const response = await fetch(`www/models/${entry.file}`);
  if (!response.ok) throw new Error(`${entry.file}: HTTP ${response.status}`);
  await loadBytes(new Uint8Array(await response.arrayBuffer()), entry.label, entry);
}

/// A model file from the visitor's disk; a bad one is refused and the current model stays.
async function loadFile(file) {
  try {
    await loadBytes(new Uint8Array(await file.arrayBuffer()), file.name, null);
    state.view = "grid";
    await render();
  } catch (error) {
    setStatus(`${file.name}: ${error.message ?? error}. The current model (${state.modelName}) is still loaded.`, "error");
  }
}

function seed() {
  return $("seed").value.trim();
}

function shareState() {
  const latentShown = state.view === "variations" ? state.origin.latent : state.photoChosen && state.photo?.latent;
  const selected = state.view === "variations" ? state.origin.index : state.photoChosen ? -1 : state.selected;
  return { model: state.entry?.file, seed: seed(), count: state.count, selected, view: state.view, latent: latentShown || undefined };
}

async function render() {
  setBusy(true);
  try {
    const started = performance.now();
    const portraits = state.view === "variations"
      ? await engine.run("variations", { portrait: state.origin, count: state.count, strength: VARIATION_STRENGTH })
      : await engine.run("generate", { seed: seed(), first: 0, count: state.count });
    state.portraits = portraits;
    if (state.selected >= portraits.count) state.selected = -1;
    redraw();
    const total = Math.round(performance.now() - started);
    // Marks for the page benchmark (bench/web.mjs) and anyone's DevTools.
    performance.measure("retrato:render", { start: started });
    if (performance.getEntriesByName("retrato:first-portraits").length === 0) performance.mark("retrato:first-portraits");
    const what = state.view === "variations"
      ? `${portraits.count} variations of ${label(state.origin)}`
      : `${portraits.count} portrait${portraits.count === 1 ? "" : "s"} of seed ${seed()}`;
    $("timing").textContent = `${Math.round(portraits.ms)} ms in the model, ${total} ms in all · ` +
      `${engine.backend.name === "webgpu" ? "WebGPU" : "CPU (wasm)"}${engine.backend.adapter ? ` · ${engine.backend.adapter}` : ""}`;
    setStatus(what);
    writeHash(shareState());
  } catch (error) {
    setStatus(String(error.message ?? error), "error");
  } finally {
    setBusy(false);
  }
}

function redraw() {
  const canvas = $("grid");
  state.layout = drawGrid(canvas, state.portraits, { selected: [state.selected] });
  canvas.dataset.seed = seed();
  canvas.dataset.view = state.view;
  canvas.dataset.drawn = String(state.portraits.count);
  showSelection();
}

function showSelection() {
  const i = state.selected;
  const mine = state.photoChosen && state.photo?.portrait;
  const has = mine || (i >= 0 && state.portraits);
  for (const id of ["variations", "morph", "download-one"]) $(id).disabled = !has;
  $("variations").disabled = !has || state.view !== "grid";
  $("morph").disabled = !has || state.view !== "grid";
  $("selection").textContent = !has ? "Click a portrait to select it."
    : mine ? capitalised(label({ latent: state.photo.latent }))
    : state.view === "grid" ? `Portrait ${i} of seed ${seed()}` : `Variation ${i}`;
  $("photo-mine").dataset.selected = String(Boolean(mine));
  const zoom = $("zoom");
  if (!has) { zoom.hidden = true; return; }
  zoom.hidden = false;
  const source = mine ? state.photo.portrait : state.portraits;
  const index = mine ? 0 : i;
  zoom.width = source.width;
  zoom.height = source.height;
  drawGrid(zoom, { ...source, count: 1, rgba: source.rgba.subarray(index * zoom.width * zoom.height * 4) }, { columns: 1 });
}

function setBusy(busy) {
  for (const id of ["generate", "random", "model"]) $(id).disabled = busy;
  document.body.dataset.busy = String(busy);
}

async function select(i) {
  if (i < 0) return;
  state.photoChosen = false;
  if (state.morphFrom && state.view === "grid") {
    const to = { seed: seed(), index: i };
    const from = state.morphFrom;
    state.morphFrom = null;
    await morph(from, to);
    return;
  }
  state.selected = i;
  redraw();
  writeHash(shareState());
}

async function morph(from, to) {
  setBusy(true);
  try {
    const frames = await engine.run("interpolate", { from, to, frames: MORPH_FRAMES });
    state.morph = { frames, from, to };
    state.stopMorph();
    $("morph-panel").hidden = false;
    drawGrid($("morph-strip"), frames, { columns: frames.count });
    state.stopMorph = animate($("morph-player"), frames);
    $("morph-title").textContent = `${capitalised(label(from))} → ${label(to)}`;
    $("morph-strip").dataset.drawn = String(frames.count);
    setStatus(`morph of ${frames.count} frames in ${Math.round(frames.ms)} ms`);
  } catch (error) {
    setStatus(String(error.message ?? error), "error");
  } finally {
    setBusy(false);
  }
}

function wire() {
  fineTune.wire();
  photo.wire();
  $("photo-mine").addEventListener("click", () => choosePhoto());
  $("model").addEventListener("change", async () => {
    try {
      await loadEntry(findEntry($("model").value));
      state.view = "grid";
      await render();
    } catch (error) {
      setStatus(String(error.message ?? error), "error");
    }
  });
  $("generate").addEventListener("click", () => { state.view = "grid"; render(); });
  $("random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 32));
    state.view = "grid";
    state.selected = -1;
    render();
  });
  $("seed").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { state.view = "grid"; render(); }
  });
  for (const radio of document.querySelectorAll("input[name=count]")) {
    radio.addEventListener("change", () => { state.count = Number(radio.value); render(); });
  }
  const grid = $("grid");
  grid.addEventListener("click", (event) => select(tileAt(grid, state.layout, event)));
  grid.addEventListener("keydown", (event) => {
    if (!state.layout) return;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: state.layout.columns, ArrowUp: -state.layout.columns };
    if (event.key in moves) {
      event.preventDefault();
      const next = Math.min(state.layout.count - 1, Math.max(0, (state.selected < 0 ? 0 : state.selected + moves[event.key])));
      select(next);
    } else if (event.key === "Enter" && state.selected >= 0) {
      select(state.selected);
    }
  });
  $("variations").addEventListener("click", () => {
    state.origin = chosen();
    state.view = "variations";
    state.selected = -1;
    state.photoChosen = false;
    render();
  });
  $("back").addEventListener("click", () => {
    state.view = "grid";
    state.photoChosen = Boolean(state.origin?.latent);
    state.selected = state.origin?.index ?? -1;
    render();
  });
  $("morph").addEventListener("click", () => {
    state.morphFrom = chosen();
    setStatus(`Morph from ${label(state.morphFrom)}: now click the portrait to morph into ` +
      "(change the seed first if you like, or click your photo's portrait).");
  });
  $("download-grid").addEventListener("click", () => downloadPng($("grid"), `retrato-${seed()}.png`));
  $("download-one").addEventListener("click", () => (state.photoChosen
    ? downloadTile(state.photo.portrait, 0, "retrato-my-photo.png")
    : downloadTile(state.portraits, state.selected, `retrato-${seed()}-${state.selected}.png`)));
  $("morph-png").addEventListener("click", () => downloadPng($("morph-strip"), "retrato-morph.png"));
  $("morph-webm").addEventListener("click", () => recordWebm(state.morph.frames, "retrato-morph.webm"));
  $("smooth").addEventListener("change", () => { document.body.dataset.smooth = String($("smooth").checked); });
  $("share").addEventListener("click", async () => {
    const link = writeHash(shareState());
    try {
      await navigator.clipboard.writeText(link);
      setStatus("Link copied: it opens these portraits.");
    } catch {
      setStatus(`Share this link: ${link}`);
    }
  });
  $("file").addEventListener("change", () => { if ($("file").files[0]) loadFile($("file").files[0]); });
  document.addEventListener("dragover", (event) => { event.preventDefault(); document.body.dataset.drop = "true"; });
  document.addEventListener("dragleave", () => { document.body.dataset.drop = "false"; });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.dataset.drop = "false";
    const files = [...(event.dataTransfer?.files ?? [])];
    // Pictures go to fine-tuning; anything else is tried as a model file.
    if (files.length && files.every((f) => f.type.startsWith("image/"))) fineTune.add(files);
    else if (files[0]) loadFile(files[0]);
  });
}

async function main() {
  wire();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((error) => console.warn("offline mode unavailable:", error));
  }
  const params = new URLSearchParams(location.search);
  const choice = params.get("backend");
  await engine.start(["cpu", "webgpu", "any"].includes(choice) ? choice : "auto");
  state.catalog = (await (await fetch("www/models/models.json")).json()).models;
  await fillPicker();
  const shared = readHash();
  if (shared.seed !== undefined) $("seed").value = shared.seed;
  state.count = shared.count ?? state.count;
  document.querySelector(`input[name=count][value="${state.count}"]`).checked = true;
  const entry = findEntry(shared.model) ?? state.catalog[0];
  await loadEntry(entry);
  await fineTune.offerResume();
  if (shared.latent) {
    state.photo = { latent: shared.latent, portrait: null };
    await drawPhoto();
  }
  if (shared.view === "variations" && (shared.selected !== undefined || shared.latent)) {
    state.origin = shared.latent ? { latent: shared.latent } : { seed: seed(), index: shared.selected };
    state.view = "variations";
  } else {
    state.selected = shared.selected ?? -1;
    state.photoChosen = Boolean(shared.latent && state.photo.portrait);
  }
  await render();
}

main().catch((error) => {
  $("backend").dataset.state = "error";
  $("backend").textContent = "error";
  setStatus(`retrato could not start: ${error.message ?? error}`, "error");
});
