// The README's screenshots of the page, taken from dist/ in headless Chromium (CPU build):
// docs/page.png (the real-face model, a portrait selected, a morph) and docs/photo-page.png
// (the "Your photo" panel after finding a photo in the model).
//
//   node docs/screenshots.mjs PHOTO.png [SIDE]      # after `bash scripts/serve.sh` built dist/
import { resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../tests/e2e/server.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const TIMEOUT = 600_000;
const photo = process.argv[2];
if (!photo) throw new Error("usage: node docs/screenshots.mjs PHOTO.png [SIDE]");

const server = await serve(resolve(ROOT, "dist"));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
  await page.goto(`${server.url}?backend=cpu#model=celeba-64.safetensors&seed=0&n=16&sel=5`);
  await page.waitForFunction(() => document.getElementById("grid").dataset.drawn === "16", null, { timeout: TIMEOUT });
  await page.click("#morph");
  const grid = await page.locator("#grid").boundingBox();
  const tile = grid.width / (4 * 66 + 2);
  await page.mouse.click(grid.x + (2 + 2 * 66 + 32) * tile, grid.y + (2 + 3 * 66 + 32) * tile);
  await page.waitForFunction(() => document.getElementById("morph-strip").dataset.drawn === "16", null, { timeout: TIMEOUT });
  await page.locator("#grid").scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: resolve(ROOT, "docs/page.png") });

  await page.setInputFiles("#photo-file", photo);
  await page.waitForFunction(() => /×/.test(document.getElementById("photo-status").textContent), null, { timeout: TIMEOUT });
  if (process.argv[3]) { // the square's side, about the photo's centre
    await page.$eval("#photo-size", (slider, side) => {
      slider.value = side;
      slider.dispatchEvent(new Event("input"));
    }, process.argv[3]);
  }
  await page.click("#photo-start");
  await page.waitForFunction(() => /^found in/.test(document.getElementById("photo-status").textContent), null, { timeout: TIMEOUT });
  await page.locator("#photo").screenshot({ path: resolve(ROOT, "docs/photo-page.png") });
  console.log(await page.textContent("#photo-status"));
} finally {
  await browser.close();
  await server.close();
}
