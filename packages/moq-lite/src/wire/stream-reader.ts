/**
 * Pull-based reading of moq-lite messages from a transport stream. Chunks are kept as received;
 * a message body that lies within one chunk is returned as a view, and only a body split across
 * chunks is copied (once, into a buffer of exactly its size). Frame payloads are handed out
 * chunk by chunk without copying. Every length is checked against a bound before any buffering.
 */
import { ProtocolViolationError } from "../error.ts";
import type { RecvStream } from "../transport.ts";
import {
  leadingOnesLength,
  MAX_SAFE_VARINT,
  readLeadingOnesAt,
  readVarintAt,
  varintLength,
} from "./varint.ts";

/** Reads varints, raw bytes and size-prefixed messages from a {@link RecvStream}. */
export class StreamReader {
  readonly #stream: RecvStream;
  readonly #what: string;
  #chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in `#chunks[0]`. */
  #offset = 0;
  #buffered = 0;
  #ended = false;

  /** A reader of `stream`; `what` names the stream in error messages (e.g. "subscribe stream"). */
  constructor(stream: RecvStream, what: string) {
    this.#stream = stream;
    this.#what = what;
  }

  /** The underlying stream. */
  get stream(): RecvStream {
    return this.#stream;
  }

  /** Bytes received and not consumed yet. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Reads one more chunk; false at the end of the stream. (A `then`, not a suspended function.) */
  #fill(): Promise<boolean> {
    if (this.#ended) return Promise.resolve(false);
    return this.#stream.read().then(this.#keep);
  }

  readonly #keep = (chunk: Uint8Array | undefined): boolean => {
    if (chunk === undefined) {
      this.#ended = true;
      return false;
    }
    if (chunk.byteLength > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
    }
    return true;
  };

  async #ensure(n: number, field: string): Promise<void> {
    while (this.#buffered < n) {
      if (!(await this.#fill())) {
        throw new ProtocolViolationError(
          `${this.#what}: stream ended inside ${field} (needs ${n} byte(s), ${this.#buffered} left)`,
          "MOQ_DECODE",
        );
      }
    }
  }

  /** True at a clean end of stream (FIN with nothing left); waits for data otherwise. */
  async done(): Promise<boolean> {
    while (this.#buffered === 0) {
      if (!(await this.#fill())) return true;
    }
    return false;
  }

  /** Takes `n` buffered bytes: a view when they lie in one chunk, else one copy. */
  #take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.byteLength - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#advance(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(chunk.byteLength - this.#offset, n - filled);
      out.set(chunk.subarray(this.#offset, this.#offset + count), filled);
      filled += count;
      this.#advance(count);
    }
    return out;
  }

  #advance(n: number): void {
    this.#buffered -= n;
    this.#offset += n;
    while (this.#chunks.length > 0 && this.#offset >= this.#chunks[0]!.byteLength) {
      this.#offset -= this.#chunks[0]!.byteLength;
      this.#chunks.shift();
    }
  }

  #peekByte(): number {
    return this.#chunks[0]![this.#offset]!;
  }

  /** One byte. */
  async u8(field: string): Promise<number> {
    await this.#ensure(1, field);
    const value = this.#peekByte();
    this.#advance(1);
    return value;
  }

  /** A big-endian u16. */
  async u16(field: string): Promise<number> {
    await this.#ensure(2, field);
    const bytes = this.#take(2);
    return (bytes[0]! << 8) | bytes[1]!;
  }

  /** A varint up to `max` (default 2^53-1). */
  async varint(field: string, max: number = MAX_SAFE_VARINT): Promise<number> {
    await this.#ensure(1, field);
    const length = varintLength(this.#peekByte());
    await this.#ensure(length, field);
    const value = readVarintAt(this.#take(length), 0);
    if (value < 0 || value > max) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} ${value < 0 ? "exceeds 2^53-1" : `${value} exceeds the limit ${max}`}`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    return value;
  }

  /** A leading-ones varint (moq-transport draft-17) up to `max` (default 2^53-1). */
  async leadingOnes(field: string, max: number = MAX_SAFE_VARINT): Promise<number> {
    await this.#ensure(1, field);
    const length = leadingOnesLength(this.#peekByte());
    if (length === 0) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} uses the reserved varint prefix 0b1111110`,
        "MOQ_DECODE",
      );
    }
    await this.#ensure(length, field);
    const value = readLeadingOnesAt(this.#take(length), 0);
    if (value < 0 || value > max) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} ${value < 0 ? "exceeds 2^53-1" : `${value} exceeds the limit ${max}`}`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    return value;
  }

  /** Exactly `n` bytes (a view when possible). */
  async bytes(n: number, field: string): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    await this.#ensure(n, field);
    return this.#take(n);
  }

  /** A size-prefixed message body of at most `maxSize` bytes. */
  async message(what: string, maxSize: number): Promise<Uint8Array> {
    const size = await this.varint(`${what} size`, maxSize);
    return this.bytes(size, what);
  }

  /** Like {@link message}, but returns undefined at a clean end of stream before the message. */
  async messageOrEnd(what: string, maxSize: number): Promise<Uint8Array | undefined> {
    if (await this.done()) return undefined;
    return this.message(what, maxSize);
  }

  /**
   * Up to `max` bytes of what is available (waiting for at least one), as a view; for streaming
   * a frame's payload without copying. Throws when the stream ends first.
   */
  async chunk(max: number, field: string): Promise<Uint8Array> {
    await this.#ensure(1, field);
    const first = this.#chunks[0]!;
    const n = Math.min(max, first.byteLength - this.#offset);
    const out = first.subarray(this.#offset, this.#offset + n);
    this.#advance(n);
    return out;
  }

  /** Stops the underlying stream. */
  stop(code: number): void {
    this.#chunks = [];
    this.#buffered = 0;
    this.#offset = 0;
    this.#stream.stop(code);
  }
}
