// Draws the app's icons (a white map pin on the console's blue) into
// src/icons/ as PNG. Run once by hand (`node tools/icons.mjs`); the PNGs are
// committed and build.mjs only copies them, so the bundle does not depend on
// the zlib that happens to ship with node.
import { deflateSync } from "node:zlib";
import { mkdirSync, writeFileSync } from "node:fs";

const BLUE = [11, 92, 173, 255];
const WHITE = [255, 255, 255, 255];

/** RGBA pixels of a pin: `scale` is the pin's height as a share of the icon. */
function draw(size, scale, round) {
  const px = new Uint8Array(size * size * 4);
  const c = size / 2;
  const h = size * scale; // pin height
  const r = h * 0.32; // head radius
  const cy = c - h / 2 + r; // head centre
  const tip = c + h / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - c;
      const dy = y + 0.5 - cy;
      const d = Math.hypot(dx, dy);
      // the pin: a disc, and a triangle from the disc down to the tip
      const half = y + 0.5 > cy && y + 0.5 < tip ? (r * (tip - (y + 0.5))) / (tip - cy) : -1;
      const inPin = d <= r || Math.abs(dx) <= half;
      const hole = d <= r * 0.42;
      let col = inPin && !hole ? WHITE : BLUE;
      if (round && Math.hypot(x + 0.5 - c, y + 0.5 - c) > c) col = [0, 0, 0, 0];
      px.set(col, (y * size + x) * 4);
    }
  }
  return px;
}

const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
export function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) raw.set(rgba.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

const dir = new URL("../src/icons/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL("icon-192.png", dir), png(192, draw(192, 0.7, true)));
writeFileSync(new URL("icon-512.png", dir), png(512, draw(512, 0.7, true)));
// Maskable: full bleed, the pin inside the 80 % safe zone.
writeFileSync(new URL("maskable-512.png", dir), png(512, draw(512, 0.5, false)));
