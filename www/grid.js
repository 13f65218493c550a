// Portraits on canvases: a grid like the CLI's (same padding and background), which tile a
// click hit, a selection outline, an animated morph, and exports (PNG, WebM).

export const PADDING = 2; // the CLI's grid padding, so both grids look alike
const BACKGROUND = "#181818";
const SELECTED = "#e0a458";

/// One portrait as ImageData (a view on the batch's RGBA bytes, no copy).
export function tile(portraits, i) {
  const { width, height, rgba } = portraits;
  const bytes = width * height * 4;
  return new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + i * bytes, bytes), width, height);
}

/// Draws portraits row by row, `columns` per row (default: a square grid).
export function drawGrid(canvas, portraits, { columns, selected = [] } = {}) {
  const { count, width, height } = portraits;
  columns ??= Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  canvas.width = columns * (width + PADDING) + PADDING;
  canvas.height = rows * (height + PADDING) + PADDING;
  const context = canvas.getContext("2d");
  context.fillStyle = BACKGROUND;
  context.fillRect(0, 0, canvas.width, canvas.height);
  const layout = { columns, width, height, count };
  for (let i = 0; i < count; i++) {
    const [x, y] = origin(layout, i);
    context.putImageData(tile(portraits, i), x, y);
  }
  for (const i of selected) outline(context, layout, i);
  return layout;
}

function origin({ columns, width, height }, i) {
  return [PADDING + (i % columns) * (width + PADDING), PADDING + Math.floor(i / columns) * (height + PADDING)];
}

function outline(context, layout, i) {
  if (i < 0 || i >= layout.count) return;
  const [x, y] = origin(layout, i);
  context.strokeStyle = SELECTED;
  context.lineWidth = 2;
  context.strokeRect(x - 1, y - 1, layout.width + 2, layout.height + 2);
}

/// The portrait under a pointer event, or -1.
export function tileAt(canvas, layout, event) {
  const box = canvas.getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width) * canvas.width - PADDING;
  const y = ((event.clientY - box.top) / box.height) * canvas.height - PADDING;
  const column = Math.floor(x / (layout.width + PADDING));
  const row = Math.floor(y / (layout.height + PADDING));
  const i = row * layout.columns + column;
  return column >= 0 && column < layout.columns && row >= 0 && i < layout.count ? i : -1;
}

/// Plays frames back and forth on `canvas` until the returned stop() is called.
export function animate(canvas, portraits, fps = 12) {
  canvas.width = portraits.width;
  canvas.height = portraits.height;
  const context = canvas.getContext("2d");
  const order = [...Array(portraits.count).keys()];
  const pingPong = order.concat(order.slice(1, -1).reverse());
  let frame = 0;
  const timer = setInterval(() => {
    context.putImageData(tile(portraits, pingPong[frame]), 0, 0);
    frame = (frame + 1) % pingPong.length;
  }, 1000 / fps);
  context.putImageData(tile(portraits, 0), 0, 0);
  return () => clearInterval(timer);
}

/// Saves a canvas as a PNG download.
export function downloadPng(canvas, name) {
  canvas.toBlob((blob) => download(blob, name), "image/png");
}

/// One portrait as a PNG download, at its own size.
export function downloadTile(portraits, i, name) {
  const canvas = document.createElement("canvas");
  canvas.width = portraits.width;
  canvas.height = portraits.height;
  canvas.getContext("2d").putImageData(tile(portraits, i), 0, 0);
  downloadPng(canvas, name);
}

/// Records the morph (there and back) as a WebM video via MediaRecorder.
export async function recordWebm(portraits, name, { scale = 4, fps = 12 } = {}) {
  const canvas = document.createElement("canvas");
  canvas.width = portraits.width * scale;
  canvas.height = portraits.height * scale;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  const source = document.createElement("canvas");
  source.width = portraits.width;
  source.height = portraits.height;
  const stream = canvas.captureStream(fps);
  const recorder = new MediaRecorder(stream, { mimeType: "video/webm" });
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const done = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  const order = [...Array(portraits.count).keys()];
  for (const i of order.concat(order.slice(0, -1).reverse())) {
    source.getContext("2d").putImageData(tile(portraits, i), 0, 0);
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    await new Promise((resolve) => setTimeout(resolve, 1000 / fps));
  }
  recorder.stop();
  await done;
  download(new Blob(chunks, { type: "video/webm" }), name);
}

export function download(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
