// Fine-tuning speed: the page (headless Chromium, the CPU fallback in wasm and WebGPU) against
// the native CLI (`retrato bench finetune`, the same model, recipe and batch) on this machine,
// in one run. The page is timed on its own progress (steps done between two moments after
// warm-up); the native step is timed with 1 thread (as the wasm runs) and with all cores.
//
//   node bench/finetune.mjs            # after `bash scripts/serve.sh` (or trunk build) built dist/
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../tests/e2e/server.mjs";
import { pictures } from "../tests/e2e/pictures.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const TARGET = process.env.CARGO_TARGET_DIR ?? resolve(ROOT, "target");
const RETRATO = process.env.RETRATO_BIN ?? resolve(TARGET, "release/retrato");
const MODEL = "celeba-64.safetensors";
const TIMEOUT = 1_800_000;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];
// Steps [from, to] timed per backend: SwiftShader (WebGPU on the CPU) is far slower.
const WINDOWS = { cpu: [3, 13], webgpu: [1, 3] };

async function page(server, backend) {
  const args = [...FLAGS, ...(backend === "webgpu" ? ["--enable-unsafe-webgpu", "--enable-features=Vulkan"] : ["--disable-gpu"])];
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args });
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}?backend=${backend}#model=${MODEL}&n=1`);
    await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "1", null, { timeout: TIMEOUT });
    const adapter = await page.getAttribute("#backend", "title");
    await page.setInputFiles("#tune-files", pictures().slice(0, 20));
    await page.waitForFunction(() => /20 pictures ready/.test(document.getElementById("tune-count").textContent), null, { timeout: TIMEOUT });
    const [from, to] = WINDOWS[backend];
    await page.fill("#tune-steps", String(to + 2));
    await page.click("#tune-start");
    const at = async (n) => {
      await page.waitForFunction((n) => Number(document.getElementById("tune-live").dataset.step) >= n, n, { timeout: TIMEOUT, polling: 20 });
      return { step: Number(await page.getAttribute("#tune-live", "data-step")), time: performance.now() };
    };
    const a = await at(from);
    const b = await at(to);
    return { who: "retrato page", backend, adapter, stepsPerSecond: (b.step - a.step) / ((b.time - a.time) / 1000) };
  } finally {
    await browser.close();
  }
}

function native(threads) {
  const out = execFileSync(RETRATO, ["bench", "finetune", "--from", resolve(ROOT, "www/models", MODEL),
    "--discriminator", resolve(ROOT, "www/models/celeba-64.discriminator.safetensors"), "--images", "20", "--json"],
  { env: { ...process.env, ...(threads ? { RAYON_NUM_THREADS: String(threads) } : {}) } });
  const result = JSON.parse(out.toString().trim().split("\n").at(-1));
  return { who: "retrato native", backend: `cpu, ${result.threads} thread${result.threads === 1 ? "" : "s"}`, stepsPerSecond: result.steps_per_s };
}

const server = await serve(resolve(ROOT, "dist"));
try {
  const rows = [native(1), native(0), await page(server, "cpu"), await page(server, "webgpu")];
  const base = rows[0].stepsPerSecond;
  console.log(`fine-tuning ${MODEL} on 20 pictures (batch 20), ${new Date().toISOString().slice(0, 10)}`);
  console.log("| who | backend | steps/s | vs native, 1 thread |");
  console.log("|---|---|---|---|");
  for (const row of rows) {
    console.log(`| ${row.who} | ${row.backend}${row.adapter ? ` (${row.adapter.split(" · ").at(-1)})` : ""} | ${row.stepsPerSecond.toFixed(3)} | ${(row.stepsPerSecond / base).toFixed(2)}× |`);
  }
} finally {
  await server.close();
}
