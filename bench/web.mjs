// The page benchmark: retrato's page against the same DCGAN generator (same weights) in
// TensorFlow.js, in the same headless Chromium, in one run. Cold start = navigation to the
// first portrait on screen (fresh profile: no HTTP cache, no service worker); batch = 64
// portraits after a warm-up, pixels read back, median of 3.
//
//   (cd bench/web && npm install) && node bench/web.mjs        # after `bash scripts/serve.sh` built dist/
import { resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../tests/e2e/server.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const RUNS = 3;
const TIMEOUT = 900_000;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--enable-unsafe-webgpu",
  "--enable-features=Vulkan"];

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function retrato(browser, url, backend) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}?backend=${backend}#model=random-dcgan-64.safetensors&seed=0&n=1`);
  await page.waitForFunction(() => performance.getEntriesByName("retrato:first-portraits").length > 0, null, { timeout: TIMEOUT });
  const cold = await page.evaluate(() => performance.getEntriesByName("retrato:first-portraits")[0].startTime);
  const state = await page.getAttribute("#backend", "data-state");
  const batch = [];
  for (let run = 0; run <= RUNS; run++) {
    await page.evaluate(() => performance.clearMeasures());
    if (run === 0) await page.check("input[name=count][value='64']");
    else await page.click("#generate");
    await page.waitForFunction(() => performance.getEntriesByName("retrato:render").length > 0 &&
      document.getElementById("grid").dataset.drawn === "64", null, { timeout: TIMEOUT });
    const ms = await page.evaluate(() => performance.getEntriesByName("retrato:render")[0].duration);
    if (run > 0) batch.push(ms); // run 0 is the warm-up
  }
  await context.close();
  return { who: "retrato", backend: state, cold, batch: median(batch) };
}

async function tfjs(browser, url, backend) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}bench/tfjs.html?backend=${backend}#n=1`);
  await page.waitForFunction(() => window.coldStartMs !== undefined || window.benchError, null, { timeout: TIMEOUT });
  const error = await page.evaluate(() => window.benchError);
  if (error) throw new Error(`tfjs ${backend}: ${error}`);
  const cold = await page.evaluate(() => window.coldStartMs);
  const used = await page.evaluate(() => window.backendInUse);
  const batch = [];
  for (let run = 0; run <= RUNS; run++) {
    const ms = await page.evaluate(() => window.bench(64));
    if (run > 0) batch.push(ms);
  }
  await context.close();
  return { who: "tfjs 4.22", backend: used, cold, batch: median(batch) };
}

const server = await serve(resolve(ROOT, "dist"), {
  "/bench/": resolve(ROOT, "bench/web"),
  "/tfjs/": resolve(ROOT, "bench/web/node_modules/@tensorflow"),
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: FLAGS });
const only = process.argv.slice(2);
const rows = [];
try {
  const cases = [["retrato", "webgpu"], ["retrato", "cpu"], ["tfjs", "webgpu"], ["tfjs", "webgl"], ["tfjs", "wasm"], ["tfjs", "cpu"]]
    .filter(([who, backend]) => only.length === 0 || only.includes(`${who}:${backend}`));
  for (const [who, backend] of cases) {
    const row = await (who === "retrato" ? retrato : tfjs)(browser, server.url, backend);
    rows.push(row);
    console.error(`${row.who} ${row.backend}: cold ${row.cold.toFixed(0)} ms, 64 portraits ${row.batch.toFixed(0)} ms`);
  }
} finally {
  await browser.close();
  await server.close();
}
console.log("| page | backend | cold start (navigation → first portrait) | 64 portraits (median of 3) | per portrait |");
console.log("|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.who} | ${r.backend} | ${(r.cold / 1000).toFixed(2)} s | ${(r.batch / 1000).toFixed(2)} s | ${(r.batch / 64).toFixed(0)} ms |`);
}
console.log(JSON.stringify(rows));
