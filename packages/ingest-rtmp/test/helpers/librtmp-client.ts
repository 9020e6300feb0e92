/**
 * A scripted client that writes bytes the way OBS's librtmp does: the FP9 digest handshake, the
 * FMLE command sequence, and librtmp's header compression (type 0 for the first packet and for
 * script data, type 1 for later media on the shared channel 4, type 2/3 when size/type/timestamp
 * repeat), all on chunk stream 4 for media like RTMP_Write.
 */
import { createHmac, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import {
  AmfEcmaArray,
  type AmfObject,
  type AmfValue,
  ChunkStreamReader,
  encodeAmf0,
  parseCommand,
  type RtmpMessage,
} from "../../src/index.ts";

const SUFFIX = Buffer.from("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae", "hex");
const FP_OPEN = Buffer.from("Genuine Adobe Flash Player 001");
const FMS_OPEN = Buffer.from("Genuine Adobe Flash Media Server 001");
const FP = Buffer.concat([FP_OPEN, SUFFIX]);

function digestOffset(p: Uint8Array, base: number): number {
  return ((p[base]! + p[base + 1]! + p[base + 2]! + p[base + 3]!) % 728) + base + 4;
}
function hmacGap(p: Uint8Array, at: number, key: Uint8Array): Buffer {
  return createHmac("sha256", key)
    .update(p.subarray(0, at))
    .update(p.subarray(at + 32, 1536))
    .digest();
}

type HeaderType = 0 | 1 | 2 | 3;
interface Packet {
  channel: number;
  headerType: HeaderType;
  type: number;
  timestamp: number;
  streamId: number;
  body: Uint8Array;
}

export class LibrtmpLikeClient {
  readonly socket: Socket;
  readonly received: RtmpMessage[] = [];
  readonly #reader = new ChunkStreamReader();
  #pendingHandshake: Buffer = Buffer.alloc(0);
  #handshaking = true;
  #onHandshake: (() => void) | undefined;
  #waiters: (() => void)[] = [];
  readonly #prev = new Map<number, Packet>();
  #chunkSize = 128;
  #invokes = 0;
  closed = false;
  serverDigestVerified = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => this.#onData(d));
    socket.on("close", () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on("error", () => {});
  }

  static async connect(port: number): Promise<LibrtmpLikeClient> {
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new LibrtmpLikeClient(socket);
    await client.#handshake();
    return client;
  }

  async #handshake(): Promise<void> {
    const c1 = randomBytes(1536);
    c1.writeUInt32BE(0, 0);
    c1.set([128, 0, 7, 2], 4); // librtmp's FP9 client version
    const at = digestOffset(c1, 8);
    c1.set(hmacGap(c1, at, FP_OPEN), at);
    const done = new Promise<void>((resolve) => {
      this.#onHandshake = resolve;
    });
    this.#c1 = c1;
    this.socket.write(Buffer.concat([Buffer.of(3), c1]));
    await done;
  }

  #c1: Buffer = Buffer.alloc(0);

  #onData(d: Buffer): void {
    if (this.#handshaking) {
      this.#pendingHandshake = Buffer.concat([this.#pendingHandshake, d]);
      if (this.#pendingHandshake.byteLength < 3073) return;
      const s1 = this.#pendingHandshake.subarray(1, 1537);
      const s2 = this.#pendingHandshake.subarray(1537, 3073);
      // librtmp verifies the server digest in S1 (trying both positions) and S2's signature.
      let s1At = -1;
      for (const base of [8, 772]) {
        const at = digestOffset(s1, base);
        if (hmacGap(s1, at, FMS_OPEN).equals(s1.subarray(at, at + 32))) s1At = at;
      }
      const c1At = digestOffset(this.#c1, 8);
      const s2Key = createHmac("sha256", Buffer.concat([FMS_OPEN, SUFFIX]))
        .update(this.#c1.subarray(c1At, c1At + 32))
        .digest();
      const s2Sig = createHmac("sha256", s2Key).update(s2.subarray(0, 1504)).digest();
      this.serverDigestVerified = s1At >= 0 && s2Sig.equals(s2.subarray(1504));
      const c2 = randomBytes(1536);
      if (s1At >= 0) {
        const key = createHmac("sha256", FP)
          .update(s1.subarray(s1At, s1At + 32))
          .digest();
        c2.set(createHmac("sha256", key).update(c2.subarray(0, 1504)).digest(), 1504);
      }
      this.socket.write(c2);
      this.#handshaking = false;
      const rest = this.#pendingHandshake.subarray(3073);
      this.#onHandshake?.();
      if (rest.byteLength === 0) return;
      d = rest;
    }
    this.#reader.push(d);
    for (let m = this.#reader.next(); m !== null; m = this.#reader.next()) this.received.push(m);
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Commands received so far: [name, transactionId, object, ...args]. */
  commands(): {
    name: string;
    transactionId: number;
    object: AmfValue;
    args: AmfValue[];
    streamId: number;
  }[] {
    return this.received
      .filter((m) => m.typeId === 20)
      .map((m) => ({ ...parseCommand(m.payload, false), streamId: m.streamId }));
  }

  async waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.closed) throw new Error("connection closed");
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** RTMP_SendPacket: librtmp's header compression and chunking. */
  send(packet: Packet): void {
    const prev = this.#prev.get(packet.channel);
    let headerType = packet.headerType;
    let last = 0;
    if (prev !== undefined && headerType !== 0) {
      if (prev.body.byteLength === packet.body.byteLength && prev.type === packet.type && headerType === 1)
        headerType = 2;
      if (prev.timestamp === packet.timestamp && headerType === 2) headerType = 3;
      last = prev.timestamp;
    }
    const t = packet.timestamp - last;
    const parts: number[] = [(headerType << 6) | packet.channel];
    const ext = t >= 0xffffff;
    if (headerType <= 2) {
      const f = ext ? 0xffffff : t;
      parts.push(f >>> 16, (f >>> 8) & 0xff, f & 0xff);
    }
    if (headerType <= 1) {
      const n = packet.body.byteLength;
      parts.push(n >>> 16, (n >>> 8) & 0xff, n & 0xff, packet.type);
    }
    if (headerType === 0)
      parts.push(
        packet.streamId & 0xff,
        (packet.streamId >>> 8) & 0xff,
        (packet.streamId >>> 16) & 0xff,
        packet.streamId >>> 24,
      );
    const extBytes = ext ? [t >>> 24, (t >>> 16) & 0xff, (t >>> 8) & 0xff, t & 0xff] : [];
    parts.push(...extBytes);
    const out: number[] = [...parts];
    for (let o = 0; o < packet.body.byteLength; o += this.#chunkSize) {
      if (o > 0) out.push(0xc0 | packet.channel, ...extBytes);
      out.push(...packet.body.subarray(o, o + this.#chunkSize));
    }
    this.socket.write(Uint8Array.from(out));
    this.#prev.set(packet.channel, { ...packet, headerType });
  }

  setChunkSize(size: number): void {
    this.send({
      channel: 2,
      headerType: 0,
      type: 1,
      timestamp: 0,
      streamId: 0,
      body: Uint8Array.of(size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff),
    });
    this.#chunkSize = size;
  }

  /** An AMF0 invoke; connect and publish go with type 0 headers, the rest with type 1 (as librtmp). */
  invoke(name: string, object: AmfValue, args: AmfValue[], channel = 3, streamId = 0): number {
    const txn = ++this.#invokes;
    const headerType: HeaderType = name === "connect" || name === "publish" ? 0 : 1;
    this.send({
      channel,
      headerType,
      type: 20,
      timestamp: 0,
      streamId,
      body: encodeAmf0([name, txn, object, ...args]),
    });
    return txn;
  }

  /** RTMP_Write of an FLV tag: channel 4; type 0 when the timestamp is 0 or for script data. */
  write(type: 8 | 9 | 18, timestamp: number, body: Uint8Array, streamId: number): void {
    const headerType: HeaderType = type === 18 || timestamp === 0 ? 0 : 1;
    this.send({ channel: 4, headerType, type, timestamp, streamId, body });
  }

  metadata(streamId: number, values: AmfObject): void {
    this.write(18, 0, encodeAmf0(["@setDataFrame", "onMetaData", new AmfEcmaArray(values)]), streamId);
  }

  close(): void {
    this.socket.destroy();
  }
}
