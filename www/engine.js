// The main thread's handle on the model worker: promise-based calls; the small CPU build first
// and, where a hardware GPU is offered, the WebGPU build started in the background once the
// first portraits are on screen, loaded with the current model there, and switched to only
// when it holds that model and the CPU worker is idle (so the WebGPU build's compile and load
// never delay a portrait, even on a loaded machine); and recovery when the GPU goes away (a
// lost device, a crashed worker): a fresh worker on the CPU, the current model reloaded, the
// call retried, and the page told why.

/// Calls that leave state in the worker (a fine-tuning run, an open photo): no switch of worker
/// until it ends. Each op names what it holds there and whether it takes or ends it.
const PINS = {
  tuneStart: ["tune", true], tuneResume: ["tune", true], tuneEnd: ["tune", false],
  invertStart: ["invert", true], invertEnd: ["invert", false],
};
/// Calls that put portraits on screen: the first one starts the WebGPU build.
const DRAWS = new Set(["generate", "variations", "interpolate", "draw"]);

export class Engine {
  constructor({ onBackend }) {
    this.onBackend = onBackend;
    this.nextId = 0;
    this.pending = new Map(); // id → { resolve, reject, worker }
    this.modelBytes = null;
    this.pins = new Set(); // what the worker holds or is doing: "tune", "invert", "load"
    this.generation = 0; // counts start()s, so a late WebGPU worker of an earlier one is dropped
    this.upgrade = null; // a started WebGPU worker waiting to take over: { worker, backend, holds, loading }
    this.deferredUpgrade = null; // starts the WebGPU build after the first portraits
  }

  /// Starts the model worker: "auto" (the CPU build at once; the WebGPU build in the
  /// background when a hardware adapter is offered, taking over when ready), "any" (the same,
  /// counting a software adapter too), "webgpu" (the WebGPU build at once, on any adapter) or
  /// "cpu".
  async start(backend = "auto") {
    const generation = ++this.generation;
    this.drop(this.upgrade?.worker);
    this.upgrade = null;
    this.deferredUpgrade = null;
    const old = this.worker;
    this.worker = this.spawn();
    this.drop(old, new Error("the model worker restarted"));
    this.pins.clear();
    // The library's own names: "webgpu" accepts a software adapter, "auto" does not.
    const choice = backend === "any" ? "webgpu" : backend;
    const build = backend === "webgpu" ? "gpu" : "cpu";
    this.backend = await this.callOn(this.worker, "start", { backend: choice, build });
    this.onBackend(this.backend);
    if (build === "cpu" && this.backend.webgpu_available) {
      this.deferredUpgrade = () => this.prepareUpgrade(generation, choice);
    }
    return this.backend;
  }

  /// The WebGPU build in a second worker, loaded with the current model in the background; it
  /// takes over when it holds that model and the current worker is idle.
  async prepareUpgrade(generation, choice) {
    performance.mark("retrato:webgpu-build-start"); // for the browser tests
    const worker = this.spawn();
    try {
      const backend = await this.callOn(worker, "start", { backend: choice, build: "gpu" });
      if (backend.name !== "webgpu") throw new Error(backend.reason);
      if (generation !== this.generation) return this.drop(worker); // restarted meanwhile
      this.upgrade = { worker, backend, holds: null, loading: null };
      this.adoptUpgrade();
    } catch (error) {
      this.drop(worker);
      if (generation !== this.generation) return undefined;
      this.onBackend({ ...this.backend, reason: `WebGPU did not start (${error.message ?? error}): running on CPU` });
    }
    return undefined;
  }

  /// Loads the current model into the waiting WebGPU worker (again, if the page loaded another
  /// meanwhile), then tries the switch.
  syncUpgrade(next) {
    next.loading ??= (async () => {
      while (this.upgrade === next && this.modelBytes && next.holds !== this.modelBytes) {
        const bytes = this.modelBytes;
        await this.callOn(next.worker, "load", { bytes: bytes.slice() });
        next.holds = bytes;
      }
    })().then(
      () => { next.loading = null; this.adoptUpgrade(); },
      (error) => {
        if (this.upgrade !== next) return;
        this.upgrade = null;
        this.drop(next.worker);
        this.onBackend({ ...this.backend, reason: `WebGPU could not load the model (${error.message ?? error}): running on CPU` });
      },
    );
  }

  /// Switches to the waiting WebGPU worker when it holds the current model and the current
  /// worker is idle and holds no fine-tuning run or photo: never waits, never shows an empty
  /// page. Until then every call goes to the current worker.
  adoptUpgrade() {
    const next = this.upgrade;
    if (!next || !this.modelBytes) return;
    if (next.holds !== this.modelBytes) return this.syncUpgrade(next);
    if (this.pins.size || this.busy()) return;
    this.upgrade = null;
    const old = this.worker;
    this.worker = next.worker;
    this.backend = next.backend;
    this.retire(old);
    this.onBackend(this.backend);
  }

  /// Whether the current worker has calls in flight.
  busy() {
    return this.hasPending(this.worker);
  }

  hasPending(worker) {
    return [...this.pending.values()].some((call) => call.worker === worker);
  }

  spawn() {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      this.pending.delete(data.id);
      if (data.ok) call.resolve({ ...data.result, ms: data.ms });
      else call.reject(new Error(data.error));
      if (worker.retired && !this.hasPending(worker)) worker.terminate();
      if (worker === this.worker && this.upgrade) this.adoptUpgrade();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.drop(worker, new Error(`the model worker crashed: ${event.message}`), false);
    };
    return worker;
  }

  /// Rejects a worker's unanswered calls; terminates it unless told to keep it.
  drop(worker, error = new Error("the model worker stopped"), terminate = true) {
    if (!worker) return;
    for (const [id, call] of this.pending) {
      if (call.worker !== worker) continue;
      this.pending.delete(id);
      call.reject(error);
    }
    if (terminate) worker.terminate();
  }

  /// A worker that was replaced answers what it was asked, then goes.
  retire(worker) {
    worker.retired = true;
    if (!this.hasPending(worker)) worker.terminate();
  }

  callOn(worker, op, args = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      worker.postMessage({ id, op, args });
    });
  }

  async call(op, args = {}) {
    this.adoptUpgrade();
    if (op in PINS) {
      const [what, held] = PINS[op];
      if (held) this.pins.add(what);
      else this.pins.delete(what);
    }
    const result = await this.callOn(this.worker, op, args);
    if (this.deferredUpgrade && DRAWS.has(op)) {
      performance.mark("retrato:first-draw-answered");
      const startUpgrade = this.deferredUpgrade;
      this.deferredUpgrade = null;
      startUpgrade();
    }
    return result;
  }

  /// Validates and loads a model file; the previous model stays if this one is refused. No
  /// switch of worker while it loads (the waiting one would hold the previous model).
  async load(bytes) {
    this.pins.add("load");
    try {
      const info = await this.call("load", { bytes: bytes.slice() });
      this.modelBytes = bytes;
      return info;
    } finally {
      this.pins.delete("load");
      this.adoptUpgrade();
    }
  }

  /// Runs `op`; if the GPU fails underneath it, moves to the CPU and tries once more.
  async run(op, args) {
    try {
      return await this.call(op, args);
    } catch (error) {
      if (this.backend?.name !== "webgpu" || !looksLikeGpuLoss(error)) throw error;
      await this.start("cpu");
      this.backend = { ...this.backend, reason: `The GPU stopped responding (${error.message}): switched to CPU` };
      this.onBackend(this.backend);
      if (this.modelBytes) await this.call("load", { bytes: this.modelBytes.slice() });
      return this.call(op, args);
    }
  }
}

/// Errors that mean the GPU side broke, not that the request was bad.
function looksLikeGpuLoss(error) {
  return /crash|unreachable|device|lost|gpu|wgpu|panicked/i.test(String(error.message ?? error));
}
