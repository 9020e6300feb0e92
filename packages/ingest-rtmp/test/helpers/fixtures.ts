import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

/** Bytes of a committed fixture (regenerate with scripts/make-fixtures.ts). */
export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(dir, name)));
}

/** ffprobe's view of the fixture encodings. */
export const expected: Record<
  string,
  {
    width?: number;
    height?: number;
    level?: number;
    profile?: string;
    sample_rate?: string;
    channels?: number;
  }
> = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));

/** Bits ("0101 1...") to bytes, zero-padded. */
export function bits(text: string): Uint8Array {
  const b = text.replace(/[^01]/g, "");
  const out = new Uint8Array(Math.ceil(b.length / 8));
  for (let i = 0; i < b.length; i++) if (b[i] === "1") out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}
