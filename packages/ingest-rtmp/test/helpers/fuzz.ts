/**
 * A small mutation fuzzer for RTMP sessions: mutates a real client-to-server capture (byte flips,
 * boundary values, splices, truncation, re-chunking at other chunk sizes with injected control
 * messages) or produces random chunk streams after a valid handshake.
 */
import { ChunkStreamReader, ChunkStreamWriter, type RtmpMessage } from "../../src/index.ts";

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HANDSHAKE = 1 + 1536 + 1536;
const BOUNDARY = [0x000000, 0xffffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x00000001, 0x00ffffff, 0x01000000];

/** A fuzz case: the bytes to send and how it was made. */
export interface FuzzCase {
  readonly kind: string;
  readonly bytes: Uint8Array;
}

export class RtmpFuzzer {
  readonly #capture: Uint8Array;
  readonly #handshake: Uint8Array;
  readonly #messages: RtmpMessage[];

  constructor(capture: Uint8Array) {
    this.#capture = capture;
    this.#handshake = capture.subarray(0, HANDSHAKE);
    const reader = new ChunkStreamReader();
    reader.push(capture.subarray(HANDSHAKE));
    const messages: RtmpMessage[] = [];
    for (let m = reader.next(); m !== null; m = reader.next()) messages.push(m);
    this.#messages = messages;
  }

  /** Messages of the capture (for tests that check the capture itself). */
  get messages(): readonly RtmpMessage[] {
    return this.#messages;
  }

  make(rand: () => number): FuzzCase {
    const pick = rand();
    if (pick < 0.25)
      return { kind: "flips", bytes: this.#flips(this.#capture.slice(), rand, 1 + Math.floor(rand() * 32)) };
    if (pick < 0.4) return { kind: "boundary", bytes: this.#boundary(this.#capture.slice(), rand) };
    if (pick < 0.55) return { kind: "splice", bytes: this.#splice(rand) };
    if (pick < 0.62)
      return {
        kind: "truncate",
        bytes: this.#capture.slice(0, Math.floor(rand() * this.#capture.byteLength)),
      };
    if (pick < 0.82) return { kind: "rechunk", bytes: this.#rechunk(rand) };
    if (pick < 0.91)
      return {
        kind: "random-bytes",
        bytes: concat(this.#handshake, randomBytes(rand, 1 + Math.floor(rand() * 20000))),
      };
    return { kind: "random-chunks", bytes: concat(this.#handshake, this.#randomChunks(rand)) };
  }

  #flips(b: Uint8Array, rand: () => number, n: number): Uint8Array {
    for (let i = 0; i < n; i++) {
      const at = Math.floor(rand() * b.byteLength);
      b[at] = rand() < 0.5 ? b[at]! ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
    }
    return b;
  }

  #boundary(b: Uint8Array, rand: () => number): Uint8Array {
    for (let i = 0; i < 1 + Math.floor(rand() * 4); i++) {
      const at = HANDSHAKE + Math.floor(rand() * (b.byteLength - HANDSHAKE - 4));
      const v = BOUNDARY[Math.floor(rand() * BOUNDARY.length)]!;
      const width = rand() < 0.5 ? 3 : 4;
      for (let k = 0; k < width; k++) b[at + k] = (v >>> (8 * (width - 1 - k))) & 0xff;
    }
    return b;
  }

  #splice(rand: () => number): Uint8Array {
    const c = this.#capture;
    const a = HANDSHAKE + Math.floor(rand() * (c.byteLength - HANDSHAKE));
    const len = Math.floor(rand() * 2000);
    switch (Math.floor(rand() * 3)) {
      case 0:
        return concat(c.subarray(0, a), c.subarray(Math.min(c.byteLength, a + len)));
      case 1:
        return concat(c.subarray(0, a + len), c.subarray(a));
      default: {
        const b = HANDSHAKE + Math.floor(rand() * (c.byteLength - HANDSHAKE));
        return concat(c.subarray(0, a), c.subarray(b, b + len), c.subarray(a));
      }
    }
  }

  // Re-chunks the real messages at another chunk size, with hostile control messages in between.
  #rechunk(rand: () => number): Uint8Array {
    const writer = new ChunkStreamWriter({ compress: rand() < 0.7 });
    const parts: Uint8Array[] = [this.#handshake];
    const setChunk = (size: number): void => {
      parts.push(
        writer.encode({ chunkStreamId: 2, typeId: 1, streamId: 0, timestamp: 0, payload: u32(size) }),
      );
      if (size >= 1 && size <= 0x7fffffff) writer.setChunkSize(size);
    };
    setChunk(1 + Math.floor(rand() * 4096));
    for (const m of this.#messages) {
      if (m.typeId === 1) continue;
      const r = rand();
      if (r < 0.02) setChunk([0, 1, 0x80000000, 0x7fffffff, 0x1000001][Math.floor(rand() * 5)]!);
      else if (r < 0.04)
        parts.push(
          writer.encode({
            chunkStreamId: 2,
            typeId: 2,
            streamId: 0,
            timestamp: 0,
            payload: u32(Math.floor(rand() * 70000)),
          }),
        );
      else if (r < 0.06)
        parts.push(
          writer.encode({
            chunkStreamId: 3 + Math.floor(rand() * 60000),
            typeId: Math.floor(rand() * 256),
            streamId: 1,
            timestamp: Math.floor(rand() * 2 ** 32),
            payload: randomBytes(rand, Math.floor(rand() * 300)),
          }),
        );
      else if (r < 0.07) parts.push(Uint8Array.of(0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0)); // declares 16 MiB
      const ts = rand() < 0.05 ? Math.floor(rand() * 2 ** 32) : m.timestamp;
      parts.push(
        writer.encode({
          chunkStreamId: m.chunkStreamId,
          typeId: m.typeId,
          streamId: m.streamId,
          timestamp: ts,
          payload: m.payload,
        }),
      );
    }
    const bytes = concat(...parts);
    return rand() < 0.5 ? this.#flips(bytes, rand, Math.floor(rand() * 8)) : bytes;
  }

  #randomChunks(rand: () => number): Uint8Array {
    const out: number[] = [];
    const n = 1 + Math.floor(rand() * 400);
    for (let i = 0; i < n; i++) {
      const fmt = Math.floor(rand() * 4);
      const csid = Math.floor(rand() * 70);
      out.push((fmt << 6) | csid);
      if (csid === 0) out.push(Math.floor(rand() * 256));
      if (csid === 1) out.push(Math.floor(rand() * 256), Math.floor(rand() * 256));
      const header = [11, 7, 3, 0][fmt]!;
      for (let k = 0; k < header; k++) out.push(rand() < 0.2 ? 0xff : Math.floor(rand() * 256));
      for (let k = 0; k < Math.floor(rand() * 200); k++) out.push(Math.floor(rand() * 256));
    }
    return Uint8Array.from(out);
  }
}

function u32(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
