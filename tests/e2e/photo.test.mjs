// "Use my photo" in a real headless Chromium (the CPU build): bad photos get their reason and
// the page keeps working, the square follows the pointer, a portrait the model drew is found
// again and agrees with `retrato invert` on the same picture and seed, the result is varied,
// morphed, shared by a link that carries its latent and no photo, and drawn in a related
// model; no request leaves the origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve, watchPage } from "./server.mjs";
import { png } from "./pictures.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const DIST = resolve(ROOT, "dist");
const SHOTS = resolve(process.env.CARGO_TARGET_DIR ?? "/tmp", "e2e-screenshots");
const TARGET = process.env.CARGO_TARGET_DIR ?? resolve(ROOT, "target");
const RETRATO = process.env.RETRATO_BIN ?? resolve(TARGET, "release/retrato");
const MODELS = resolve(ROOT, "www/models");
const TIMEOUT = 300_000;
const STEPS = 40;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--disable-gpu"];
// The page and the CLI run the same search in wasm and natively: float sums in another order
// make them drift apart a little over the steps, never to another face.
const LATENT_TOLERANCE = 0.02; // largest |difference| of a latent value after STEPS steps (4e-3 measured)

let server, browser, portrait;
before(async () => {
  server = await serve(DIST);
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: FLAGS });
  // The photo: a portrait the real-face model drew itself (so a close match exists).
  const dir = mkdtempSync(join(tmpdir(), "retrato-photo-"));
  execFileSync(RETRATO, ["sample", "--model", resolve(MODELS, "celeba-64.safetensors"), "--seed", "21", "--n", "1", "--each", dir]);
  portrait = join(dir, readdirSync(dir).find((name) => name.endsWith(".png")));
});
after(async () => { await browser?.close(); await server?.close(); });

async function open(hash) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const { errors, foreign } = watchPage(context, page, server.url);
  await page.goto(`${server.url}${hash}`);
  await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "16", null, { timeout: TIMEOUT });
  return { context, page, errors, foreign };
}

async function photoStatus(page, pattern) {
  await page.waitForFunction((source) => new RegExp(source).test(document.getElementById("photo-status").textContent),
    pattern.source, { timeout: TIMEOUT });
  return page.textContent("#photo-status");
}

async function pixels(page, id) {
  return page.evaluate((id) => {
    const canvas = document.getElementById(id);
    return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
  }, id);
}

/// A float32 .npy's values.
function readNpy(path) {
  const bytes = readFileSync(path);
  const headerLength = bytes.readUInt16LE(8);
  const data = bytes.subarray(10 + headerLength);
  return Array.from(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)));
}

function latentOf(url) {
  const z = new URLSearchParams(new URL(url).hash.slice(1)).get("z");
  const binary = Buffer.from(z.replaceAll("-", "+").replaceAll("_", "/"), "base64");
  return Array.from(new Float32Array(binary.buffer.slice(binary.byteOffset, binary.byteOffset + binary.length)));
}

test("bad photos get their reason, the square follows the pointer, and the page keeps working", { timeout: TIMEOUT * 2 }, async () => {
  const { context, page, errors, foreign } = await open("#model=celeba-64.safetensors&n=16");
  try {
    await page.setInputFiles("#photo-file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture") });
    assert.match(await photoStatus(page, /^notes\.txt: /), /^notes\.txt: not an image/);
    await page.setInputFiles("#photo-file", { name: "tiny.png", mimeType: "image/png", buffer: png(12, 12, (x, y) => [x * 20, y * 20, 90]) });
    await photoStatus(page, /^tiny\.png: 12×12/);
    await page.click("#photo-start");
    assert.match(await photoStatus(page, /^tiny\.png: .*pixels across/), /only 12 pixels across/);
    await page.setInputFiles("#photo-file", { name: "wall.png", mimeType: "image/png", buffer: png(100, 80, () => [120, 130, 140]) });
    await photoStatus(page, /^wall\.png: 100×80/);
    await page.click("#photo-start");
    assert.match(await photoStatus(page, /^wall\.png: .*flat/), /flat area, no face/);

    // A wide photo: the square starts centred and follows a drag, kept inside the picture.
    await page.setInputFiles("#photo-file", { name: "wide.png", mimeType: "image/png",
      buffer: png(300, 120, (x, y) => [(x * 7) % 256, (y * 5) % 256, (x + y) % 256]) });
    await photoStatus(page, /^wide\.png: 300×120/);
    assert.equal(await page.getAttribute("#photo-canvas", "data-square"), "90,0,120");
    const box = await page.locator("#photo-canvas").boundingBox();
    const scale = box.width / 300;
    await page.mouse.move(box.x + 150 * scale, box.y + 60 * scale);
    await page.mouse.down();
    await page.mouse.move(box.x + 100 * scale, box.y + 60 * scale, { steps: 4 });
    await page.mouse.move(box.x - 50 * scale, box.y + 60 * scale, { steps: 4 });
    await page.mouse.up();
    assert.equal(await page.getAttribute("#photo-canvas", "data-square"), "0,0,120", "dragged to the left edge, not past it");
    await page.$eval("#photo-size", (slider) => {
      slider.value = "60";
      slider.dispatchEvent(new Event("input"));
    });
    assert.equal(await page.getAttribute("#photo-canvas", "data-square"), "30,30,60", "resized about its centre");

    await page.click("#generate");
    await page.waitForFunction(() => document.body.dataset.busy === "false", null, { timeout: TIMEOUT });
    assert.equal(await page.getAttribute("#grid", "data-drawn"), "16", "the grid still draws");
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "no request leaves the page's origin");
  } finally {
    await context.close();
  }
});

test("a portrait is found again, agrees with the CLI, and is varied, morphed, shared and drawn in a related model", { timeout: TIMEOUT * 4 }, async () => {
  const { context, page, errors, foreign } = await open("#model=celeba-64.safetensors&n=16");
  try {
    await page.setInputFiles("#photo-file", portrait);
    await photoStatus(page, /64×64/);
    await page.fill("#photo-steps", String(STEPS));
    await page.click("#photo-start");
    await page.waitForFunction(() => Number(document.getElementById("photo-result").dataset.step) >= 1, null, { timeout: TIMEOUT });
    const found = await photoStatus(page, /^found in/);
    const [, seconds, steps, before, after, db] = found.match(/^found in ([\d.]+) s: (\d+) steps, loss ([\d.]+) → ([\d.]+), ([\d.]+) dB/);
    console.log(`# page inversion: ${steps} steps x 2 starts in ${seconds} s (${(steps / seconds).toFixed(2)} steps/s), loss ${before} -> ${after}, ${db} dB`);
    assert.equal(Number(steps), STEPS);
    assert.ok(Number(after) < Number(before), `the search improves: ${before} -> ${after}`);
    assert.ok(Number(db) > 15, `a portrait the model drew is found again: ${db} dB`);
    assert.match(await page.textContent("#selection"), /^Your photo's portrait$/);
    await page.waitForFunction(() => !document.getElementById("zoom").hidden);
    assert.match(page.url(), /[#&]z=[A-Za-z0-9_-]+/, "the link carries the latent");
    assert.doesNotMatch(page.url(), /photo|png|data:/i, "and nothing of the photo");
    await page.screenshot({ path: resolve(SHOTS, "photo.png"), fullPage: true });

    // The CLI on the same picture, seed, steps and starts finds the same latent.
    const dir = mkdtempSync(join(tmpdir(), "retrato-invert-"));
    execFileSync(RETRATO, ["invert", "--model", resolve(MODELS, "celeba-64.safetensors"), "--discriminator",
      resolve(MODELS, "celeba-64.discriminator.safetensors"), "--image", portrait, "--steps", String(STEPS),
      "--starts", "2", "--seed", "0", "--out", join(dir, "z.npy")]);
    const native = readNpy(join(dir, "z.npy"));
    const inPage = latentOf(page.url());
    assert.equal(inPage.length, native.length);
    const worst = Math.max(...native.map((v, i) => Math.abs(v - inPage[i])));
    console.log(`# page vs CLI latent: largest difference ${worst.toExponential(2)} over ${native.length} values`);
    assert.ok(worst < LATENT_TOLERANCE, `page and CLI agree within ${LATENT_TOLERANCE}: ${worst}`);

    // "Save latent" gives a .npy that the CLI's `sample --latents` takes.
    const saving = page.waitForEvent("download");
    await page.click("#photo-latent");
    const saved = join(dir, "saved.npy");
    await (await saving).saveAs(saved);
    assert.deepEqual(readNpy(saved), inPage, "the saved latent is the page's");
    execFileSync(RETRATO, ["sample", "--model", resolve(MODELS, "celeba-64.safetensors"), "--latents", saved, "--each", join(dir, "drawn")]);
    assert.equal(readdirSync(join(dir, "drawn")).length, 1);

    // A share link draws the same portrait in a fresh page, with no photo.
    const mine = await pixels(page, "photo-mine");
    const again = await open(new URL(page.url()).hash);
    try {
      await again.page.waitForFunction(() => document.getElementById("selection").textContent === "Your photo's portrait", null, { timeout: TIMEOUT });
      assert.deepEqual(await pixels(again.page, "photo-mine"), mine, "the link draws the same portrait");
      assert.equal(await again.page.isVisible("#photo-crop"), false, "no photo came with it");
    } finally {
      await again.context.close();
    }

    // Variations of it, then a morph from it to a portrait of the grid.
    await page.click("#variations");
    await page.waitForFunction(() => document.getElementById("grid").dataset.view === "variations"
      && document.body.dataset.busy === "false", null, { timeout: TIMEOUT });
    assert.match(await page.textContent("#status"), /^16 variations of your photo's portrait/);
    await page.click("#back");
    await page.waitForFunction(() => document.getElementById("selection").textContent === "Your photo's portrait"
      && document.body.dataset.busy === "false", null, { timeout: TIMEOUT });
    await page.click("#morph");
    const grid = await page.locator("#grid").boundingBox();
    const tile = grid.width / (4 * 66 + 2);
    await page.mouse.click(grid.x + (2 + 3 * 66 + 32) * tile, grid.y + (2 + 32) * tile);
    await page.waitForFunction(() => document.getElementById("morph-strip").dataset.drawn === "16", null, { timeout: TIMEOUT });
    assert.equal(await page.textContent("#morph-title"), "Your photo's portrait → portrait 3 of seed 0");

    // The same latent in the painted-portraits model (fine-tuned from the real faces).
    await page.selectOption("#model", "art-portraits-64.safetensors");
    await page.waitForFunction(() => document.getElementById("photo-mine").dataset.model.startsWith("Painted"), null, { timeout: TIMEOUT });
    assert.notDeepEqual(await pixels(page, "photo-mine"), mine, "drawn by the other model");
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "no request leaves the page's origin");
  } finally {
    await context.close();
  }
});

test("on WebGPU (SwiftShader) the search runs the same way", { timeout: TIMEOUT * 2 }, async () => {
  const gpuFlags = [...FLAGS.filter((flag) => flag !== "--disable-gpu"), "--enable-unsafe-webgpu", "--enable-features=Vulkan"];
  const gpu = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: gpuFlags });
  try {
    const context = await gpu.newContext();
    const page = await context.newPage();
    const { errors, foreign } = watchPage(context, page, server.url);
    await page.goto(`${server.url}?backend=webgpu#model=celeba-64.safetensors&n=1`);
    await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "1", null, { timeout: TIMEOUT });
    assert.equal(await page.getAttribute("#backend", "data-state"), "webgpu");
    await page.setInputFiles("#photo-file", portrait);
    await photoStatus(page, /64×64/);
    await page.fill("#photo-steps", "8");
    await page.click("#photo-start");
    const found = await photoStatus(page, /^found in|: /);
    const [, before, after] = found.match(/loss ([\d.]+) → ([\d.]+)/) ?? [];
    assert.ok(Number(after) < Number(before), found);
    assert.equal(await page.getAttribute("#backend", "data-state"), "webgpu", "still on WebGPU");
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, []);
  } finally {
    await gpu.close();
  }
});
