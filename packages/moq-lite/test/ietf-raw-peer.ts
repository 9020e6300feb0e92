/**
 * A hand-driven moq-transport client for tests: QMux frames built byte by byte over a plain `ws`
 * socket (the lite test's {@link RawPeer}), control messages encoded with this package's codecs
 * or written raw, and the server's messages parsed back from what it sent.
 *
 * Drafts 14 to 16 use the control stream (client bidi 0). Draft-17 opens its SETUP on client uni
 * 2 (the server's arrives on server uni 3) and every request on a new client bidi stream.
 */
import {
  decodeIetfMessage,
  decodeIetfServerSetup,
  decodeIetfSetup,
  encodeIetfClientSetup,
  encodeIetfMessage,
  encodeIetfSetup,
  type IetfMessage,
  IetfReader,
  IetfVersion,
  type KeyValuePairs,
} from "@lvqr/moq-lite";
import { RawPeer } from "./raw-peer.ts";

const { Draft14: D14, Draft17: D17 } = IetfVersion;

/** The QMux subprotocol that selects `version` (draft-14 takes the SETUP path on bare qmux-00). */
export function subprotocolFor(version: IetfVersion): string {
  return version === D14 ? "qmux-00" : `qmux-00.moqt-${version - 0xff000000}`;
}

/** Splits concatenated control messages; the last incomplete one stays in `rest`. */
export function parseMessages(
  bytes: Uint8Array,
  version: IetfVersion,
): { messages: IetfMessage[]; rest: number } {
  const messages: IetfMessage[] = [];
  let offset = 0;
  for (;;) {
    if (offset >= bytes.byteLength) break;
    try {
      const reader = new IetfReader(bytes.subarray(offset), "message", version);
      const type = reader.varint("type");
      const length = reader.bytes(2, "length");
      const size = (length[0]! << 8) | length[1]!;
      const header = bytes.byteLength - offset - reader.remaining;
      if (reader.remaining < size) break;
      messages.push(
        decodeIetfMessage(type, bytes.subarray(offset + header, offset + header + size), version),
      );
      offset += header + size;
    } catch {
      break;
    }
  }
  return { messages, rest: bytes.byteLength - offset };
}

/** A moq-transport client we drive by hand. */
export class IetfRawPeer {
  readonly raw: RawPeer;
  readonly version: IetfVersion;
  /** The server's setup options. */
  serverOptions: KeyValuePairs | undefined;
  #nextBidi = 4;
  #nextUni: number;

  private constructor(raw: RawPeer, version: IetfVersion) {
    this.raw = raw;
    this.version = version;
    // Client uni 2 carries the draft-17 SETUP.
    this.#nextUni = version === D17 ? 6 : 2;
  }

  /** Connects offering the subprotocol of `version` (no SETUP yet). */
  static async connect(url: string, version: IetfVersion): Promise<IetfRawPeer> {
    return new IetfRawPeer(await RawPeer.connect(url, [subprotocolFor(version)]), version);
  }

  /** Sends this side's SETUP (and, unless `wait` is false, waits for the server's). */
  async setup(maxRequestId = 64, wait = true): Promise<void> {
    const options = new Map<number, bigint | Uint8Array>([[0x02, BigInt(maxRequestId)]]);
    if (this.version === D17) {
      this.raw.stream(2, encodeIetfSetup(new Map([[0x07, new TextEncoder().encode("raw-peer")]])));
      if (!wait) return;
      await this.raw.waitFor(() => this.raw.streamData(3).data.byteLength >= 4, "server SETUP");
      const data = this.raw.streamData(3).data;
      this.serverOptions = decodeIetfSetup(data.subarray(4, 4 + ((data[2]! << 8) | data[3]!)));
      return;
    }
    const versions = this.version === D14 ? [D14] : [];
    this.raw.stream(0, encodeIetfClientSetup({ versions, options }, this.version));
    if (!wait) return;
    await this.raw.waitFor(() => this.raw.streamData(0).data.byteLength >= 3, "SERVER_SETUP");
    await this.raw.waitFor(() => {
      const data = this.raw.streamData(0).data;
      return data.byteLength >= 3 + ((data[1]! << 8) | data[2]!);
    }, "SERVER_SETUP body");
    const data = this.raw.streamData(0).data;
    this.serverOptions = decodeIetfServerSetup(
      data.subarray(3, 3 + ((data[1]! << 8) | data[2]!)),
      this.version,
    ).options;
  }

  /** Length of the server's SETUP message on its control stream (to skip it). */
  #serverSetupLength(): number {
    const stream = this.version === D17 ? 3 : 0;
    const data = this.raw.streamData(stream).data;
    const lead = this.version === D17 ? 2 : 1;
    if (data.byteLength < lead + 2) return data.byteLength;
    return lead + 2 + ((data[lead]! << 8) | data[lead + 1]!);
  }

  /** Sends a message on the control stream (drafts 14 to 16) or on the draft-17 control stream (GOAWAY). */
  control(msg: IetfMessage | Uint8Array): void {
    const bytes = msg instanceof Uint8Array ? msg : encodeIetfMessage(msg, this.version);
    this.raw.stream(this.version === D17 ? 2 : 0, bytes);
  }

  /** Opens a request: on the control stream, or (draft-17) a new bidi stream whose id is returned. */
  request(msg: IetfMessage | Uint8Array, fin = false): number {
    const bytes = msg instanceof Uint8Array ? msg : encodeIetfMessage(msg, this.version);
    if (this.version !== D17) {
      this.raw.stream(0, bytes);
      return 0;
    }
    const id = this.#nextBidi;
    this.#nextBidi += 4;
    this.raw.stream(id, bytes, fin);
    return id;
  }

  /** Opens a new client uni stream with `bytes`; returns its id. */
  uni(bytes: Uint8Array, fin = false): number {
    const id = this.#nextUni;
    this.#nextUni += 4;
    this.raw.stream(id, bytes, fin);
    return id;
  }

  /** Control messages the server sent: on the control stream (14 to 16) or on request stream `stream` (17). */
  messages(stream?: number): IetfMessage[] {
    const id = stream ?? (this.version === D17 ? 3 : 0);
    const data = this.raw.streamData(id).data;
    const skip = stream === undefined ? this.#serverSetupLength() : 0;
    return parseMessages(data.subarray(Math.min(skip, data.byteLength)), this.version).messages;
  }

  /** Waits for a message from the server matching `match`. */
  async waitMessage(
    match: (msg: IetfMessage) => boolean,
    what: string,
    stream?: number,
    timeoutMs = 5000,
  ): Promise<IetfMessage> {
    let found: IetfMessage | undefined;
    await this.raw.waitFor(
      () => {
        found = this.messages(stream).find(match);
        return found !== undefined;
      },
      what,
      timeoutMs,
    );
    return found!;
  }

  /**
   * Waits for a request the server opened that matches `match`: on the control stream (drafts 14
   * to 16, stream 0) or on a server bidi stream of its own (draft-17). Answer it with {@link reply}.
   */
  async incoming(
    match: (msg: IetfMessage) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<{ stream: number; msg: IetfMessage }> {
    let found: { stream: number; msg: IetfMessage } | undefined;
    await this.raw.waitFor(
      () => {
        if (this.version !== D17) {
          const msg = this.messages().find(match);
          if (msg) found = { stream: 0, msg };
          return msg !== undefined;
        }
        const ids = new Set(this.raw.frames("stream").map((f) => f.id));
        for (const id of ids) {
          if (id % 4 !== 1) continue;
          const msg = this.messages(id).find(match);
          if (msg) {
            found = { stream: id, msg };
            return true;
          }
        }
        return false;
      },
      what,
      timeoutMs,
    );
    return found!;
  }

  /** Answers a request from {@link incoming} on its stream. */
  reply(stream: number, msg: IetfMessage | Uint8Array): void {
    const bytes = msg instanceof Uint8Array ? msg : encodeIetfMessage(msg, this.version);
    this.raw.stream(this.version === D17 ? stream : 0, bytes);
  }

  /** The CONNECTION_CLOSE the server sent, if any. */
  closeFrame(): { code: number; reason: string } | undefined {
    const frame = this.raw.frames("connection_close")[0];
    return frame ? { code: frame.code, reason: frame.reason } : undefined;
  }

  close(): void {
    this.raw.close();
  }
}
