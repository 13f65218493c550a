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
import { chromium } from "playwright-core";
import { serve, watchPage } from "./server.mjs";
import { pictures } from "./pictures.mjs";

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

async function open(browser, query) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const { errors, foreign } = watchPage(context, page, server.url);
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

async function fineTuneFlow({ webgpu, query, shot, steps }) {
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
    await page.fill("#tune-steps", String(steps));
    if (!webgpu) {
      // The recipe's two knobs: learning rate and FreezeD depth.
      await page.click(".advanced summary");
      await page.fill("#tune-lr", "1e-4");
      await page.fill("#tune-freeze", "1");
    }
    await page.click("#tune-start");
    await page.waitForFunction(() => /steps of \d+, learning rate/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("#tune-status"), webgpu ? /learning rate 0\.00002, 2 discriminator layers frozen/
      : /learning rate 0\.0001, 1 discriminator layer frozen/);
    await page.waitForFunction(() => document.getElementById("tune-before").dataset.step === "0", null, { timeout: TIMEOUT });
    const before = await canvasPixels(page, "tune-before");
    await waitForStep(page, 2);
    await page.click("#tune-pause");
    await page.waitForFunction(() => /paused at step/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    const paused = await step(page);
    assert.equal(await page.textContent("#tune-saved"), `saved at step ${paused}`, "pausing saves the run at the step it shows");
    await page.waitForTimeout(1500);
    assert.equal(await step(page), paused, "a paused run does not advance");
    await page.click("#tune-pause");
    await waitForStep(page, steps);
    await page.waitForFunction((n) => new RegExp(`^done: ${n} steps`).test(document.getElementById("tune-status").textContent), steps, { timeout: TIMEOUT });
    assert.match(await page.textContent("#tune-numbers"), new RegExp(`step ${steps} of ${steps} · [\\d.]+ steps/s`));
    const after = await canvasPixels(page, "tune-now");
    assert.notDeepEqual(after, before, "the fixed-seed portraits changed");
    await page.screenshot({ path: resolve(SHOTS, shot), fullPage: true });

    await page.click("#tune-keep");
    await page.waitForFunction(() => /kept as “e2e tuned”/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
    await page.waitForFunction(() => document.getElementById("model").value === "mine:e2e tuned" && document.getElementById("grid").dataset.drawn === "16"
      && document.body.dataset.busy === "false", null, { timeout: TIMEOUT });
    assert.match(await page.textContent("#card"), /Fine-tuned from tiny\.safetensors in the browser on 20 pictures/);
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
    assert.match(await page.textContent("#tune-models"), new RegExp(`e2e tuned — from tiny\\.safetensors, 20 pictures, ${steps} steps`));
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
  await fineTuneFlow({ webgpu: false, query: "?backend=cpu", shot: "finetune-cpu.png", steps: 60 });
});

// SwiftShader runs WebGPU on the CPU, far slower than the wasm CPU path: fewer steps.
test("fine-tune on WebGPU (SwiftShader): the same flow, the export matching the native CLI", { timeout: TIMEOUT * 4 }, async () => {
  await fineTuneFlow({ webgpu: true, query: "?backend=webgpu", shot: "finetune-webgpu.png", steps: 12 });
});
