// Pictures for fine-tuning tests and benchmarks, made here (no fixtures to commit): PNGs
// encoded with node's zlib.
import { deflateSync } from "node:zlib";

/// A PNG of `width`×`height` RGB pixels from `pixel(x, y)` (zlib from node, CRCs by hand).
export function png(width, height, pixel) {
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
export function pictures() {
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
