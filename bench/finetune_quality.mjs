// Fine-tuning quality in the page: headless Chromium fine-tunes `celeba-64` (with its shipped
// discriminator) on the first N painted portraits of the shared set, with the page's own
// defaults unless --steps is given, keeps the result, exports it, and `retrato eval fid`
// measures the model before and after against the 200 held-out paintings. Saves a screenshot
// of the live view (before / now grids, loss chart).
//
//   node bench/finetune_quality.mjs [--pictures 100] [--steps N] [--backend cpu|webgpu] [--out DIR]
//   (after `bash scripts/serve.sh` or a trunk build made dist/; the CLI in $CARGO_TARGET_DIR)
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { serve } from "../tests/e2e/server.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const TARGET = process.env.CARGO_TARGET_DIR ?? resolve(ROOT, "target");
const RETRATO = process.env.RETRATO_BIN ?? resolve(TARGET, "release/retrato");
const ART = resolve(ROOT, "../shared/data/art_portraits");
const TIMEOUT = 3_600_000;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

const { values: opts } = parseArgs({ options: {
  pictures: { type: "string", default: "100" }, steps: { type: "string" },
  backend: { type: "string", default: "cpu" }, out: { type: "string", default: resolve(TARGET, "finetune-quality") },
} });
const count = Number(opts.pictures);
mkdirSync(opts.out, { recursive: true });

// The first N training paintings, as files a visitor would pick.
const folder = resolve(opts.out, "pictures");
mkdirSync(folder, { recursive: true });
execFileSync("tar", ["-xf", resolve(ART, "art_portraits64_train.tar"), "-C", folder]);
const files = readdirSync(folder).filter((f) => f.endsWith(".png")).sort().slice(0, count).map((f) => resolve(folder, f));

function fid(model) {
  const json = execFileSync(RETRATO, ["eval", "fid", "--model", model, "--ref", resolve(ART, "art_portraits64_test.npy"),
    "--n", "200", "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(json);
}

const server = await serve(resolve(ROOT, "dist"));
const args = [...FLAGS, ...(opts.backend === "webgpu" ? ["--enable-unsafe-webgpu", "--enable-features=Vulkan"] : ["--disable-gpu"])];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args });
let result;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${server.url}?backend=${opts.backend}#model=celeba-64.safetensors&n=16`);
  await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "16", null, { timeout: TIMEOUT });
  await page.setInputFiles("#tune-files", files);
  await page.waitForFunction((n) => new RegExp(`^${n} pictures ready`).test(document.getElementById("tune-count").textContent),
    files.length, { timeout: TIMEOUT });
  await page.fill("#tune-name", "paintings");
  if (opts.steps) await page.fill("#tune-steps", opts.steps);
  const started = Date.now();
  await page.click("#tune-start");
  await page.waitForFunction(() => /^done: /.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT, polling: 1000 });
  const seconds = (Date.now() - started) / 1000;
  const numbers = await page.textContent("#tune-numbers");
  const steps = Number(/step (\d+) of/.exec(numbers)?.[1]);
  await page.locator("#tune-live").screenshot({ path: resolve(opts.out, "live.png") });
  await page.click("#tune-keep");
  await page.waitForFunction(() => /kept as/.test(document.getElementById("tune-status").textContent), null, { timeout: TIMEOUT });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#tune-models button:has-text('Export')")]);
  const exported = resolve(opts.out, "paintings.safetensors");
  await download.saveAs(exported);
  result = { backend: opts.backend, pictures: files.length, steps, seconds, numbers, exported };
} finally {
  await browser.close();
  await server.close();
}

const before = fid(resolve(ROOT, "www/models/celeba-64.safetensors"));
const after = fid(result.exported);
const row = (name, r) => `| ${name} | ${r.fid.toFixed(1)} | ${r.kid.toFixed(3)} | ${r.precision.toFixed(3)} | ${r.recall.toFixed(3)} |`;
console.log(`page fine-tuning on ${result.backend}: ${result.pictures} paintings, ${result.steps} steps in ${result.seconds.toFixed(0)} s (${result.numbers})`);
console.log("| model | FID-200 | KID | precision | recall |\n|---|---|---|---|---|");
console.log(row("celeba-64 (before)", before));
console.log(row(`after ${result.steps} steps in the page`, after));
writeFileSync(resolve(opts.out, "result.json"), JSON.stringify({ ...result, before, after }, null, 2));
