// The main thread's handle on the model worker: promise-based calls, and recovery when the
// GPU goes away (a lost device, a crashed worker): a fresh worker on the CPU, the current
// model reloaded, the call retried, and the page told why.

export class Engine {
  constructor({ onBackend }) {
    this.onBackend = onBackend;
    this.nextId = 0;
    this.pending = new Map();
    this.modelBytes = null;
  }

  /// Starts a worker and its backend: "auto" (a hardware WebGPU adapter, else the CPU),
  /// "webgpu" (any adapter) or "cpu".
  async start(backend = "auto") {
    this.worker?.terminate();
    for (const { reject } of this.pending.values()) reject(new Error("the model worker restarted"));
    this.pending.clear();
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      this.pending.delete(data.id);
      if (data.ok) call.resolve({ ...data.result, ms: data.ms });
      else call.reject(new Error(data.error));
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      for (const { reject } of this.pending.values()) reject(new Error(`the model worker crashed: ${event.message}`));
      this.pending.clear();
    };
    this.backend = await this.call("start", { backend });
    this.onBackend(this.backend);
    return this.backend;
  }

  call(op, args = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  /// Validates and loads a model file; the previous model stays if this one is refused.
  async load(bytes) {
    const info = await this.call("load", { bytes: bytes.slice() });
    this.modelBytes = bytes;
    return info;
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
