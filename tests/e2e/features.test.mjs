// The page's features in a real headless Chromium (WebGPU on SwiftShader): selection,
// variations, morph, share link round trip, a bad model file refused while the current one
// keeps working, and generation offline after the first visit (service worker).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve, watchPage } from "./server.mjs";

const DIST = resolve(import.meta.dirname, "../../dist");
const SHOTS = resolve(process.env.CARGO_TARGET_DIR ?? "/tmp", "e2e-screenshots");
const TIMEOUT = 180_000;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--enable-unsafe-webgpu",
  "--enable-features=Vulkan"];

let server, browser;
before(async () => {
  server = await serve(DIST);
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: FLAGS });
});
after(async () => { await browser?.close(); await server?.close(); });

/// Opens the page on the untrained placeholder model (built by the CLI, known portraits).
async function open(hash = "#model=random-dcgan-64.safetensors") {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const { errors, foreign } = watchPage(context, page, server.url);
  await page.goto(`${server.url}${hash}`);
  return { context, page, errors, foreign };
}

/// Waits until the grid shows `count` portraits of `view` and returns its pixels.
async function drawn(page, count, view = "grid") {
  await page.waitForFunction(([n, v]) => {
    const grid = document.getElementById("grid");
    return grid.dataset.drawn === String(n) && grid.dataset.view === v && document.body.dataset.busy === "false";
  }, [count, view], { timeout: TIMEOUT });
  return page.evaluate(() => {
    const canvas = document.getElementById("grid");
    return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
  });
}

/// Clicks portrait i of a 4×4 grid of 64 px tiles.
async function clickTile(page, i) {
  const box = await page.locator("#grid").boundingBox();
  const scale = box.width / (4 * 66 + 2);
  await page.mouse.click(box.x + (2 + (i % 4) * 66 + 32) * scale, box.y + (2 + Math.floor(i / 4) * 66 + 32) * scale);
}

test("select, variations, morph, and a share link that reproduces the view", { timeout: TIMEOUT * 3 }, async () => {
  const { context, page, errors, foreign } = await open();
  try {
    const original = await drawn(page, 16);
    await clickTile(page, 5);
    await page.waitForFunction(() => document.getElementById("selection").textContent === "Portrait 5 of seed 0");
    assert.match(page.url(), /sel=5/);
    assert.equal(await page.isVisible("#zoom"), true);

    await page.click("#variations");
    const varied = await drawn(page, 16, "variations");
    assert.notDeepEqual(varied, original, "variations are new portraits");
    assert.match(page.url(), /view=variations/);
    const link = page.url();

    await page.click("#back");
    await drawn(page, 16);
    await clickTile(page, 2);
    await page.click("#morph");
    await clickTile(page, 9);
    await page.waitForFunction(() => document.getElementById("morph-strip").dataset.drawn === "16", null, { timeout: TIMEOUT });
    assert.match(await page.textContent("#morph-title"), /Portrait 2 of seed 0 → portrait 9 of seed 0/);
    await page.screenshot({ path: resolve(SHOTS, "features.png"), fullPage: true });
    const download = page.waitForEvent("download");
    await page.click("#morph-png");
    assert.equal((await download).suggestedFilename(), "retrato-morph.png");

    // The link opens the same variations in a fresh page.
    const again = await open(link.slice(server.url.length));
    try {
      const reopened = await drawn(again.page, 16, "variations");
      assert.deepEqual(reopened, varied, "the share link reproduces the same portraits");
    } finally {
      await again.context.close();
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "no request leaves the page's origin");
  } finally {
    await context.close();
  }
});

test("a bad model file gets a clear message and the current model keeps working", { timeout: TIMEOUT * 2 }, async () => {
  const { context, page, errors } = await open("#model=random-dcgan-64.safetensors&seed=3&n=1");
  try {
    const before = await drawn(page, 1);
    await page.setInputFiles("#file", { name: "broken.safetensors", mimeType: "application/octet-stream", buffer: Buffer.from("this is not a model") });
    await page.waitForFunction(() => document.getElementById("status").dataset.kind === "error", null, { timeout: TIMEOUT });
    const message = await page.textContent("#status");
    assert.match(message, /^broken\.safetensors: .+ The current model \(.+\) is still loaded\.$/);
    await page.click("#generate");
    const after = await drawn(page, 1);
    assert.deepEqual(after, before, "the same model still draws the same portrait");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("after the first visit the page generates offline", { timeout: TIMEOUT * 2 }, async () => {
  const { context, page } = await open("#model=random-dcgan-64.safetensors&seed=11&n=1");
  try {
    const online = await drawn(page, 1);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      // The model was fetched before the worker took control: fetch it once more through it.
      await fetch("www/models/random-dcgan-64.safetensors");
    });
    await context.setOffline(true);
    await page.reload();
    const offline = await drawn(page, 1);
    assert.deepEqual(offline, online, "same portrait from the cache");
  } finally {
    await context.close();
  }
});
