// "Use my photo" timed in the page: the first N held-out CelebA faces (celeba64_test.npy,
// research-only, read from ../shared, never copied) are each uploaded as a PNG and found in
// the real-face model with the page's defaults (150 steps, 2 starts, the shipped
// discriminator), in the CPU build of headless Chromium; prints each photo's seconds and PSNR
// and their medians.
//
//   node bench/photo.mjs [N]        # after `bash scripts/serve.sh` (or scripts/test.sh) built dist/
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../tests/e2e/server.mjs";
import { png } from "../tests/e2e/pictures.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const SET = resolve(ROOT, "../shared/data/celeba/celeba64_test.npy");
const COUNT = Number(process.argv[2] ?? 5);
const TIMEOUT = 600_000;
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--disable-gpu"];

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/// Picture i of a uint8 N×H×W×3 .npy, as a PNG.
function face(npy, i) {
  const headerLength = npy.readUInt16LE(8);
  const header = npy.subarray(10, 10 + headerLength).toString();
  const [, h, w] = header.match(/\(\s*\d+,\s*(\d+),\s*(\d+),\s*3\s*\)/).map(Number);
  const data = npy.subarray(10 + headerLength + i * h * w * 3);
  return png(w, h, (x, y) => Array.from(data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)));
}

const npy = readFileSync(SET);
const server = await serve(resolve(ROOT, "dist"));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: FLAGS });
const rows = [];
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}?backend=cpu#model=celeba-64.safetensors&n=1`);
  await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "1", null, { timeout: TIMEOUT });
  for (let i = 0; i < COUNT; i++) {
    await page.setInputFiles("#photo-file", { name: `test-${i}.png`, mimeType: "image/png", buffer: face(npy, i) });
    await page.waitForFunction((name) => document.getElementById("photo-status").textContent.startsWith(`${name}: 64×64`), `test-${i}.png`, { timeout: TIMEOUT });
    await page.click("#photo-start");
    await page.waitForFunction(() => /^found in|: .*error/.test(document.getElementById("photo-status").textContent), null, { timeout: TIMEOUT });
    const status = await page.textContent("#photo-status");
    const [, seconds, steps, db] = status.match(/^found in ([\d.]+) s: (\d+) steps.*, ([\d.]+) dB/) ?? [];
    if (!seconds) throw new Error(status);
    rows.push({ seconds: Number(seconds), db: Number(db) });
    console.log(`face ${i}: ${steps} steps in ${seconds} s, ${db} dB`);
  }
} finally {
  await browser.close();
  await server.close();
}
console.log(`median over ${rows.length} faces: ${median(rows.map((r) => r.seconds)).toFixed(1)} s, ` +
  `${median(rows.map((r) => r.db)).toFixed(1)} dB (CPU build, defaults: 150 steps x 2 starts)`);
