// The visitor's own models and an unfinished fine-tuning run, kept in IndexedDB so they
// survive reloads. Nothing here is ever sent anywhere.
const DB = "retrato";
const MODELS = "models"; // name → { name, bytes, created, source, steps, images }
const RUNS = "runs"; // "current" → { name, source, state, pixels, totalSteps, step, saved }

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(MODELS, { keyPath: "name" });
      request.result.createObjectStore(RUNS);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transaction(store, mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const request = work(tx.objectStore(store));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error ?? request?.error);
      tx.onabort = () => reject(tx.error ?? new Error("storage transaction aborted"));
    });
  } finally {
    db.close();
  }
}

/// Turns a quota error into a sentence a person can act on.
function explain(error) {
  if (error?.name === "QuotaExceededError") {
    return new Error("the browser has no storage space left for it (free some, or export the model instead)");
  }
  return error instanceof Error ? error : new Error(String(error));
}

export async function listModels() {
  const all = await transaction(MODELS, "readonly", (s) => s.getAll());
  return (all ?? []).sort((a, b) => a.created.localeCompare(b.created));
}

export const getModel = (name) => transaction(MODELS, "readonly", (s) => s.get(name));
export const saveModel = (model) => transaction(MODELS, "readwrite", (s) => s.put(model)).catch((e) => { throw explain(e); });
export const deleteModel = (name) => transaction(MODELS, "readwrite", (s) => s.delete(name));

export const getRun = () => transaction(RUNS, "readonly", (s) => s.get("current"));
export const saveRun = (run) => transaction(RUNS, "readwrite", (s) => s.put(run, "current")).catch((e) => { throw explain(e); });
export const deleteRun = () => transaction(RUNS, "readwrite", (s) => s.delete("current"));
