// Fine-tuning in the page, in a real headless Chromium: pictures dropped in (two bad files
// rejected with the reason), training with live progress, pause and resume, a reload that
// resumes from the saved state, the result kept in IndexedDB and exported as a file that the
// native CLI loads and draws exactly as the page does; and not one request off the origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";

const DIST = resolve(import.meta.dirname, "../../dist");
const SHOTS = resolve(process.env.CARGO_TARGET_DIR ?? "/tmp", "e2e-screenshots");
const TARGET = process.env.CARGO_TARGET_DIR ?? resolve(import.meta.dirname, "../../target");
const RETRATO = process.env.RETRATO_BIN ?? resolve(TARGET, "release/retrato");
const TIMEOUT = 240_000;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

let server, work, tiny;
before(async () => {
  server = await serve(DIST);
  mkdirSync(SHOTS, { recursive: true });
  work = mkdtempSync(resolve(tmpdir(), "retrato-tune-"));
  // A small 32×32 DCGAN with its discriminator, so that training steps are quick everywhere.
  tiny = resolve(work, "tiny.safetensors");
  execFileSync(RETRATO, ["init", "--family", "dcgan", "--image-size", "32", "--width", "8", "--latent-dim", "16",
    "--with-discriminator", "--seed", "3", "--out", tiny]);
});
after(async () => server?.close());

/// A PNG of `width`×`height` RGB pixels from `pixel(x, y)` (zlib from node, CRCs by hand).
function png(width, height, pixel) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);
    for (let x = 0; x < width; x++) rows.push(...pixel(x, y));
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.from(rows))), chunk("IEND", Buffer.alloc(0))]);
}

function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/// 20 "portraits" (a warm disc on a coloured ground, non-square so the crop matters), one
/// empty file and one that is not an image.
function pictures() {
  const files = [];
  for (let i = 0; i < 20; i++) {
    const ground = [(i * 53) % 200, (i * 97) % 200, (i * 31) % 200];
    files.push({ name: `face-${i}.png`, mimeType: "image/png", buffer: png(40, 52, (x, y) => {
      const inside = (x - 20) ** 2 + (y - 24 - (i % 5)) ** 2 < 150;
      return inside ? [230, 170 + (i % 3) * 20, 140] : ground;
    }) });
  }
  files.push({ name: "empty.png", mimeType: "image/png", buffer: Buffer.alloc(0) });
  files.push({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture") });
  return files;
}

async function open(browser, query) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  const foreign = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  context.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(server.url) && !url.startsWith("data:") && !url.startsWith("blob:")) foreign.push(url);
  });
  await page.goto(`${server.url}${query}#model=random-dcgan-64.safetensors`);
  await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "16", null, { timeout: TIMEOUT });
  await page.setInputFiles("#file", tiny);
  await page.waitForFunction(() => /32×32/.test(document.getElementById("card").textContent), null, { timeout: TIMEOUT });
  return { context, page, errors, foreign };
}

const step = (page) => page.evaluate(() => Number(document.getElementById("tune-live").dataset.step ?? -1));

async function waitForStep(page, atLeast) {
  await page.waitForFunction((n) => Number(document.getElementById("tune-live").dataset.step) >= n, atLeast, { timeout: TIMEOUT });
}

const canvasPixels = (page, id) => page.evaluate((id) => {
  const canvas = document.getElementById(id);
  return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
}, id);

/// Portraits 0..16 of seed 0 from the native CLI, quantized like the page.
function nativePortraits(model, size) {
  const out = resolve(mkdtempSync(resolve(tmpdir(), "retrato-tune-raw-")), "raw.npy");
  execFileSync(RETRATO, ["sample", "--model", model, "--n", "16", "--seed", "0", "--raw", out]);
  const bytes = readFileSync(out);
  const headerLength = bytes.readUInt16LE(8);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length));
  return { size, values: Array.from(values, (v) => Math.floor(Math.min(1, Math.max(0, (v + 1) / 2)) * 255 + 0.5)) };
}

function worstDifference(gridPixels, native) {
  const { size, values } = native;
  const width = 4 * (size + 2) + 2;
  let worst = 0;
  for (let i = 0; i < 16; i++) {
    const [x0, y0] = [2 + (i % 4) * (size + 2), 2 + Math.floor(i / 4) * (size + 2)];
    for (let c = 0; c < 3; c++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      const page = gridPixels[((y0 + y) * width + x0 + x) * 4 + c];
      worst = Math.max(worst, Math.abs(page - values[((i * 3 + c) * size + y) * size + x]));
    }
  }
  return worst;
}

async function fineTuneFlow({ webgpu, query, shot }) {
  const args = [...FLAGS, ...(webgpu ? ["--enable-unsafe-webgpu", "--enable-features=Vulkan"] : ["--disable-gpu"])];
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args });
  try {
    const { page, errors, foreign } = await open(browser, query);
    await page.setInputFiles("#tune-files", pictures());
    await page.waitForFunction(() => /20 pictures ready, 2 skipped/.test(document.getElementById("tune-count").textContent), null, { timeout: TIMEOUT });
    const rejected = await page.$$eval("#tune-rejected li", (items) => items.map((i) => i.textContent));
    assert.equal(rejected.length, 2);
    assert.match(rejected[0], /^empty\.png: empty file/);
    assert.match(rejected[1], /^notes\.txt: not an image/);
    assert.equal(await page.locator("#tune-pictures canvas").count(), 20, "a thumbnail per usable picture");

    await page.fill("#tune-name", "e2e tuned");
    await page.fill("#tune-steps", "60");
    await page.click("#tune-start");
    await page.waitForFunction(() => document.getElementById("tune-before").dataset.step === "0", null, { timeout: TIMEOUT });
    const before = await canvasPixels(page, "tune-before");
    await waitForStep(page, 2);
    await page.click("#tune-pause");
    await page.waitForFunction(() => /paused at step/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    const paused = await step(page);
    await page.waitForTimeout(1500);
    assert.equal(await step(page), paused, "a paused run does not advance");
    await page.click("#tune-pause");
    await waitForStep(page, 60);
    await page.waitForFunction(() => /^done: 60 steps/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("#tune-numbers"), /step 60 of 60 · [\d.]+ steps\/s/);
    const after = await canvasPixels(page, "tune-now");
    assert.notDeepEqual(after, before, "the fixed-seed portraits changed");
    await page.screenshot({ path: resolve(SHOTS, shot), fullPage: true });

    await page.click("#tune-keep");
    await page.waitForFunction(() => /kept as “e2e tuned”/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    await page.waitForFunction(() => document.getElementById("model").value === "mine:e2e tuned" && document.getElementById("grid").dataset.drawn === "16"
      && document.body.dataset.busy === "false", null, { timeout: TIMEOUT });
    assert.match(await page.textContent("#card"), /fine-tuned in the browser from tiny\.safetensors on 20 pictures/);
    const grid = await canvasPixels(page, "grid");

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#tune-models button:has-text('Export')")]);
    const exported = resolve(work, `exported-${webgpu ? "gpu" : "cpu"}.safetensors`);
    await download.saveAs(exported);
    const worst = worstDifference(grid, nativePortraits(exported, 32));
    assert.ok(worst <= 3, `the exported model draws the same portraits natively (worst difference ${worst}/255)`);

    // Kept across reloads (IndexedDB), and a run saved mid-way can be resumed.
    await page.fill("#tune-name", "second");
    await page.fill("#tune-steps", "400");
    await page.click("#tune-start");
    await page.waitForFunction(() => /saved at step/.test(document.getElementById("tune-saved").textContent)
      || /could not start/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    assert.doesNotMatch(await page.textContent("#tune-status"), /could not start/);
    await page.reload();
    await page.waitForFunction(() => !document.getElementById("tune-resume").hidden, null, { timeout: TIMEOUT })
      .catch(async (error) => {
        const said = await page.evaluate(() => ["status", "tune-status", "card", "model"].map((id) => `${id}: ${document.getElementById(id).textContent || document.getElementById(id).value}`));
        throw new Error(`${error.message}\n${said.join("\n")}\npage errors: ${errors.join("; ")}`);
      });
    assert.match(await page.textContent("#tune-resume"), /“second”, was saved at step \d+ of 400/);
    assert.match(await page.textContent("#tune-models"), /e2e tuned — from tiny\.safetensors, 20 pictures, 60 steps/);
    await page.click("#tune-resume [data-do=resume]");
    await page.waitForFunction(() => /resumed at step/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    const resumedAt = await step(page);
    await waitForStep(page, resumedAt + 2);
    await page.click("#tune-discard");
    await page.waitForFunction(() => document.getElementById("tune-live").hidden, null, { timeout: TIMEOUT });

    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "no request leaves the page's origin while uploading and training");
  } finally {
    await browser.close();
  }
}

test("fine-tune on the CPU fallback: upload, train, pause, keep, export, resume after reload", { timeout: TIMEOUT * 4 }, async () => {
  await fineTuneFlow({ webgpu: false, query: "?backend=cpu", shot: "finetune-cpu.png" });
});

test("fine-tune on WebGPU (SwiftShader)", { timeout: TIMEOUT * 4 }, async () => {
  await fineTuneFlow({ webgpu: true, query: "?backend=webgpu", shot: "finetune-webgpu.png" });
});
