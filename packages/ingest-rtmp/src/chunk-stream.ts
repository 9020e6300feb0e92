/**
 * The RTMP chunk stream (RTMP specification §5.3): a pull-based reader that reassembles messages
 * from chunks with all four header types and extended timestamps, and a writer that splits
 * messages into chunks in one buffer.
 *
 * The reader is bounded: a message longer than `maxMessageSize` is refused at its header, before
 * any payload is buffered; at most `maxChunkStreams` chunk streams may be in use; reassembly
 * buffers grow with the bytes actually received and, together with unparsed input, never exceed
 * `budgetBytes`. A message that arrives in one chunk within one received buffer is handed out as
 * a zero-copy view of that buffer.
 */
import { RtmpError } from "./errors.ts";

/** RTMP message type ids. */
export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;

/** One reassembled RTMP message. */
export interface RtmpMessage {
  readonly chunkStreamId: number;
  readonly typeId: number;
  /** Message stream id (0 for the connection's control and NetConnection commands). */
  readonly streamId: number;
  /** Absolute message timestamp in milliseconds, modulo 2^32. */
  readonly timestamp: number;
  readonly payload: Uint8Array;
}

/** Limits of a {@link ChunkStreamReader}. */
export interface ChunkStreamLimits {
  /** Largest Set Chunk Size the peer may announce (default 16 MiB). */
  readonly maxChunkSize?: number;
  /** Largest message length a header may declare (default 8 MiB). */
  readonly maxMessageSize?: number;
  /** Chunk streams (chunk stream ids) that may be in use at once (default 64). */
  readonly maxChunkStreams?: number;
  /** Bytes of reassembly buffers plus unparsed input allowed at once (default 16 MiB). */
  readonly budgetBytes?: number;
}

/** Defaults of the chunk stream limits. */
export const DEFAULT_CHUNK_LIMITS: Required<ChunkStreamLimits> = {
  maxChunkSize: 16 * 1024 * 1024,
  maxMessageSize: 8 * 1024 * 1024,
  maxChunkStreams: 64,
  budgetBytes: 16 * 1024 * 1024,
};

/** The chunk size both sides use until a Set Chunk Size message. */
export const DEFAULT_CHUNK_SIZE = 128;
/** Highest chunk stream id the 3-byte basic header can carry. */
export const MAX_CHUNK_STREAM_ID = 65599;

const TWO_32 = 0x1_0000_0000;
const EMPTY = new Uint8Array(0);
// Initial capacity of a multi-chunk reassembly buffer; it doubles up to the declared length, so
// memory follows the bytes actually received rather than what a header claims.
const INITIAL_REASSEMBLY = 64 * 1024;

class ChunkStreamState {
  readonly id: number;
  timestamp = 0;
  // The timestamp field of the last type 0/1/2 header: a delta for types 1/2, the absolute value
  // for type 0 (a type-3 chunk that starts a new message adds it, as ffmpeg's writer expects).
  delta = 0;
  length = 0;
  typeId = 0;
  streamId = 0;
  extended = false;
  extendedValue = 0;
  inProgress = false;
  buffer: Uint8Array | undefined = undefined;
  filled = 0;

  constructor(id: number) {
    this.id = id;
  }
}

/** Validates a chunk size announced by a peer; returns an error message or undefined. */
function chunkSizeProblem(size: number, max: number): string | undefined {
  if (size >= 1 && size <= max) return undefined;
  return `RTMP chunk size ${size} is invalid (must be 1..${max})`;
}

/**
 * Reassembles RTMP messages from received bytes. `push()` the bytes as they arrive, then call
 * `next()` until it returns null. Set Chunk Size and Abort are applied as they are read (and also
 * returned, so the caller can see them). Every violation throws an {@link RtmpError}.
 */
export class ChunkStreamReader {
  readonly #maxChunkSize: number;
  readonly #maxMessageSize: number;
  readonly #maxChunkStreams: number;
  readonly #budget: number;

  readonly #queue: Uint8Array[] = [];
  #head = 0;
  #available = 0;
  #reserved = 0;

  #chunkSize = DEFAULT_CHUNK_SIZE;
  readonly #streams = new Map<number, ChunkStreamState>();
  #last: ChunkStreamState | undefined;
  #current: ChunkStreamState | undefined;
  #chunkLeft = 0;
  #ready: RtmpMessage | undefined;
  readonly #scratch = new Uint8Array(32);

  /** Bytes consumed from the input so far. */
  bytesRead = 0;

  constructor(limits?: ChunkStreamLimits) {
    this.#maxChunkSize = limits?.maxChunkSize ?? DEFAULT_CHUNK_LIMITS.maxChunkSize;
    this.#maxMessageSize = limits?.maxMessageSize ?? DEFAULT_CHUNK_LIMITS.maxMessageSize;
    this.#maxChunkStreams = limits?.maxChunkStreams ?? DEFAULT_CHUNK_LIMITS.maxChunkStreams;
    this.#budget = limits?.budgetBytes ?? DEFAULT_CHUNK_LIMITS.budgetBytes;
  }

  /** The chunk size the peer currently uses. */
  get chunkSize(): number {
    return this.#chunkSize;
  }

  /** Bytes held: unparsed input plus reassembly buffers (bounded by `budgetBytes`). */
  get bufferedBytes(): number {
    return this.#available + this.#reserved;
  }

  /** Chunk streams currently known. */
  get chunkStreamCount(): number {
    return this.#streams.size;
  }

  /** Queues received bytes (kept by reference; the caller must not reuse the buffer). */
  push(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    this.#queue.push(data);
    this.#available += data.byteLength;
    this.#checkBudget(0);
  }

  /** The next complete message, or null when more bytes are needed. */
  next(): RtmpMessage | null {
    for (;;) {
      if (this.#ready !== undefined) {
        const m = this.#ready;
        this.#ready = undefined;
        return m;
      }
      if (this.#current !== undefined) {
        const m = this.#readPayload(this.#current);
        if (m !== null) return m;
        if (this.#current !== undefined) return null;
        continue;
      }
      if (!this.#readHeader()) return null;
    }
  }

  #checkBudget(extra: number): void {
    const total = this.#available + this.#reserved + extra;
    if (total > this.#budget) {
      throw new RtmpError(
        "RTMP_BUDGET_EXCEEDED",
        `RTMP connection would buffer ${total} bytes, over its budget of ${this.#budget} bytes`,
      );
    }
  }

  #consume(n: number): void {
    this.#available -= n;
    this.bytesRead += n;
    while (n > 0) {
      const head = this.#queue[0]!;
      const left = head.byteLength - this.#head;
      if (n < left) {
        this.#head += n;
        return;
      }
      n -= left;
      this.#queue.shift();
      this.#head = 0;
    }
  }

  // Copies up to `n` bytes from the queue start into `target` without consuming them.
  #peekInto(target: Uint8Array, n: number): void {
    let copied = 0;
    let offset = this.#head;
    for (let i = 0; copied < n && i < this.#queue.length; i++) {
      const buf = this.#queue[i]!;
      const take = Math.min(n - copied, buf.byteLength - offset);
      target.set(buf.subarray(offset, offset + take), copied);
      copied += take;
      offset = 0;
    }
  }

  #readHeader(): boolean {
    const available = this.#available;
    if (available === 0) return false;
    // The longest header is 3 + 11 + 4 bytes; parse from the head buffer when it holds that
    // much, otherwise from a small copy that spans the queued buffers.
    const want = Math.min(available, 18);
    let buf: Uint8Array;
    let start: number;
    const head = this.#queue[0]!;
    if (head.byteLength - this.#head >= want) {
      buf = head;
      start = this.#head;
    } else {
      this.#peekInto(this.#scratch, want);
      buf = this.#scratch;
      start = 0;
    }
    const limit = start + want;
    const b0 = buf[start]!;
    const fmt = b0 >>> 6;
    let csid = b0 & 0x3f;
    let p = start + 1;
    if (csid === 0) {
      if (p + 1 > limit) return false;
      csid = buf[p]! + 64;
      p += 1;
    } else if (csid === 1) {
      if (p + 2 > limit) return false;
      csid = buf[p]! + buf[p + 1]! * 256 + 64;
      p += 2;
    }
    const headerLength = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (p + headerLength > limit) return false;

    let state = this.#last !== undefined && this.#last.id === csid ? this.#last : this.#streams.get(csid);
    if (state === undefined) {
      if (fmt >= 2) {
        throw new RtmpError(
          "RTMP_CHUNK_STREAM_INVALID",
          `RTMP type ${fmt} chunk on chunk stream ${csid}, which has no previous message header`,
        );
      }
      if (this.#streams.size >= this.#maxChunkStreams) {
        throw new RtmpError(
          "RTMP_TOO_MANY_CHUNK_STREAMS",
          `RTMP peer opened more than ${this.#maxChunkStreams} chunk streams (maxChunkStreams)`,
        );
      }
      state = new ChunkStreamState(csid);
      this.#streams.set(csid, state);
    }

    let field = 0;
    let length = state.length;
    let typeId = state.typeId;
    let streamId = state.streamId;
    if (fmt < 3) {
      field = (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!;
      if (fmt <= 1) {
        length = (buf[p + 3]! << 16) | (buf[p + 4]! << 8) | buf[p + 5]!;
        typeId = buf[p + 6]!;
        if (fmt === 0) {
          streamId = (buf[p + 7]! | (buf[p + 8]! << 8) | (buf[p + 9]! << 16) | (buf[p + 10]! << 24)) >>> 0;
        }
      }
      p += headerLength;
    }
    const extended = fmt < 3 ? field === 0xffffff : state.extended;
    let extendedValue = 0;
    if (extended) {
      if (p + 4 > limit) return false;
      extendedValue = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
      // A continuation chunk repeats the extended timestamp (ffmpeg, librtmp); some encoders omit
      // it there, so four bytes that differ from it are payload, not a timestamp.
      if (fmt === 3 && state.inProgress && extendedValue !== state.extendedValue) {
        extendedValue = state.extendedValue;
      } else {
        p += 4;
      }
    }
    this.#consume(p - start);

    let newMessage = true;
    switch (fmt) {
      case 0: {
        const ts = extended ? extendedValue : field;
        state.timestamp = ts;
        state.delta = ts;
        state.extended = extended;
        state.extendedValue = extendedValue;
        break;
      }
      case 1:
      case 2: {
        const delta = extended ? extendedValue : field;
        state.delta = delta;
        state.timestamp = (state.timestamp + delta) % TWO_32;
        state.extended = extended;
        state.extendedValue = extendedValue;
        break;
      }
      default:
        if (state.inProgress) newMessage = false;
        else state.timestamp = (state.timestamp + state.delta) % TWO_32;
    }
    state.length = length;
    state.typeId = typeId;
    state.streamId = streamId;

    if (newMessage) {
      if (state.inProgress) this.#dropPartial(state); // A new header abandons an unfinished message.
      if (length > this.#maxMessageSize) {
        throw new RtmpError(
          "RTMP_MESSAGE_TOO_LARGE",
          `RTMP message of ${length} bytes on chunk stream ${csid} exceeds the ${this.#maxMessageSize} byte limit (maxMessageSize)`,
        );
      }
      if (length === 0) {
        this.#ready = { chunkStreamId: csid, typeId, streamId, timestamp: state.timestamp, payload: EMPTY };
        return true;
      }
      state.inProgress = true;
      state.filled = 0;
    }
    const left = state.length - state.filled;
    this.#chunkLeft = Math.min(left, this.#chunkSize);
    this.#current = state;
    return true;
  }

  #dropPartial(state: ChunkStreamState): void {
    if (state.buffer !== undefined) this.#reserved -= state.buffer.byteLength;
    state.buffer = undefined;
    state.filled = 0;
    state.inProgress = false;
  }

  #readPayload(state: ChunkStreamState): RtmpMessage | null {
    const want = this.#chunkLeft;
    if (state.filled === 0 && want === state.length) {
      const head = this.#queue[0];
      if (head !== undefined && head.byteLength - this.#head >= want) {
        // Whole message in one chunk inside one received buffer: hand out a view.
        const payload = head.subarray(this.#head, this.#head + want);
        this.#consume(want);
        this.#chunkLeft = 0;
        this.#current = undefined;
        state.inProgress = false;
        return this.#complete(state, payload);
      }
    }
    if (this.#available === 0) return null;
    const n = Math.min(want, this.#available);
    let buffer = state.buffer;
    const needed = state.filled + n;
    if (buffer === undefined || buffer.byteLength < needed) {
      const capacity = Math.min(
        state.length,
        Math.max(needed, INITIAL_REASSEMBLY, buffer === undefined ? 0 : buffer.byteLength * 2),
      );
      const old = buffer === undefined ? 0 : buffer.byteLength;
      // The n bytes move from the input queue into the buffer, so they are not counted twice.
      this.#checkBudget(capacity - old - n);
      const grown = Buffer.allocUnsafe(capacity);
      if (buffer !== undefined && state.filled > 0) grown.set(buffer.subarray(0, state.filled));
      this.#reserved += capacity - old;
      buffer = grown;
      state.buffer = grown;
    }
    // Copy n bytes from the queue into the reassembly buffer.
    let copied = 0;
    while (copied < n) {
      const head = this.#queue[0]!;
      const take = Math.min(n - copied, head.byteLength - this.#head);
      buffer.set(head.subarray(this.#head, this.#head + take), state.filled + copied);
      copied += take;
      this.#consume(take);
    }
    state.filled += n;
    this.#chunkLeft -= n;
    if (this.#chunkLeft > 0) return null;
    this.#current = undefined;
    if (state.filled < state.length) return null;
    const payload = buffer.byteLength === state.length ? buffer : buffer.subarray(0, state.length);
    this.#reserved -= buffer.byteLength;
    state.buffer = undefined;
    state.filled = 0;
    state.inProgress = false;
    return this.#complete(state, payload);
  }

  #complete(state: ChunkStreamState, payload: Uint8Array): RtmpMessage {
    const message: RtmpMessage = {
      chunkStreamId: state.id,
      typeId: state.typeId,
      streamId: state.streamId,
      timestamp: state.timestamp,
      payload,
    };
    if (state.typeId === MessageType.SetChunkSize) this.#applySetChunkSize(payload);
    else if (state.typeId === MessageType.Abort) this.#applyAbort(payload);
    return message;
  }

  #applySetChunkSize(payload: Uint8Array): void {
    if (payload.byteLength < 4) {
      throw new RtmpError(
        "RTMP_MESSAGE_INVALID",
        `RTMP Set Chunk Size message of ${payload.byteLength} bytes (needs 4)`,
      );
    }
    const size = ((payload[0]! << 24) | (payload[1]! << 16) | (payload[2]! << 8) | payload[3]!) >>> 0;
    const problem = chunkSizeProblem(size, this.#maxChunkSize);
    if (problem !== undefined) throw new RtmpError("RTMP_CHUNK_SIZE_INVALID", problem);
    this.#chunkSize = size;
  }

  #applyAbort(payload: Uint8Array): void {
    if (payload.byteLength < 4) {
      throw new RtmpError(
        "RTMP_MESSAGE_INVALID",
        `RTMP Abort message of ${payload.byteLength} bytes (needs 4)`,
      );
    }
    const csid = ((payload[0]! << 24) | (payload[1]! << 16) | (payload[2]! << 8) | payload[3]!) >>> 0;
    const state = this.#streams.get(csid);
    if (state?.inProgress) this.#dropPartial(state);
  }
}

/** A message to write. */
export interface OutgoingMessage {
  readonly chunkStreamId: number;
  readonly typeId: number;
  readonly streamId: number;
  /** Milliseconds; written modulo 2^32. */
  readonly timestamp: number;
  readonly payload: Uint8Array;
}

interface WriterState {
  timestamp: number;
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
  fmt: number;
}

/** Options of a {@link ChunkStreamWriter}. */
export interface ChunkStreamWriterOptions {
  /**
   * Use type 1/2/3 headers when the previous message on the chunk stream allows it (default
   * true). With false every message starts with a type 0 header.
   */
  readonly compress?: boolean;
}

/**
 * Splits messages into chunks. Each `encode()` computes the exact size, then fills one buffer:
 * the first chunk's header (type 0, 1, 2 or 3, chosen from the previous message on the same
 * chunk stream), then type 3 headers for the continuation chunks, repeating the extended
 * timestamp in each of them when the timestamp field needs it.
 */
export class ChunkStreamWriter {
  #chunkSize = DEFAULT_CHUNK_SIZE;
  readonly #states = new Map<number, WriterState>();
  readonly #compress: boolean;

  constructor(options?: ChunkStreamWriterOptions) {
    this.#compress = options?.compress ?? true;
  }

  /** The chunk size used for messages encoded from now on. */
  get chunkSize(): number {
    return this.#chunkSize;
  }

  /** Changes the outgoing chunk size (send the Set Chunk Size message first). */
  setChunkSize(size: number): void {
    if (!Number.isInteger(size) || size < 1 || size > 0x7fffffff) {
      throw new RangeError(`RTMP chunk size ${size} is invalid (must be 1..2147483647)`);
    }
    this.#chunkSize = size;
  }

  /** Encodes one message into chunks. */
  encode(message: OutgoingMessage): Uint8Array {
    const csid = message.chunkStreamId;
    if (!Number.isInteger(csid) || csid < 2 || csid > MAX_CHUNK_STREAM_ID) {
      throw new RangeError(`RTMP chunk stream id ${csid} is invalid (must be 2..${MAX_CHUNK_STREAM_ID})`);
    }
    const length = message.payload.byteLength;
    if (length > 0xffffff)
      throw new RangeError(`RTMP message of ${length} bytes exceeds the 24-bit length field`);
    const ts = ((message.timestamp % TWO_32) + TWO_32) % TWO_32;
    const prev = this.#states.get(csid);
    let fmt = 0;
    let delta = ts;
    if (this.#compress && prev !== undefined && prev.streamId === message.streamId && ts >= prev.timestamp) {
      delta = ts - prev.timestamp;
      if (length !== prev.length || message.typeId !== prev.typeId) fmt = 1;
      else if (delta !== prev.delta || prev.fmt === 0) fmt = 2;
      else fmt = 3;
    }
    const field = fmt === 0 ? ts : delta;
    const extended = fmt === 3 ? prev!.delta >= 0xffffff : field >= 0xffffff;
    const basic = csid < 64 ? 1 : csid < 320 ? 2 : 3;
    const headerLength = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    const ext = extended ? 4 : 0;
    const chunks = length === 0 ? 1 : Math.ceil(length / this.#chunkSize);
    const size = basic + headerLength + ext + length + (chunks - 1) * (basic + ext);
    const out = Buffer.allocUnsafe(size);
    let o = writeBasicHeader(out, 0, fmt, csid);
    if (fmt < 3) {
      const f = extended ? 0xffffff : field;
      out[o] = f >>> 16;
      out[o + 1] = (f >>> 8) & 0xff;
      out[o + 2] = f & 0xff;
      o += 3;
      if (fmt <= 1) {
        out[o] = length >>> 16;
        out[o + 1] = (length >>> 8) & 0xff;
        out[o + 2] = length & 0xff;
        out[o + 3] = message.typeId;
        o += 4;
        if (fmt === 0) {
          out.writeUInt32LE(message.streamId >>> 0, o);
          o += 4;
        }
      }
    }
    const extValue = fmt === 3 ? prev!.delta : field;
    if (extended) o = out.writeUInt32BE(extValue, o);
    let offset = 0;
    const payload = message.payload;
    while (offset < length) {
      const take = Math.min(this.#chunkSize, length - offset);
      out.set(payload.subarray(offset, offset + take), o);
      o += take;
      offset += take;
      if (offset < length) {
        o = writeBasicHeader(out, o, 3, csid);
        if (extended) o = out.writeUInt32BE(extValue, o);
      }
    }
    this.#states.set(csid, {
      timestamp: ts,
      delta: fmt === 3 ? prev!.delta : field,
      length,
      typeId: message.typeId,
      streamId: message.streamId,
      fmt,
    });
    return out;
  }
}

function writeBasicHeader(out: Uint8Array, o: number, fmt: number, csid: number): number {
  if (csid < 64) {
    out[o] = (fmt << 6) | csid;
    return o + 1;
  }
  if (csid < 320) {
    out[o] = fmt << 6;
    out[o + 1] = csid - 64;
    return o + 2;
  }
  out[o] = (fmt << 6) | 1;
  out[o + 1] = (csid - 64) & 0xff;
  out[o + 2] = (csid - 64) >>> 8;
  return o + 3;
}
