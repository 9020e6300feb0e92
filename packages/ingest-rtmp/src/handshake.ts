/**
 * The RTMP handshake: the plain C0/C1/C2 exchange of the RTMP specification (§5.2) and the
 * HMAC-SHA256 "digest" variant that Flash Player, ffmpeg and librtmp (OBS) use. In the digest
 * variant C1 carries a digest at a position derived from either its first or second half (two
 * "schemes"); the server answers with S1 signed the same way and S2 signed with a key derived
 * from the client's digest, and the client's C2 is signed with a key derived from S1's digest.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { RtmpError } from "./errors.ts";

/** Size of C1/C2/S1/S2. */
export const HANDSHAKE_SIZE = 1536;
/** The only RTMP version byte (C0/S0) this package speaks. */
export const RTMP_VERSION = 3;
const DIGEST_SIZE = 32;

/** Which handshake a connection used. */
export type HandshakeMode = "plain" | "digest";

const KEY_SUFFIX = [
  0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec,
  0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
];

/** "Genuine Adobe Flash Player 001" + 32 bytes; the first 30 bytes sign C1. */
export const FLASH_PLAYER_KEY: Uint8Array = Uint8Array.from([
  ...Buffer.from("Genuine Adobe Flash Player 001", "latin1"),
  ...KEY_SUFFIX,
]);
/** "Genuine Adobe Flash Media Server 001" + 32 bytes; the first 36 bytes sign S1. */
export const FLASH_MEDIA_SERVER_KEY: Uint8Array = Uint8Array.from([
  ...Buffer.from("Genuine Adobe Flash Media Server 001", "latin1"),
  ...KEY_SUFFIX,
]);
const PLAYER_KEY_OPEN = FLASH_PLAYER_KEY.subarray(0, 30);
const SERVER_KEY_OPEN = FLASH_MEDIA_SERVER_KEY.subarray(0, 36);

/** Where the digest sits: scheme 0 derives it from bytes 8..11, scheme 1 from bytes 772..775. */
export type DigestScheme = 0 | 1;

/** Offset of the 32-byte digest inside a 1536-byte handshake packet. */
export function digestOffset(packet: Uint8Array, scheme: DigestScheme): number {
  const base = scheme === 0 ? 8 : 772;
  const sum = packet[base]! + packet[base + 1]! + packet[base + 2]! + packet[base + 3]!;
  return (sum % 728) + base + 4;
}

/** HMAC-SHA256 of the packet without the 32 bytes at `offset`. */
export function computeDigest(packet: Uint8Array, offset: number, key: Uint8Array): Uint8Array {
  const hmac = createHmac("sha256", key);
  hmac.update(packet.subarray(0, offset));
  hmac.update(packet.subarray(offset + DIGEST_SIZE, HANDSHAKE_SIZE));
  return hmac.digest();
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** Finds a valid digest signed with `key`, trying scheme `first` then the other one. */
export function findDigest(
  packet: Uint8Array,
  key: Uint8Array,
  first: DigestScheme = 0,
): { scheme: DigestScheme; offset: number } | undefined {
  for (const scheme of first === 0 ? ([0, 1] as const) : ([1, 0] as const)) {
    const offset = digestOffset(packet, scheme);
    const expected = computeDigest(packet, offset, key);
    if (equal(expected, packet.subarray(offset, offset + DIGEST_SIZE))) return { scheme, offset };
  }
  return undefined;
}

/** Writes the digest of `packet` into it at the scheme's position; returns the offset. */
export function imprintDigest(packet: Uint8Array, scheme: DigestScheme, key: Uint8Array): number {
  const offset = digestOffset(packet, scheme);
  packet.set(computeDigest(packet, offset, key), offset);
  return offset;
}

/** Sources of randomness and time, replaceable for golden-byte tests. */
export interface HandshakeEntropy {
  random(size: number): Uint8Array;
  /** Milliseconds for the 4-byte time field. */
  now(): number;
}

const defaultEntropy: HandshakeEntropy = {
  random: (size) => randomBytes(size),
  now: () => Math.floor(performance.now()),
};

/** Version bytes the server puts in S1 for the digest handshake (any non-zero value works). */
const SERVER_VERSION = [0x0d, 0x0e, 0x0a, 0x0d];

/** What one `push()` into a handshake produced. */
export interface HandshakeStep {
  /** Bytes to send to the peer, if any. */
  readonly reply?: Uint8Array;
  /** True once the handshake is complete. */
  readonly done: boolean;
  /** Bytes received after the handshake (the start of the chunk stream). */
  readonly rest?: Uint8Array;
}

function describeBadVersion(byte: number): string {
  if (byte === 6 || byte === 8 || byte === 9)
    return `RTMP version byte ${byte} asks for encrypted RTMP (RTMPE), which is not supported`;
  if (byte === 0x16)
    return "received a TLS ClientHello on a plain RTMP port (use rtmp://, or an RTMPS listener)";
  if (byte >= 0x41 && byte <= 0x5a)
    return `received '${String.fromCharCode(byte)}' instead of the RTMP version byte 3; is this HTTP?`;
  return `RTMP version byte ${byte} is not supported (expected 3)`;
}

/**
 * The server side: reads C0+C1, answers S0+S1+S2 (digest-signed when C1 carries a valid digest),
 * then reads C2. C2's contents are not checked; real clients send a copy of S1 or a signed reply.
 */
export class ServerHandshake {
  readonly #entropy: HandshakeEntropy;
  #state: "c0" | "c1" | "c2" | "done" = "c0";
  readonly #c1 = new Uint8Array(HANDSHAKE_SIZE);
  #c1Filled = 0;
  #c2Filled = 0;
  #mode: HandshakeMode | undefined;
  #clientVersion = "0.0.0.0";

  constructor(entropy?: HandshakeEntropy) {
    this.#entropy = entropy ?? defaultEntropy;
  }

  /** The variant chosen after C1 (undefined before). */
  get mode(): HandshakeMode | undefined {
    return this.#mode;
  }

  /** The version the client put in C1 bytes 4..7, e.g. "9.0.124.2" (ffmpeg). */
  get clientVersion(): string {
    return this.#clientVersion;
  }

  /** True once C2 has been read. */
  get done(): boolean {
    return this.#state === "done";
  }

  /** Feeds received bytes. Throws `RTMP_HANDSHAKE_INVALID` on a bad C0. */
  push(data: Uint8Array): HandshakeStep {
    let i = 0;
    let reply: Uint8Array | undefined;
    if (this.#state === "c0" && data.byteLength > 0) {
      const version = data[0]!;
      if (version !== RTMP_VERSION)
        throw new RtmpError("RTMP_HANDSHAKE_INVALID", describeBadVersion(version));
      i = 1;
      this.#state = "c1";
    }
    if (this.#state === "c1" && i < data.byteLength) {
      const take = Math.min(HANDSHAKE_SIZE - this.#c1Filled, data.byteLength - i);
      this.#c1.set(data.subarray(i, i + take), this.#c1Filled);
      this.#c1Filled += take;
      i += take;
      if (this.#c1Filled === HANDSHAKE_SIZE) {
        reply = this.#answer();
        this.#state = "c2";
      }
    }
    if (this.#state === "c2" && i < data.byteLength) {
      const take = Math.min(HANDSHAKE_SIZE - this.#c2Filled, data.byteLength - i);
      this.#c2Filled += take;
      i += take;
      if (this.#c2Filled === HANDSHAKE_SIZE) this.#state = "done";
    }
    const done = this.#state === "done";
    const rest = done && i < data.byteLength ? data.subarray(i) : undefined;
    return { ...(reply === undefined ? {} : { reply }), done, ...(rest === undefined ? {} : { rest }) };
  }

  #answer(): Uint8Array {
    const c1 = this.#c1;
    this.#clientVersion = `${c1[4]}.${c1[5]}.${c1[6]}.${c1[7]}`;
    const out = new Uint8Array(1 + 2 * HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = out.subarray(1 + HANDSHAKE_SIZE);
    new DataView(s1.buffer, s1.byteOffset, 4).setUint32(0, this.#entropy.now() >>> 0);
    s1.set(this.#entropy.random(HANDSHAKE_SIZE - 8), 8);
    const hasVersion = c1[4] !== 0 || c1[5] !== 0 || c1[6] !== 0 || c1[7] !== 0;
    const found = hasVersion ? findDigest(c1, PLAYER_KEY_OPEN) : undefined;
    if (found === undefined) {
      // Plain handshake: S1 has a zero version, S2 echoes C1.
      this.#mode = "plain";
      s2.set(c1);
      return out;
    }
    this.#mode = "digest";
    s1.set(SERVER_VERSION, 4);
    imprintDigest(s1, found.scheme, SERVER_KEY_OPEN);
    const clientDigest = c1.subarray(found.offset, found.offset + DIGEST_SIZE);
    s2.set(this.#entropy.random(HANDSHAKE_SIZE - DIGEST_SIZE), 0);
    const key = hmac(FLASH_MEDIA_SERVER_KEY, clientDigest);
    s2.set(hmac(key, s2.subarray(0, HANDSHAKE_SIZE - DIGEST_SIZE)), HANDSHAKE_SIZE - DIGEST_SIZE);
    return out;
  }
}

/** What the client learned about the server's handshake. */
export interface ClientHandshakeResult {
  /** S1 carried a digest signed with the Flash Media Server key. */
  readonly serverDigestValid: boolean;
  /** S2's signature matches the digest this client sent in C1. */
  readonly serverSignatureValid: boolean;
}

/** Version bytes this client puts in C1 for the digest handshake (what ffmpeg sends). */
const CLIENT_VERSION = [9, 0, 124, 2];

/**
 * The client side: `start()` gives C0+C1, `push()` reads S0+S1+S2 and answers C2 (signed with a
 * key derived from S1's digest when both sides used the digest variant, else a copy of S1).
 */
export class ClientHandshake {
  readonly #mode: HandshakeMode;
  readonly #entropy: HandshakeEntropy;
  readonly #c1 = new Uint8Array(HANDSHAKE_SIZE);
  #c1DigestOffset = -1;
  readonly #s = new Uint8Array(1 + 2 * HANDSHAKE_SIZE);
  #filled = 0;
  #result: ClientHandshakeResult | undefined;

  constructor(mode: HandshakeMode, entropy?: HandshakeEntropy) {
    this.#mode = mode;
    this.#entropy = entropy ?? defaultEntropy;
  }

  /** The outcome once S0+S1+S2 were read. */
  get result(): ClientHandshakeResult | undefined {
    return this.#result;
  }

  /** C0+C1. */
  start(): Uint8Array {
    const c1 = this.#c1;
    new DataView(c1.buffer).setUint32(0, 0);
    c1.set(this.#entropy.random(HANDSHAKE_SIZE - 8), 8);
    if (this.#mode === "digest") {
      c1.set(CLIENT_VERSION, 4);
      this.#c1DigestOffset = imprintDigest(c1, 0, PLAYER_KEY_OPEN);
    }
    const out = new Uint8Array(1 + HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    out.set(c1, 1);
    return out;
  }

  /** Feeds received bytes; the reply is C2. Throws `RTMP_HANDSHAKE_INVALID` on a bad S0. */
  push(data: Uint8Array): HandshakeStep {
    if (this.#result !== undefined) return { done: true, ...(data.byteLength > 0 ? { rest: data } : {}) };
    if (this.#filled === 0 && data.byteLength > 0 && data[0] !== RTMP_VERSION) {
      throw new RtmpError(
        "RTMP_HANDSHAKE_INVALID",
        `server answered with version byte ${data[0]} (expected 3)`,
      );
    }
    const take = Math.min(this.#s.byteLength - this.#filled, data.byteLength);
    this.#s.set(data.subarray(0, take), this.#filled);
    this.#filled += take;
    if (this.#filled < this.#s.byteLength) return { done: false };
    const s1 = this.#s.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = this.#s.subarray(1 + HANDSHAKE_SIZE);
    let c2: Uint8Array;
    let serverDigestValid = false;
    let serverSignatureValid = false;
    if (this.#mode === "digest") {
      const found = s1[4] !== 0 ? findDigest(s1, SERVER_KEY_OPEN) : undefined;
      serverDigestValid = found !== undefined;
      const clientDigest = this.#c1.subarray(this.#c1DigestOffset, this.#c1DigestOffset + DIGEST_SIZE);
      const s2Key = hmac(FLASH_MEDIA_SERVER_KEY, clientDigest);
      const expected = hmac(s2Key, s2.subarray(0, HANDSHAKE_SIZE - DIGEST_SIZE));
      serverSignatureValid = equal(expected, s2.subarray(HANDSHAKE_SIZE - DIGEST_SIZE));
      if (found !== undefined) {
        c2 = new Uint8Array(HANDSHAKE_SIZE);
        c2.set(this.#entropy.random(HANDSHAKE_SIZE - DIGEST_SIZE), 0);
        const key = hmac(FLASH_PLAYER_KEY, s1.subarray(found.offset, found.offset + DIGEST_SIZE));
        c2.set(hmac(key, c2.subarray(0, HANDSHAKE_SIZE - DIGEST_SIZE)), HANDSHAKE_SIZE - DIGEST_SIZE);
      } else {
        c2 = s1.slice();
      }
    } else {
      c2 = s1.slice();
    }
    this.#result = { serverDigestValid, serverSignatureValid };
    const rest = take < data.byteLength ? data.subarray(take) : undefined;
    return { reply: c2, done: true, ...(rest === undefined ? {} : { rest }) };
  }
}
