// The page in a real headless Chromium (Debian's, driven by playwright-core): it starts, picks
// a backend and says which, and draws non-blank portraits, on WebGPU and on the CPU fallback,
// without a single request leaving its origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";

const DIST = resolve(import.meta.dirname, "../../dist");
const SHOTS = resolve(process.env.CARGO_TARGET_DIR ?? "/tmp", "e2e-screenshots");
const TARGET = process.env.CARGO_TARGET_DIR ?? resolve(import.meta.dirname, "../../target");
const RETRATO = process.env.RETRATO_BIN ?? resolve(TARGET, "release/retrato");
const MODEL = resolve(DIST, "www/models/random-dcgan-64.safetensors");
const TIMEOUT = 180_000; // the CPU fallback in wasm on 2 cores is slow, and CI is noisy

// Flags for a closed network and a root user; WebGPU (SwiftShader) only with the unsafe flag.
const BASE_FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

let server;
before(async () => {
  server = await serve(DIST);
  mkdirSync(SHOTS, { recursive: true });
});
after(async () => server?.close());

async function openPage({ webgpu, query = "" }) {
  const args = [...BASE_FLAGS, ...(webgpu ? ["--enable-unsafe-webgpu", "--enable-features=Vulkan"] : ["--disable-gpu"])];
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args });
  const page = await browser.newPage();
  const errors = [];
  const foreign = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("request", (request) => {
    if (!request.url().startsWith(server.url) && !request.url().startsWith("data:") && !request.url().startsWith("blob:")) {
      foreign.push(request.url());
    }
  });
  // The untrained placeholder: its card and its portraits are known (the CLI makes it).
  await page.goto(`${server.url}${query}#model=random-dcgan-64.safetensors`);
  return { browser, page, errors, foreign };
}

/// Waits for the 16-portrait grid and returns pixel statistics of the canvas.
async function waitForPortraits(page) {
  await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "16", null, { timeout: TIMEOUT });
  return page.evaluate(() => {
    const canvas = document.getElementById("grid");
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0, sumSquares = 0, distinct = new Set();
    for (let i = 0; i < data.length; i += 4) {
      const v = data[i] + data[i + 1] + data[i + 2];
      sum += v; sumSquares += v * v; distinct.add(v);
    }
    const n = data.length / 4;
    return { width: canvas.width, height: canvas.height, std: Math.sqrt(sumSquares / n - (sum / n) ** 2),
      distinct: distinct.size, pixels: Array.from(data) };
  });
}

async function portraitsAppear({ webgpu, query, badge, shot }) {
  const { browser, page, errors, foreign } = await openPage({ webgpu, query });
  try {
    const stats = await waitForPortraits(page);
    await page.screenshot({ path: resolve(SHOTS, shot) });
    assert.equal(stats.width, 4 * 66 + 2, "a 4x4 grid of 64px portraits");
    assert.ok(stats.std > 10 && stats.distinct > 50, `portraits are not blank: std ${stats.std}, ${stats.distinct} colours`);
    assert.equal(await page.getAttribute("#backend", "data-state"), badge);
    assert.match(await page.textContent("#card"), /DCGAN, 64×64, trained on none \(random init\) \(0 steps\), FID not measured/, "the model card is read from the file header");
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "no request leaves the page's origin");
    return stats;
  } finally {
    await browser.close();
  }
}

test("without WebGPU the page falls back to the CPU and says why", { timeout: TIMEOUT * 2 }, async () => {
  const { browser, page } = await openPage({ webgpu: false });
  try {
    await waitForPortraits(page);
    assert.equal(await page.getAttribute("#backend", "data-state"), "cpu");
    assert.match(await page.getAttribute("#backend", "title"), /WebGPU unavailable/);
  } finally {
    await browser.close();
  }
});

test("a software-only WebGPU adapter (SwiftShader) is passed over for the faster CPU path", { timeout: TIMEOUT * 2 }, async () => {
  const { browser, page } = await openPage({ webgpu: true });
  try {
    await waitForPortraits(page);
    assert.equal(await page.getAttribute("#backend", "data-state"), "cpu");
    assert.match(await page.getAttribute("#backend", "title"), /software fallback \(.*swiftshader.*\), slower than the CPU path/i);
  } finally {
    await browser.close();
  }
});

/// Portraits 0..16 of seed 0 from the native CLI (`retrato sample --raw`), as 8-bit RGB the way
/// the page quantizes them: floor(((v + 1) / 2) * 255 + 0.5).
function nativePortraits() {
  const out = resolve(mkdtempSync(resolve(tmpdir(), "retrato-e2e-")), "raw.npy");
  execFileSync(RETRATO, ["sample", "--model", MODEL, "--n", "16", "--seed", "0", "--raw", out]);
  const bytes = readFileSync(out);
  const headerLength = bytes.readUInt16LE(8);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length));
  return Array.from(values, (v) => Math.min(255, Math.max(0, Math.floor(Math.min(1, Math.max(0, (v + 1) / 2)) * 255 + 0.5))));
}

/// Largest and mean difference between the page's grid and the native portraits.
function compareWithNative(stats, native) {
  let worst = 0, total = 0;
  for (let i = 0; i < 16; i++) {
    const [x0, y0] = [2 + (i % 4) * 66, 2 + Math.floor(i / 4) * 66];
    for (let c = 0; c < 3; c++) for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) {
      const page = stats.pixels[((y0 + y) * stats.width + x0 + x) * 4 + c];
      const cli = native[((i * 3 + c) * 64 + y) * 64 + x];
      worst = Math.max(worst, Math.abs(page - cli));
      total += Math.abs(page - cli);
    }
  }
  return { worst, mean: total / (16 * 3 * 64 * 64) };
}

test("portraits appear on WebGPU, and both backends match the native CLI for the same seed", { timeout: TIMEOUT * 3 }, async () => {
  const native = nativePortraits();
  const gpu = compareWithNative(await portraitsAppear({ webgpu: true, query: "?backend=webgpu", badge: "webgpu", shot: "webgpu.png" }), native);
  const cpu = compareWithNative(await portraitsAppear({ webgpu: false, query: "?backend=cpu", badge: "cpu", shot: "cpu-again.png" }), native);
  // Same weights, same latents: only float rounding may differ (a level or two of 255).
  assert.ok(cpu.worst <= 2, `CPU wasm vs native: ${JSON.stringify(cpu)}`);
  assert.ok(gpu.worst <= 3 && gpu.mean < 0.5, `WebGPU vs native: ${JSON.stringify(gpu)}`);
});

/// Clicks Generate and waits for that render to finish; returns the grid's pixels.
async function renderAgain(page) {
  const before = await page.evaluate(() => performance.getEntriesByName("retrato:render").length);
  await page.click("#generate");
  await page.waitForFunction((n) => performance.getEntriesByName("retrato:render").length > n
    && document.body.dataset.busy === "false", before, { timeout: TIMEOUT });
  return waitForPortraits(page);
}

test("the CPU build draws first, the WebGPU build takes over, and a lost GPU falls back to the CPU", { timeout: TIMEOUT * 3 }, async () => {
  const native = nativePortraits();
  // ?backend=any: the page's automatic path, with SwiftShader counted as a GPU.
  const { browser, page, errors, foreign } = await openPage({ webgpu: true, query: "?backend=any" });
  try {
    await waitForPortraits(page);
    await page.waitForFunction(() => document.getElementById("backend").dataset.state === "webgpu", null, { timeout: TIMEOUT });
    // The WebGPU build (a large compile) starts only once the CPU build answered the first
    // portraits, so it never competes with them for a loaded machine's cores.
    const [answered, gpuStart] = await page.evaluate(() => ["retrato:first-draw-answered", "retrato:webgpu-build-start"]
      .map((name) => performance.getEntriesByName(name)[0]?.startTime));
    assert.ok(answered !== undefined && gpuStart >= answered, `first portraits at ${answered} ms, WebGPU build from ${gpuStart} ms`);
    const onGpu = await renderAgain(page);
    assert.match(await page.textContent("#timing"), /WebGPU/);
    const gpu = compareWithNative(onGpu, native);
    assert.ok(gpu.worst <= 3, `WebGPU build after the switch vs native: ${JSON.stringify(gpu)}`);
    const builds = await Promise.all(page.workers().map((w) => w.evaluate(() => self.retratoBuild).catch(() => "gone")));
    assert.deepEqual(builds.filter((b) => b === "cpu" || b === "gpu"), ["gpu"], "the CPU worker is gone after the switch");

    // The GPU goes away: every message to its worker now throws, as a lost device does.
    const gpuWorker = page.workers()[builds.indexOf("gpu")];
    await gpuWorker.evaluate(() => { self.onmessage = () => { throw new Error("GPU device lost (simulated by the test)"); }; });
    const after = compareWithNative(await renderAgain(page), native);
    assert.equal(await page.getAttribute("#backend", "data-state"), "cpu");
    assert.match(await page.getAttribute("#backend", "title"), /GPU stopped responding .*device lost.*: switched to CPU/);
    assert.ok(after.worst <= 2, `after the GPU loss, CPU vs native: ${JSON.stringify(after)}`);
    await page.screenshot({ path: resolve(SHOTS, "gpu-lost.png") });
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "no request leaves the page's origin");
  } finally {
    await browser.close();
  }
});
