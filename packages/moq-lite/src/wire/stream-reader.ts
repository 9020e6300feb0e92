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

/** An attempt's answer when more bytes are needed. */
const MORE: unique symbol = Symbol("more");

/** Reads varints, raw bytes and size-prefixed messages from a {@link RecvStream}. */
export class StreamReader {
  readonly #stream: RecvStream;
  readonly #what: string;
  #chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in `#chunks[0]`. */
  #offset = 0;
  #buffered = 0;
  #ended = false;
  /** What the pending read is missing (for the "ended inside" error). */
  #wantBytes = 0;
  #wantField = "";

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

  /**
   * Runs `attempt` on what is buffered, refilling until it gives an answer; when the stream ends
   * first, that is an error naming what was cut (an attempt that accepts the end answers itself).
   * No suspended function is left while waiting: an idle reader (a control stream waits for
   * minutes) holds one pending promise and its callback.
   */
  #until<T>(attempt: (this: StreamReader) => T | typeof MORE): Promise<T> {
    try {
      const result = attempt.call(this);
      if (result !== MORE) return Promise.resolve(result);
      if (this.#ended) this.#endedInside();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const retry = (): void => {
        try {
          const result = attempt.call(this);
          if (result !== MORE) resolve(result);
          else if (this.#ended) this.#endedInside();
          else this.#fill().then(retry, reject);
        } catch (err) {
          reject(err);
        }
      };
      this.#fill().then(retry, reject);
    });
  }

  /** True when `n` bytes are buffered; otherwise notes what is missing, for {@link #endedInside}. */
  #have(n: number, field: string): boolean {
    if (this.#buffered >= n) return true;
    this.#wantBytes = n;
    this.#wantField = field;
    return false;
  }

  #endedInside(): never {
    throw new ProtocolViolationError(
      `${this.#what}: stream ended inside ${this.#wantField} (needs ${this.#wantBytes} byte(s), ${this.#buffered} left)`,
      "MOQ_DECODE",
    );
  }

  /** True at a clean end of stream (FIN with nothing left); waits for data otherwise. */
  done(): Promise<boolean> {
    return this.#until(this.#doneNow);
  }

  #doneNow(): boolean | typeof MORE {
    if (this.#buffered > 0) return false;
    return this.#ended ? true : MORE;
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

  /** A varint from the buffer if it is all there (MORE if not); throws when above `max`. */
  #varintNow(field: string, max: number): number | typeof MORE {
    if (!this.#have(1, field)) return MORE;
    const length = varintLength(this.#peekByte());
    if (!this.#have(length, field)) return MORE;
    return this.#checked(readVarintAt(this.#take(length), 0), field, max);
  }

  #checked(value: number, field: string, max: number): number {
    if (value < 0 || value > max) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} ${value < 0 ? "exceeds 2^53-1" : `${value} exceeds the limit ${max}`}`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    return value;
  }

  /** One byte. */
  u8(field: string): Promise<number> {
    return this.#until(() => {
      if (!this.#have(1, field)) return MORE;
      const value = this.#peekByte();
      this.#advance(1);
      return value;
    });
  }

  /** A big-endian u16. */
  u16(field: string): Promise<number> {
    return this.#until(() => {
      if (!this.#have(2, field)) return MORE;
      const bytes = this.#take(2);
      return (bytes[0]! << 8) | bytes[1]!;
    });
  }

  /** A varint up to `max` (default 2^53-1). */
  varint(field: string, max: number = MAX_SAFE_VARINT): Promise<number> {
    return this.#until(() => this.#varintNow(field, max));
  }

  /** A leading-ones varint (moq-transport draft-17) up to `max` (default 2^53-1). */
  leadingOnes(field: string, max: number = MAX_SAFE_VARINT): Promise<number> {
    return this.#until(() => {
      if (!this.#have(1, field)) return MORE;
      const length = leadingOnesLength(this.#peekByte());
      if (length === 0) {
        throw new ProtocolViolationError(
          `${this.#what}: ${field} uses the reserved varint prefix 0b1111110`,
          "MOQ_DECODE",
        );
      }
      if (!this.#have(length, field)) return MORE;
      return this.#checked(readLeadingOnesAt(this.#take(length), 0), field, max);
    });
  }

  /** Exactly `n` bytes (a view when possible). */
  bytes(n: number, field: string): Promise<Uint8Array> {
    if (n === 0) return Promise.resolve(new Uint8Array(0));
    return this.#until(() => (this.#have(n, field) ? this.#take(n) : MORE));
  }

  /** A size-prefixed message body of at most `maxSize` bytes. */
  message(what: string, maxSize: number): Promise<Uint8Array> {
    return this.#message(what, maxSize, false) as Promise<Uint8Array>;
  }

  /** Like {@link message}, but returns undefined at a clean end of stream before the message. */
  messageOrEnd(what: string, maxSize: number): Promise<Uint8Array | undefined> {
    return this.#message(what, maxSize, true);
  }

  /** Reads the size, then the body; with `endOk`, an end before the first byte gives undefined. */
  #message(what: string, maxSize: number, endOk: boolean): Promise<Uint8Array | undefined> {
    let size = -1;
    return this.#until<Uint8Array | undefined>(() => {
      if (size < 0) {
        if (endOk && this.#ended && this.#buffered === 0) return undefined;
        const value = this.#varintNow(`${what} size`, maxSize);
        if (value === MORE) return MORE;
        size = value;
      }
      if (size === 0) return new Uint8Array(0);
      return this.#have(size, what) ? this.#take(size) : MORE;
    });
  }

  /**
   * Up to `max` bytes of what is available (waiting for at least one), as a view; for streaming
   * a frame's payload without copying. Throws when the stream ends first.
   */
  chunk(max: number, field: string): Promise<Uint8Array> {
    return this.#until(() => {
      if (!this.#have(1, field)) return MORE;
      const first = this.#chunks[0]!;
      const n = Math.min(max, first.byteLength - this.#offset);
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#advance(n);
      return out;
    });
  }

  /** Stops the underlying stream. */
  stop(code: number): void {
    this.#chunks = [];
    this.#buffered = 0;
    this.#offset = 0;
    this.#stream.stop(code);
  }
}
