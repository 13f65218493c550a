// Fine-tuning on the visitor's own pictures, in the page: pictures are decoded in the model
// worker (the native trainer's decoder), the run is the native trainer's step with the
// built-in few-shot recipe, progress is drawn between short batches of steps, the state is
// saved to IndexedDB every half minute, and the result becomes a model in the picker.
// No picture and no weight ever leaves the browser.
import { drawGrid } from "./grid.js";
import { getRun, saveRun, deleteRun, listModels, saveModel, deleteModel } from "./store.js";

export const MIN_PICTURES = 10;
export const MAX_PICTURES = 200;
const SAMPLE_SEED = "7"; // the fixed portraits watched while the model changes
const SAMPLE_COUNT = 16;
const SAMPLE_EVERY_MS = 4000;
const SAVE_EVERY_MS = 30000;
const CALL_MS = 500; // steps per worker call are sized to take about this long

const $ = (id) => document.getElementById(id);

export class FineTune {
  /// `current()` gives the loaded model: { bytes, name, entry, info }. `onModel(name)` is
  /// called when a fine-tuned model is saved or deleted, to refresh and pick it.
  constructor({ engine, current, onModel }) {
    this.engine = engine;
    this.current = current;
    this.onModel = onModel;
    this.pictures = []; // { name, rgb }
    this.rejected = []; // { name, reason }
    this.run = null; // { name, source, totalSteps, step, history, paused, ... }
  }

  wire() {
    $("tune-files").addEventListener("change", (event) => this.add([...event.target.files]).finally(() => { event.target.value = ""; }));
    $("tune-folder").addEventListener("change", (event) => this.add([...event.target.files]).finally(() => { event.target.value = ""; }));
    const zone = $("tune-drop");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); event.stopPropagation(); zone.dataset.over = "true"; });
    zone.addEventListener("dragleave", () => { zone.dataset.over = "false"; });
    zone.addEventListener("drop", async (event) => {
      event.preventDefault();
      event.stopPropagation();
      zone.dataset.over = "false";
      await this.add(await droppedFiles(event.dataTransfer));
    });
    $("tune-start").addEventListener("click", () => this.start());
    $("tune-pause").addEventListener("click", () => (this.run?.paused ? this.resume() : this.pause()));
    $("tune-keep").addEventListener("click", () => this.keep());
    $("tune-discard").addEventListener("click", () => this.discard());
    $("tune-clear").addEventListener("click", () => { this.pictures = []; this.rejected = []; this.showPictures(); });
    this.showPictures();
    this.showModels();
  }

  status(text, kind = "info") {
    $("tune-status").textContent = text;
    $("tune-status").dataset.kind = kind;
  }

  /// Decodes and checks each file; bad ones are listed with the reason, the rest go on.
  async add(files) {
    const size = this.current().info.model.image_size;
    this.status(`reading ${files.length} file${files.length === 1 ? "" : "s"}…`);
    for (const file of files) {
      const name = file.webkitRelativePath || file.name;
      if (this.pictures.length >= MAX_PICTURES) {
        this.rejected.push({ name, reason: `more than ${MAX_PICTURES} pictures: not used` });
        continue;
      }
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const { rgb } = await this.engine.call("prepare", { bytes, size });
        this.pictures.push({ name, rgb, size });
      } catch (error) {
        this.rejected.push({ name, reason: String(error.message ?? error) });
      }
    }
    this.status("");
    this.showPictures();
  }

  showPictures() {
    const list = $("tune-pictures");
    list.replaceChildren();
    this.pictures.forEach((picture, i) => {
      const item = document.createElement("li");
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = picture.size;
      canvas.getContext("2d").putImageData(rgbToImageData(picture.rgb, picture.size), 0, 0);
      canvas.title = `${picture.name} (centre crop, ${picture.size}×${picture.size}: what training sees)`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `Remove ${picture.name}`);
      remove.disabled = Boolean(this.run);
      remove.addEventListener("click", () => { this.pictures.splice(i, 1); this.showPictures(); });
      item.append(canvas, remove);
      list.append(item);
    });
    const rejected = $("tune-rejected");
    rejected.replaceChildren(...this.rejected.map(({ name, reason }) => {
      const item = document.createElement("li");
      item.textContent = `${name}: ${reason}`;
      return item;
    }));
    const n = this.pictures.length;
    $("tune-count").textContent = n === 0 ? "No pictures yet."
      : `${n} picture${n === 1 ? "" : "s"} ready${n < MIN_PICTURES ? ` (at least ${MIN_PICTURES} needed)` : ""}` +
        (this.rejected.length ? `, ${this.rejected.length} skipped` : "") + ".";
    $("tune-start").disabled = n < MIN_PICTURES || Boolean(this.run);
    $("tune-clear").disabled = Boolean(this.run) || (n === 0 && this.rejected.length === 0);
  }

  pixels() {
    const all = new Uint8Array(this.pictures.reduce((sum, p) => sum + p.rgb.length, 0));
    let offset = 0;
    for (const { rgb } of this.pictures) { all.set(rgb, offset); offset += rgb.length; }
    return all;
  }

  async start() {
    const model = this.current();
    const name = $("tune-name").value.trim() || `${model.name} · mine`;
    const steps = Number($("tune-steps").value) || undefined;
    const learningRate = Number($("tune-lr").value) || undefined;
    const freeze = $("tune-freeze").value === "" ? undefined : Number($("tune-freeze").value);
    $("tune-saved").textContent = "";
    try {
      let discriminator = null;
      if (model.entry?.discriminator) {
        this.status("fetching the model's discriminator (fine-tuning starts from it)…");
        const response = await fetch(`www/models/${model.entry.discriminator}`);
        if (response.ok) discriminator = new Uint8Array(await response.arrayBuffer());
      }
      const pixels = this.pixels();
      const info = await this.engine.call("tuneStart", {
        model: model.bytes.slice(), discriminator, pixels: pixels.slice(), options: { source: model.name, steps, learningRate, freezeD: freeze },
      });
      this.begin({ name, source: model.name, pixels, totalSteps: info.totalSteps, step: 0 });
      this.status(`${info.images} pictures, ${info.totalSteps} steps of ${info.batchSize}, learning rate ${info.learningRate}, ` +
        `${info.frozenLayers} discriminator layer${info.frozenLayers === 1 ? "" : "s"} frozen (FreezeD)` +
        (info.pretrainedDiscriminator ? "." : "; this model has no trained discriminator, so a fresh one learns alongside."));
      await this.drawSamples($("tune-before"));
      await this.save();
      this.loop();
    } catch (error) {
      this.status(`could not start: ${error.message ?? error}`, "error");
      this.run = null;
      this.showRun();
    }
  }

  begin({ name, source, pixels, totalSteps, step }) {
    this.run = { name, source, pixels, totalSteps, step, historyStart: step, history: [], names: [], paused: false,
      perCall: 1, rate: 0, lastSample: 0, lastSave: performance.now(), started: performance.now() };
    $("tune-saved").textContent = "";
    this.showRun();
    this.showPictures();
  }

  /// Starts the training loop; `run.looping` settles once it has stopped, so pausing and
  /// keeping can wait for the step in flight (the worker answers calls out of order).
  loop() {
    const run = this.run;
    // After a quick pause and resume the old loop may still be finishing its step: queue
    // behind it rather than run two loops at once.
    run.looping = (run.looping ?? Promise.resolve()).then(() => this.train(run));
  }

  async train(run) {
    while (run === this.run && !run.paused && run.step < run.totalSteps) {
      const started = performance.now();
      let progress;
      try {
        progress = await this.engine.call("tuneStep", { count: run.perCall });
      } catch (error) {
        if (run !== this.run) return; // discarded meanwhile
        this.status(`training stopped: ${error.message ?? error}. The run was saved at step ${run.saved ?? 0}; reload to resume it.`, "error");
        run.paused = true;
        this.showRun();
        return;
      }
      if (run !== this.run) return; // discarded or kept meanwhile
      const seconds = (performance.now() - started) / 1000;
      const steps = progress.losses.length;
      run.step = progress.step;
      run.names = progress.names;
      run.history.push(...progress.losses);
      // A loss went NaN/Inf: the run went back to its last good copy with lower learning
      // rates; the losses past that step no longer happened.
      if (progress.rolledBackTo != null) {
        run.history.length = Math.max(0, Number(progress.rolledBackTo) - run.historyStart);
        this.status(`a loss became NaN/Inf: rolled back to step ${progress.rolledBackTo} with lower learning rates.`);
      }
      const rate = steps / seconds;
      run.rate = run.rate ? 0.7 * run.rate + 0.3 * rate : rate;
      run.perCall = Math.max(1, Math.min(20, Math.round((CALL_MS / 1000) * run.rate)));
      this.showProgress();
      if (performance.now() - run.lastSample > SAMPLE_EVERY_MS) {
        run.lastSample = performance.now();
        await this.drawSamples($("tune-now")).catch(() => {});
      }
      if (run === this.run && performance.now() - run.lastSave > SAVE_EVERY_MS) await this.save();
    }
    if (run === this.run && run.step >= run.totalSteps) {
      await this.drawSamples($("tune-now"));
      this.status(`done: ${run.step} steps. Keep the model to use it, or discard it.`);
      this.showRun();
    }
  }

  async drawSamples(canvas) {
    const portraits = await this.engine.call("tuneSamples", { seed: SAMPLE_SEED, count: SAMPLE_COUNT });
    drawGrid(canvas, portraits);
    canvas.dataset.step = String(this.run?.step ?? 0);
  }

  /// The run's state into IndexedDB, so a reload can resume it.
  async save() {
    const run = this.run;
    if (!run) return;
    try {
      const { bytes } = await this.engine.call("tuneCheckpoint");
      await saveRun({ name: run.name, source: run.source, state: bytes, pixels: run.pixels,
        totalSteps: run.totalSteps, step: run.step, saved: new Date().toISOString() });
      run.saved = run.step;
      run.lastSave = performance.now();
      $("tune-saved").textContent = `saved at step ${run.step}`;
    } catch (error) {
      $("tune-saved").textContent = `not saved: ${error.message ?? error}`;
    }
  }

  async pause() {
    const run = this.run;
    run.paused = true;
    this.showRun();
    await run.looping;
    if (run !== this.run || !run.paused) return; // resumed meanwhile
    await this.save();
    this.status(`paused at step ${run.step}.`);
  }

  resume() {
    this.run.paused = false;
    this.showRun();
    this.status("");
    this.loop();
  }

  /// Stops and keeps the model: a model file in IndexedDB, listed in the picker.
  async keep() {
    const run = this.run;
    run.paused = true;
    await run.looping;
    if (run !== this.run) return;
    try {
      const { bytes: state } = await this.engine.call("tuneCheckpoint");
      const { bytes } = await this.engine.call("tuneExport", { state, name: run.name });
      await saveModel({ name: run.name, bytes, created: new Date().toISOString(), source: run.source,
        steps: run.step, images: run.pixels.length / (3 * this.current().info.model.image_size ** 2) });
      await this.engine.call("tuneEnd");
      await deleteRun();
      this.run = null;
      this.showRun();
      this.showPictures();
      await this.showModels();
      this.status(`kept as “${run.name}” (${run.step} steps): it is in the model list, stored in this browser only.`);
      await this.onModel(run.name);
    } catch (error) {
      this.status(`could not keep the model: ${error.message ?? error}`, "error");
      run.paused = true;
      this.showRun();
    }
  }

  async discard() {
    if (this.run) this.run.paused = true;
    this.run = null;
    await this.engine.call("tuneEnd").catch(() => {});
    await deleteRun().catch(() => {});
    this.showRun();
    this.showPictures();
    this.status("run discarded.");
  }

  /// After a reload: offers to resume the saved run (or says why it cannot).
  async offerResume() {
    const saved = await getRun().catch(() => undefined);
    if (!saved) return;
    const banner = $("tune-resume");
    banner.hidden = false;
    banner.querySelector("span").textContent =
      `An unfinished fine-tuning run, “${saved.name}”, was saved at step ${saved.step} of ${saved.totalSteps} (${new Date(saved.saved).toLocaleString()}).`;
    banner.querySelector("[data-do=resume]").onclick = async () => {
      banner.hidden = true;
      try {
        await this.engine.call("tuneResume", { state: saved.state.slice(), pixels: saved.pixels.slice(), totalSteps: saved.totalSteps });
        this.begin(saved);
        this.run.saved = saved.step;
        await this.drawSamples($("tune-now"));
        this.status(`resumed at step ${saved.step} (the optimizer's statistics restart).`);
        this.loop();
      } catch (error) {
        this.status(`cannot resume this run: ${error.message ?? error}. Discard it to start again.`, "error");
        banner.hidden = false;
      }
    };
    banner.querySelector("[data-do=discard]").onclick = async () => {
      banner.hidden = true;
      await deleteRun();
      this.status("saved run discarded.");
    };
  }

  showRun() {
    const run = this.run;
    $("tune-live").hidden = !run;
    $("tune-pause").textContent = run?.paused ? "Resume" : "Pause";
    $("tune-pause").disabled = !run || run.step >= run.totalSteps;
    $("tune-keep").disabled = !run;
    $("tune-discard").disabled = !run;
    document.body.dataset.tuning = String(Boolean(run && !run.paused));
    if (run) this.showProgress();
  }

  showProgress() {
    const run = this.run;
    const left = run.totalSteps - run.step;
    const eta = run.rate > 0 ? formatSeconds(left / run.rate) : "…";
    $("tune-progress").max = run.totalSteps;
    $("tune-progress").value = run.step;
    $("tune-numbers").textContent = `step ${run.step} of ${run.totalSteps} · ${run.rate.toFixed(2)} steps/s · ` +
      `${left > 0 ? `about ${eta} left` : "finished"} · ${this.engine.backend.name === "webgpu" ? "WebGPU" : "CPU (slow)"}`;
    $("tune-live").dataset.step = String(run.step);
    drawChart($("tune-chart"), run.names, run.history);
  }

  /// The visitor's models, with export and delete.
  async showModels() {
    const models = await listModels().catch(() => []);
    const list = $("tune-models");
    list.replaceChildren(...models.map((model) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = `${model.name} — from ${model.source}, ${model.images} pictures, ${model.steps} steps, ` +
        `${(model.bytes.length / 1e6).toFixed(1)} MB`;
      const exportButton = document.createElement("button");
      exportButton.type = "button";
      exportButton.textContent = "Export";
      exportButton.addEventListener("click", () => download(model.bytes, `${model.name.replace(/[^\w.-]+/g, "_")}.safetensors`));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Delete";
      remove.addEventListener("click", async () => {
        await deleteModel(model.name);
        await this.showModels();
        await this.onModel(null);
      });
      item.append(label, exportButton, remove);
      return item;
    }));
    $("tune-models-empty").hidden = models.length > 0;
    return models;
  }
}

/// Files from a drop, folders walked recursively.
async function droppedFiles(transfer) {
  const entries = [...(transfer?.items ?? [])].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length === 0) return [...(transfer?.files ?? [])];
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child);
      }
    }
  };
  for (const entry of entries) await walk(entry);
  return files;
}

function rgbToImageData(rgb, size) {
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i];
    rgba[j + 1] = rgb[i + 1];
    rgba[j + 2] = rgb[i + 2];
    rgba[j + 3] = 255;
  }
  return new ImageData(rgba, size, size);
}

const COLOURS = ["#e0a458", "#7fb3d5", "#9ad19a", "#d98fb0"];

/// Each loss term over the steps so far, smoothed (running mean of 10), one colour per term.
function drawChart(canvas, names, history) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  if (history.length < 2) return;
  const terms = names.map((name, k) => ({ name, values: smooth(history.map((row) => row[k]), 10) }))
    .filter(({ name }) => name === "d_loss" || name === "g_loss" || name === "loss");
  const all = terms.flatMap((t) => t.values).filter(Number.isFinite);
  const [low, high] = [Math.min(...all), Math.max(...all)];
  const y = (v) => height - 14 - ((v - low) / (high - low || 1)) * (height - 24);
  const x = (i) => (i / (history.length - 1)) * (width - 4) + 2;
  terms.forEach(({ name, values }, k) => {
    context.strokeStyle = COLOURS[k % COLOURS.length];
    context.beginPath();
    values.forEach((v, i) => (i ? context.lineTo(x(i), y(v)) : context.moveTo(x(i), y(v))));
    context.stroke();
    context.fillStyle = COLOURS[k % COLOURS.length];
    context.font = "11px system-ui";
    context.fillText(`${name} ${values.at(-1).toFixed(2)}`, 4 + k * 90, height - 2);
  });
}

function smooth(values, window) {
  return values.map((_, i) => {
    const part = values.slice(Math.max(0, i - window + 1), i + 1).filter(Number.isFinite);
    return part.reduce((a, b) => a + b, 0) / (part.length || 1);
  });
}

function formatSeconds(seconds) {
  if (!Number.isFinite(seconds)) return "…";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}

function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
