// "Use my photo": the visitor picks one photo, places a square over the face, and the model
// searches its latent space for the portrait closest to it (the library's inversion, run a
// few steps per worker call while the reconstruction is redrawn). The photo is decoded in the
// model worker and never leaves the page; nothing of it is stored. What comes out is a latent:
// a portrait of its own that the page varies, morphs, shares and draws in related models.
import { download, drawGrid, tile } from "./grid.js";

export const DEFAULT_STEPS = 150;
const STARTS = 2; // random starts searched together, the best kept
const CALL_MS = 400; // steps per worker call are sized to take about this long
const MIN_SIDE = 24; // the library's smallest face (pixels across)

const $ = (id) => document.getElementById(id);

export class Photo {
  /// `current()` gives the loaded model: { bytes, entry, info }. `onFound(latent)` receives
  /// the search's result (also when stopped early: the best so far).
  constructor({ engine, current, onFound }) {
    this.engine = engine;
    this.current = current;
    this.onFound = onFound;
    this.file = null; // { name, bytes } kept in this page only, to reopen after a worker restart
    this.opened = null; // { width, height, square, preview }
    this.search = null; // { stop, step, steps }
    this.latent = null; // the last search's result
    this.drag = null;
  }

  wire() {
    $("photo-file").addEventListener("change", (event) => {
      const file = event.target.files[0];
      event.target.value = "";
      if (file) this.open(file);
    });
    const zone = $("photo-drop");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); event.stopPropagation(); zone.dataset.over = "true"; });
    zone.addEventListener("dragleave", () => { zone.dataset.over = "false"; });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      event.stopPropagation();
      zone.dataset.over = "false";
      const file = event.dataTransfer?.files?.[0];
      if (file) this.open(file);
    });
    const canvas = $("photo-canvas");
    canvas.addEventListener("pointerdown", (event) => this.grab(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    canvas.addEventListener("pointerup", () => { this.drag = null; });
    canvas.addEventListener("wheel", (event) => {
      if (!this.opened) return;
      event.preventDefault();
      this.resize(this.opened.square.side * (event.deltaY > 0 ? 1.05 : 1 / 1.05));
    }, { passive: false });
    canvas.addEventListener("keydown", (event) => this.nudge(event));
    $("photo-size").addEventListener("input", () => this.resize(Number($("photo-size").value)));
    $("photo-start").addEventListener("click", () => this.start());
    $("photo-stop").addEventListener("click", () => { if (this.search) this.search.stop = true; });
    $("photo-forget").addEventListener("click", () => this.forget());
    $("photo-latent").addEventListener("click", () => {
      if (this.latent) download(new Blob([npy(this.latent)]), "retrato-latent.npy");
    });
  }

  status(text, kind = "info") {
    $("photo-status").textContent = text;
    $("photo-status").dataset.kind = kind;
  }

  /// Decodes the photo in the worker (EXIF-rotated upright); a bad file gets its reason.
  async open(file) {
    if (this.search) return this.status("a search is running: stop it first", "error");
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      this.status(`reading ${file.name}…`);
      const opened = await this.engine.call("photoOpen", { bytes: bytes.slice() });
      this.file = { name: file.name, bytes };
      this.opened = opened;
      $("photo-crop").hidden = false;
      const size = $("photo-size");
      size.min = String(Math.min(MIN_SIDE, opened.square.side));
      size.max = String(Math.min(opened.width, opened.height));
      size.value = String(opened.square.side);
      this.drawCrop();
      this.status(`${file.name}: ${opened.width}×${opened.height}. Drag the square over the face ` +
        "(mouse wheel, the slider or +/− sets its size), then find it in the model.");
    } catch (error) {
      this.status(`${file.name}: ${error.message ?? error}`, "error");
    }
  }

  /// The photo with the square; the canvas is the preview's size, the square in photo pixels.
  drawCrop() {
    const { preview, width, square } = this.opened;
    const canvas = $("photo-canvas");
    canvas.width = preview.width;
    canvas.height = preview.height;
    const context = canvas.getContext("2d");
    context.putImageData(tile(preview, 0), 0, 0);
    const scale = preview.width / width;
    context.lineWidth = 2;
    context.strokeStyle = "#fff";
    context.strokeRect(square.left * scale, square.top * scale, square.side * scale, square.side * scale);
    context.setLineDash([4, 4]);
    context.strokeStyle = "#000";
    context.strokeRect(square.left * scale, square.top * scale, square.side * scale, square.side * scale);
    canvas.dataset.square = `${square.left},${square.top},${square.side}`;
  }

  /// The square, kept inside the photo.
  place(left, top, side) {
    const { width, height } = this.opened;
    side = Math.round(Math.max(Math.min(MIN_SIDE, width, height), Math.min(side, width, height)));
    left = Math.round(Math.min(Math.max(0, left), width - side));
    top = Math.round(Math.min(Math.max(0, top), height - side));
    this.opened.square = { left, top, side };
    $("photo-size").value = String(side);
    this.drawCrop();
  }

  resize(side) {
    const { left, top, side: old } = this.opened.square;
    this.place(left + (old - side) / 2, top + (old - side) / 2, side);
  }

  photoPoint(event) {
    const canvas = $("photo-canvas");
    const box = canvas.getBoundingClientRect();
    const scale = this.opened.width / box.width;
    return { x: (event.clientX - box.left) * scale, y: (event.clientY - box.top) * scale };
  }

  grab(event) {
    if (!this.opened || this.search) return;
    const { x, y } = this.photoPoint(event);
    const { left, top, side } = this.opened.square;
    // Inside the square: move it; outside: centre it there.
    const inside = x >= left && x <= left + side && y >= top && y <= top + side;
    if (!inside) this.place(x - side / 2, y - side / 2, side);
    const now = this.opened.square;
    this.drag = { dx: x - now.left, dy: y - now.top };
    event.target.setPointerCapture?.(event.pointerId);
  }

  move(event) {
    if (!this.drag) return;
    const { x, y } = this.photoPoint(event);
    this.place(x - this.drag.dx, y - this.drag.dy, this.opened.square.side);
  }

  nudge(event) {
    if (!this.opened || this.search) return;
    const { left, top, side } = this.opened.square;
    const step = Math.max(1, Math.round(side / 20));
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key in moves) {
      event.preventDefault();
      this.place(left + moves[event.key][0], top + moves[event.key][1], side);
    } else if (event.key === "+" || event.key === "=") this.resize(side * 1.05);
    else if (event.key === "-") this.resize(side / 1.05);
  }

  /// Searches the current model for the square's face, drawing the best start as it improves.
  async start() {
    if (!this.opened || this.search) return;
    const model = this.current();
    const steps = Math.max(1, Math.min(2000, Number($("photo-steps").value) || DEFAULT_STEPS));
    const search = { stop: false, step: 0, steps };
    this.search = search;
    this.busy(true);
    try {
      const discriminator = await this.discriminator(model.entry);
      const args = { model: model.bytes.slice(), discriminator, square: this.opened.square, options: { steps, starts: STARTS, seed: 0 } };
      const started = await this.startOn(args);
      $("photo-live").hidden = false;
      drawGrid($("photo-target"), started.target, { columns: 1 });
      const began = performance.now();
      let count = 1;
      let found = null;
      let first = null;
      while (!search.stop && search.step < steps) {
        const progress = await this.engine.call("invertStep", { count });
        count = Math.max(1, Math.min(50, Math.round((count * CALL_MS) / Math.max(1, progress.ms))));
        search.step = progress.step;
        first ??= progress.loss;
        found = progress;
        this.show(progress, started.target, began);
      }
      const seconds = (performance.now() - began) / 1000;
      this.latent = found.latent;
      $("photo-latent").disabled = false;
      await this.onFound(found.latent);
      $("photo-result").dataset.done = "true";
      this.status(`found in ${seconds.toFixed(1)} s: ${found.step} steps${search.stop ? " (stopped early)" : ""}, ` +
        `loss ${first.toFixed(3)} → ${found.loss.toFixed(3)}, ${psnr(started.target, found.portrait).toFixed(1)} dB. ` +
        "It is now the selected portrait: vary it, morph it, share it, or pick another model to draw it there.");
    } catch (error) {
      this.status(`${this.file?.name ?? "the photo"}: ${error.message ?? error}`, "error");
    } finally {
      await this.engine.call("invertEnd").catch(() => {});
      this.search = null;
      this.busy(false);
    }
  }

  /// Starts the search; reopens the photo once if the worker forgot it (a restart, or the
  /// switch to the WebGPU build, which happens only between searches).
  async startOn(args) {
    try {
      return await this.engine.call("invertStart", args);
    } catch (error) {
      if (!/no photo is open/.test(String(error.message ?? error))) throw error;
      await this.engine.call("photoOpen", { bytes: this.file.bytes.slice() });
      return this.engine.call("invertStart", args);
    }
  }

  /// The catalogue model's discriminator (its features make the likeness), when it has one.
  async discriminator(entry) {
    if (!entry?.discriminator) return null;
    this.status("fetching the model's discriminator (its features guide the search)…");
    const response = await fetch(`www/models/${entry.discriminator}`);
    return response.ok ? new Uint8Array(await response.arrayBuffer()) : null;
  }

  show(progress, target, began) {
    drawGrid($("photo-result"), progress.portrait, { columns: 1 });
    $("photo-result").dataset.step = String(progress.step);
    $("photo-result").dataset.done = "false";
    $("photo-progress").value = progress.step / progress.steps;
    const seconds = (performance.now() - began) / 1000;
    $("photo-numbers").textContent = `step ${progress.step} of ${progress.steps} · ` +
      `${(progress.step / Math.max(seconds, 1e-3)).toFixed(1)} steps/s · loss ${progress.loss.toFixed(3)} · ` +
      `${psnr(target, progress.portrait).toFixed(1)} dB`;
  }

  busy(on) {
    $("photo-start").disabled = on;
    $("photo-stop").disabled = !on;
    $("photo-file").disabled = on;
  }

  /// Forgets the photo here and in the worker.
  async forget() {
    if (this.search) this.search.stop = true;
    this.file = null;
    this.opened = null;
    $("photo-crop").hidden = true;
    $("photo-live").hidden = true;
    await this.engine.call("photoClose").catch(() => {});
    this.status("The photo is forgotten.");
  }
}

/// PSNR (dB) of two single RGBA pictures of the same size, over RGB.
export function psnr(a, b) {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.rgba.length; i++) {
    if (i % 4 === 3) continue;
    sum += ((a.rgba[i] - b.rgba[i]) / 255) ** 2;
    n++;
  }
  return 10 * Math.log10(1 / Math.max(sum / n, 1e-12));
}

/// A latent as a float32 1×dim .npy, for `retrato sample --latents` (and `--model` any related
/// model) on the command line.
export function npy(latent) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (1, ${latent.length}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const bytes = new Uint8Array(10 + header.length + 4 * latent.length);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  bytes.set(new TextEncoder().encode(header), 10);
  bytes.set(new Uint8Array(Float32Array.from(latent).buffer), 10 + header.length);
  return bytes;
}
