// A small PNG encoder and a fake monitoring dashboard drawn with it, so the tests upload a
// screenshot that looks like one without any image library.

import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** Encodes RGB pixels (row-major, 3 bytes each) as a PNG. */
export function encodePng(w: number, h: number, rgb: Uint8Array): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    Buffer.from(rgb.buffer, rgb.byteOffset + y * w * 3, w * 3).copy(raw, y * (w * 3 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

type Rgb = [number, number, number];

/** A dark two-panel "dashboard": latency with a spike, error rate with a step. */
export function dashboardPng(w = 960, h = 540, spikeColor: Rgb = [242, 73, 92]): Buffer {
  const px = new Uint8Array(w * h * 3);
  const set = (x: number, y: number, c: Rgb): void => {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    const i = (Math.floor(y) * w + Math.floor(x)) * 3;
    px[i] = c[0];
    px[i + 1] = c[1];
    px[i + 2] = c[2];
  };
  const rect = (x0: number, y0: number, x1: number, y1: number, c: Rgb): void => {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) set(x, y, c);
  };
  rect(0, 0, w, h, [17, 18, 23]);
  rect(0, 0, w, 36, [24, 27, 31]);
  for (let i = 0; i < 5; i++) rect(16 + i * 90, 12, 86 + i * 90, 24, [60, 66, 75]);
  const panels: [number, number, number, number][] = [[16, 52, w - 16, 286], [16, 302, w - 16, h - 16]];
  panels.forEach(([x0, y0, x1, y1], p) => {
    rect(x0, y0, x1, y1, [24, 27, 31]);
    rect(x0 + 12, y0 + 10, x0 + 180, y0 + 20, [90, 96, 106]);
    for (let gy = y0 + 40; gy < y1 - 10; gy += 40) rect(x0 + 12, gy, x1 - 12, gy + 1, [40, 44, 52]);
    let prev: number | null = null;
    for (let x = x0 + 12; x < x1 - 12; x++) {
      const t = (x - x0) / (x1 - x0);
      const base = y1 - 40 - 20 * Math.sin(t * 18) - 8 * Math.sin(t * 53);
      const bump = p === 0 ? (t > 0.62 && t < 0.78 ? 120 * Math.sin(((t - 0.62) / 0.16) * Math.PI) : 0) : (t > 0.64 ? 70 : 0);
      const y = Math.max(y0 + 30, base - bump);
      const c: Rgb = bump > 5 ? spikeColor : [115, 191, 105];
      const from = prev ?? y;
      for (let yy = Math.min(from, y); yy <= Math.max(from, y); yy++) {
        set(x, yy, c);
        set(x, yy + 1, c);
      }
      prev = y;
    }
  });
  return encodePng(w, h, px);
}
