/**
 * A {@link TransportSession} over one WebSocket: QMux (`qmux-00`) or the legacy `webtransport`
 * framing, for either role. It owns the socket and everything multiplexed on it:
 *
 * - a send scheduler that picks which stream's queued bytes go next (priority, then order),
 *   cuts them into STREAM frames of at most 16,360 payload bytes, one frame per WebSocket
 *   message, and stops while the socket has more than a high-water mark of unflushed bytes;
 * - QUIC flow control in qmux-00: it never exceeds the peer's MAX_DATA / MAX_STREAM_DATA /
 *   MAX_STREAMS, enforces its own advertised limits on the peer, and grants credit back as the
 *   application reads (so a reader that stops reading stops the peer, not our memory);
 * - stream ids assigned lazily at a stream's first transmission, so stream credit goes to the
 *   highest-priority stream and a stream reset before it was sent costs nothing;
 * - WebSocket ping/pong liveness.
 *
 * Any violation by the peer closes this session with CONNECTION_CLOSE and a reason; it never
 * throws out of a socket callback.
 */
import type WebSocket from "ws";
import { MoqError, ProtocolViolationError, toMoqError, WireErrorCode } from "../error.ts";
import type {
  BidiStream,
  RecvStream,
  SendStream,
  TransportCloseInfo,
  TransportSession,
  TransportStats,
} from "../transport.ts";
import {
  decodeFrame,
  encodeConnectionClose,
  encodeMaxData,
  encodeMaxStreamData,
  encodeMaxStreams,
  encodeResetStream,
  encodeStopSending,
  encodeTransportParameters,
  type Framing,
  MAX_STREAM_PAYLOAD,
  type QmuxFrame,
  StreamId,
  streamFrameHeaderSize,
  type TransportParameters,
  writeStreamFrameHeader,
} from "./frame.ts";

/** Limits this side advertises (qmux-00) and enforces, plus buffering bounds. */
export interface QmuxLimits {
  /** Connection receive window (MAX_DATA granted ahead of what was read). */
  readonly maxData: number;
  /** Per-stream receive window. */
  readonly maxStreamData: number;
  /** Concurrent bidi streams the peer may open. */
  readonly maxStreamsBidi: number;
  /** Concurrent uni streams the peer may open. */
  readonly maxStreamsUni: number;
  /** Per-stream send buffer above which `write()` returns false. */
  readonly streamHighWater: number;
  /** Unflushed socket bytes above which the scheduler pauses. */
  readonly socketHighWater: number;
  /**
   * Legacy framing has no flow control: received-but-unread bytes above this pause the socket
   * (TCP backpressure) until the application catches up.
   */
  readonly legacyReceiveBuffer: number;
  /** Legacy framing has no stream limits: more concurrently open peer streams than this is a violation. */
  readonly legacyMaxPeerStreams: number;
}

/** Defaults: windows above the official client's (1 MiB / 256 KiB), bounded memory per connection. */
export const DEFAULT_QMUX_LIMITS: QmuxLimits = {
  maxData: 4 * 1024 * 1024,
  maxStreamData: 1024 * 1024,
  maxStreamsBidi: 128,
  maxStreamsUni: 256,
  streamHighWater: 64 * 1024,
  socketHighWater: 256 * 1024,
  legacyReceiveBuffer: 8 * 1024 * 1024,
  legacyMaxPeerStreams: 1024,
};

/** Options of a {@link QmuxSession}. */
export interface QmuxSessionOptions {
  readonly framing: Framing;
  readonly role: "client" | "server";
  /** The application protocol negotiated with the subprotocol (the part after `qmux-00.`), or "". */
  readonly protocol?: string;
  readonly limits?: Partial<QmuxLimits>;
  /** Ping interval for liveness; the session closes when a pong is missing for two intervals. 0 disables. */
  readonly pingIntervalMs?: number;
  /**
   * The TCP socket (or HTTP/2 stream) under the WebSocket. When given, each scheduler pass is
   * corked, so all the messages it produces leave in one `writev` instead of one system call per
   * message. On the server side, when it is a writable stream, WebSocket frames are written to it
   * directly (server frames are unmasked): one header buffer plus the shared payload per message.
   */
  readonly rawSocket?: { cork(): void; uncork(): void };
}

const WS_OPEN = 1;

/** What the server side writes WebSocket frames to: a net.Socket or an HTTP/2 stream. */
interface WireWritable {
  write(chunk: Uint8Array): boolean;
  readonly writableLength: number;
  on(event: "drain", listener: () => void): unknown;
}

/** Size of the WebSocket header for a `payloadLength`-byte message: 2, 4 or 10 bytes. */
function webSocketHeaderSize(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
}

/** Writes an unmasked, final, binary WebSocket frame header at the start of `buf`. */
function writeWebSocketHeader(buf: Buffer, payloadLength: number): void {
  buf[0] = 0x82; // FIN + binary
  if (payloadLength < 126) {
    buf[1] = payloadLength;
  } else if (payloadLength < 65536) {
    buf[1] = 126;
    buf.writeUInt16BE(payloadLength, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), 2);
    buf.writeUInt32BE(payloadLength >>> 0, 6);
  }
}

/**
 * Send passes of every session, run once per event-loop turn after the current microtasks (one
 * `process.nextTick` for all of them): every chunk a relay queued in this turn, for every
 * subscriber, leaves in one writev per connection.
 */
let pendingPumps: Array<(() => void) | undefined> = [];
let pendingCount = 0;
let sparePumps: Array<(() => void) | undefined> = [];
function runPumps(): void {
  const pumps = pendingPumps;
  const count = pendingCount;
  pendingPumps = sparePumps;
  pendingCount = 0;
  for (let i = 0; i < count; i++) {
    const pump = pumps[i]!;
    pumps[i] = undefined;
    try {
      pump();
    } catch {
      // A session's pass never throws by design; never let one stop the others.
    }
  }
  sparePumps = pumps;
}
function schedulePump(pump: () => void): void {
  if (pendingCount === 0) process.nextTick(runPumps);
  pendingPumps[pendingCount++] = pump;
}

/** Payload parts at least this large are sent by reference instead of being copied. */
const ZERO_COPY_MIN_BYTES = 1024;

type Direction = "bidi" | "uni";

class StreamEntry {
  readonly id: number;
  readonly local: boolean;
  send: QmuxSendStream | undefined;
  recv: QmuxRecvStream | undefined;

  constructor(id: number, local: boolean) {
    this.id = id;
    this.local = local;
  }
}

/** The sending half of a QMux stream. */
class QmuxSendStream implements SendStream {
  readonly #session: QmuxSession;
  readonly dir: Direction;
  id = -1;
  priority = 0;
  order = 0;
  /** Position in the session's insertion order, used as the final tie-break. */
  seq = 0;
  /** Queued chunks and their onSent callbacks (parallel arrays: no object per chunk). */
  queue: Uint8Array[] = [];
  callbacks: Array<(() => void) | undefined> = [];
  /** Entries in use in `queue`/`callbacks` (the arrays keep their capacity between frames). */
  count = 0;
  head = 0;
  headOffset = 0;
  buffered = 0;
  finPending = false;
  finSent = false;
  resetSent = false;
  stoppedByPeer = false;
  sessionClosed = false;
  sentOffset = 0;
  sendMax = 0;
  inReady = false;
  /** The receive half, for a bidi stream this side opened (its id is known once assigned). */
  pairedRecv: QmuxRecvStream | undefined;
  #drainWaiters: Array<() => void> = [];
  #stopped: Promise<number | undefined> | undefined;
  #resolveStopped: ((code: number | undefined) => void) | undefined;
  #stopCode: number | undefined | null = null;

  constructor(session: QmuxSession, dir: Direction) {
    this.#session = session;
    this.dir = dir;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  get closed(): boolean {
    return (
      this.finPending || this.resetSent || this.stoppedByPeer || this.sessionClosed || this.#session.isClosed
    );
  }

  get stopped(): Promise<number | undefined> {
    if (!this.#stopped) {
      if (this.#stopCode === null && this.#session.isClosed) this.#stopCode = undefined;
      if (this.#stopCode !== null) {
        this.#stopped = Promise.resolve(this.#stopCode);
      } else {
        const { promise, resolve } = Promise.withResolvers<number | undefined>();
        this.#stopped = promise;
        this.#resolveStopped = resolve;
      }
    }
    return this.#stopped;
  }

  setPriority(priority: number, order = 0): void {
    this.priority = priority;
    this.order = order;
  }

  write(chunk: Uint8Array, onSent?: () => void): boolean {
    if (this.finPending || this.resetSent) {
      throw new MoqError("MOQ_CLOSED", `write on QMux stream ${this.id} after finish or reset`);
    }
    if (this.stoppedByPeer || this.sessionClosed || this.#session.isClosed) return true;
    if (chunk.byteLength === 0) {
      onSent?.();
      return this.buffered < this.#session.streamHighWater;
    }
    this.queue[this.count] = chunk;
    this.callbacks[this.count] = onSent;
    this.count++;
    this.buffered += chunk.byteLength;
    this.#session.bufferedChanged(chunk.byteLength);
    this.#session.markReady(this);
    return this.buffered < this.#session.streamHighWater;
  }

  drained(): Promise<void> {
    if (this.closed || this.buffered < this.#session.streamHighWater) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  finish(): void {
    if (this.closed) return;
    this.finPending = true;
    this.#session.markReady(this);
  }

  reset(code: number): void {
    if (this.finSent || this.resetSent || this.stoppedByPeer || this.sessionClosed || this.#session.isClosed)
      return;
    this.resetSent = true;
    this.#session.resetSendStream(this, code);
  }

  /** Drops queued data (no onSent callbacks run) and returns how many bytes were dropped. */
  dropQueue(): number {
    const dropped = this.buffered;
    this.queue = [];
    this.callbacks = [];
    this.count = 0;
    this.head = 0;
    this.headOffset = 0;
    this.buffered = 0;
    this.wakeDrained();
    return dropped;
  }

  /**
   * Dequeues `n` bytes as views of the queued chunks (no copy) into `parts` (from index 0),
   * running onSent for chunks taken completely. Returns how many parts were written.
   */
  takeParts(n: number, parts: Uint8Array[]): number {
    let remaining = n;
    let taken = 0;
    while (remaining > 0) {
      const data = this.queue[this.head]!;
      const available = data.byteLength - this.headOffset;
      const count = Math.min(available, remaining);
      parts[taken++] =
        this.headOffset === 0 && count === data.byteLength
          ? data
          : data.subarray(this.headOffset, this.headOffset + count);
      remaining -= count;
      if (count === available) {
        const onSent = this.callbacks[this.head];
        this.queue[this.head] = undefined as never;
        this.callbacks[this.head] = undefined;
        this.head++;
        this.headOffset = 0;
        onSent?.();
      } else {
        this.headOffset += count;
      }
    }
    if (this.head === this.count) {
      // Drained: start over in the same arrays (consumed slots were cleared above).
      this.count = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.count) {
      this.queue = this.queue.slice(this.head, this.count);
      this.callbacks = this.callbacks.slice(this.head, this.count);
      this.count -= this.head;
      this.head = 0;
    }
    this.buffered -= n;
    if (this.buffered * 2 <= this.#session.streamHighWater) this.wakeDrained();
    return taken;
  }

  wakeDrained(): void {
    if (this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }

  settleStopped(code: number | undefined): void {
    if (this.#stopCode !== null) return;
    this.#stopCode = code;
    this.#resolveStopped?.(code);
    this.wakeDrained();
  }
}

/** What {@link QmuxRecvStream} returns internally when no chunk is there yet. */
const WAIT: unique symbol = Symbol("wait");

/** The receiving half of a QMux stream. */
class QmuxRecvStream implements RecvStream {
  readonly #session: QmuxSession;
  /** -1 until a locally opened stream is assigned its id. */
  id: number;
  readonly window: number;
  chunks: Uint8Array[] = [];
  head = 0;
  buffered = 0;
  /** Highest offset received. */
  received = 0;
  /** Bytes handed to the reader (or discarded after stop). */
  consumed = 0;
  /** Current MAX_STREAM_DATA granted to the peer. */
  maxData: number;
  fin = false;
  error: MoqError | undefined;
  stoppedLocally = false;
  #waiter: (() => void) | undefined;

  constructor(session: QmuxSession, id: number, window: number) {
    this.#session = session;
    this.id = id;
    this.window = window;
    this.maxData = window;
  }

  get done(): boolean {
    return this.fin || this.error !== undefined || this.stoppedLocally;
  }

  /**
   * The next chunk, or undefined at the end. Not an async function: an idle stream (a session
   * stream waits for minutes) holds one pending promise, not a suspended function as well.
   */
  read(): Promise<Uint8Array | undefined> {
    const now = this.#readNow();
    if (now !== WAIT) return now instanceof MoqError ? Promise.reject(now) : Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const retry = (): void => {
        const next = this.#readNow();
        if (next === WAIT) this.#waiter = retry;
        else if (next instanceof MoqError) reject(next);
        else resolve(next);
      };
      this.#waiter = retry;
    });
  }

  /** A chunk, undefined at the end, the stream's error, or WAIT when nothing is there yet. */
  #readNow(): Uint8Array | undefined | MoqError | typeof WAIT {
    if (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      this.chunks[this.head] = undefined as never;
      this.head++;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      }
      this.buffered -= chunk.byteLength;
      this.#session.consumed(this, chunk.byteLength);
      return chunk;
    }
    if (this.error) return this.error;
    if (this.fin || this.stoppedLocally) return undefined;
    return WAIT;
  }

  stop(code: number): void {
    if (this.stoppedLocally || this.fin || this.error) {
      // Data may still be buffered after FIN; stopping then just discards it.
      if (!this.stoppedLocally) this.#discard();
      this.stoppedLocally = true;
      return;
    }
    this.stoppedLocally = true;
    this.#discard();
    this.#session.stopRecvStream(this, code);
    this.wake();
  }

  #discard(): void {
    const unread = this.buffered;
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    if (unread > 0) this.#session.consumed(this, unread);
  }

  push(data: Uint8Array): void {
    this.chunks.push(data);
    this.buffered += data.byteLength;
    this.wake();
  }

  wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

/** A FIFO of waiters for accepted streams. */
class AcceptQueue<T> {
  items: T[] = [];
  waiters: Array<(value: T | undefined) => void> = [];

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(closed: boolean): Promise<T | undefined> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}

interface DirectionState {
  /** Next index for a stream this side opens. */
  nextLocal: number;
  /** MAX_STREAMS granted by the peer (count of our streams it allows, cumulative). */
  peerMax: number;
  /** Our streams waiting for an id because the peer's MAX_STREAMS is exhausted. */
  awaitingId: QmuxSendStream[];
  /** Next index expected from the peer; lower indices are open, closed, or skipped gaps. */
  nextPeer: number;
  /** Peer indices below `nextPeer` that were skipped and may still arrive. */
  gaps: Set<number>;
  /** MAX_STREAMS we granted the peer. */
  localMax: number;
  /** Peer streams fully closed so far. */
  peerClosed: number;
  /** Peer streams currently open (legacy bound). */
  peerOpen: number;
  readonly window: number;
}

/** A transport session over one WebSocket. See the module doc. */
export class QmuxSession implements TransportSession {
  readonly role: "client" | "server";
  readonly protocol: string;
  readonly framing: Framing;
  readonly streamHighWater: number;
  readonly #socket: WebSocket;
  readonly #rawSocket: { cork(): void; uncork(): void } | undefined;
  /** The writable under the WebSocket, when this side writes WebSocket frames itself. */
  readonly #wire: WireWritable | undefined;
  readonly #limits: QmuxLimits;
  readonly #qmux: boolean;
  readonly #streams: Map<number, StreamEntry> = new Map();
  readonly #dirs: Record<Direction, DirectionState>;
  readonly #incomingBidi: AcceptQueue<BidiStream> = new AcceptQueue();
  readonly #incomingUni: AcceptQueue<RecvStream> = new AcceptQueue();
  #peerParams: TransportParameters | undefined;
  #sendMaxData: number;
  #sentData = 0;
  #recvMaxData: number;
  #receivedData = 0;
  #consumedData = 0;
  #unreadBytes = 0;
  #socketPaused = false;
  /** Streams with something to send (an array: usually one or two entries, no iterator objects). */
  #ready: QmuxSendStream[] = [];
  /** Scratch list of payload views for the frame being sent (emptied after each frame). */
  readonly #parts: Uint8Array[] = [];
  /** Send streams that may still send, so closing the session can settle them all. */
  readonly #liveSend: Set<QmuxSendStream> = new Set();
  #streamSeq = 0;
  #queuedBytes = 0;
  #unflushed = 0;
  #flushSizes: number[] = [];
  #flushHead = 0;
  #pumpScheduled = false;
  #bytesIn = 0;
  #bytesOut = 0;
  #closedInfo: TransportCloseInfo | undefined;
  readonly #closed: Promise<TransportCloseInfo>;
  readonly #resolveClosed: (info: TransportCloseInfo) => void;
  #pingTimer: NodeJS.Timeout | undefined;
  #pongPending = false;

  /** Takes ownership of an open WebSocket whose subprotocol selected `options.framing`. */
  constructor(socket: WebSocket, options: QmuxSessionOptions) {
    this.#socket = socket;
    this.#rawSocket = options.rawSocket;
    const raw = options.rawSocket as Partial<WireWritable> | undefined;
    this.#wire =
      options.role === "server" && typeof raw?.write === "function" && typeof raw.writableLength === "number"
        ? (raw as WireWritable)
        : undefined;
    this.#wire?.on("drain", () => {
      if (this.#ready.length > 0) this.#schedulePump();
    });
    this.role = options.role;
    this.protocol = options.protocol ?? "";
    this.framing = options.framing;
    this.#qmux = options.framing === "qmux-00";
    this.#limits = { ...DEFAULT_QMUX_LIMITS, ...options.limits };
    this.streamHighWater = this.#limits.streamHighWater;
    const { promise, resolve } = Promise.withResolvers<TransportCloseInfo>();
    this.#closed = promise;
    this.#resolveClosed = resolve;
    const unlimited = Number.MAX_SAFE_INTEGER;
    const dir = (window: number): DirectionState => ({
      nextLocal: 0,
      peerMax: this.#qmux ? 0 : unlimited,
      awaitingId: [],
      nextPeer: 0,
      gaps: new Set(),
      localMax: window,
      peerClosed: 0,
      peerOpen: 0,
      window,
    });
    this.#dirs = { bidi: dir(this.#limits.maxStreamsBidi), uni: dir(this.#limits.maxStreamsUni) };
    this.#sendMaxData = this.#qmux ? 0 : unlimited;
    this.#recvMaxData = this.#limits.maxData;

    socket.binaryType = "nodebuffer";
    socket.on("message", (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    socket.on("close", (code, reason) => this.#onSocketClose(code, reason.toString()));
    socket.on("error", (err) => this.#onSocketClose(1006, err.message));
    socket.on("pong", () => {
      this.#pongPending = false;
    });

    if (this.#qmux) {
      this.#sendControl(
        encodeTransportParameters({
          maxData: this.#limits.maxData,
          maxStreamDataBidiLocal: this.#limits.maxStreamData,
          maxStreamDataBidiRemote: this.#limits.maxStreamData,
          maxStreamDataUni: this.#limits.maxStreamData,
          maxStreamsBidi: this.#limits.maxStreamsBidi,
          maxStreamsUni: this.#limits.maxStreamsUni,
        }),
      );
    }
    const interval = options.pingIntervalMs ?? 0;
    if (interval > 0) {
      this.#pingTimer = setInterval(() => this.#ping(), interval);
      this.#pingTimer.unref();
    }
  }

  /** The peer's transport parameters, once received (qmux-00). */
  get peerParameters(): TransportParameters | undefined {
    return this.#peerParams;
  }

  get closed(): Promise<TransportCloseInfo> {
    return this.#closed;
  }

  /** True once the session has closed. */
  get isClosed(): boolean {
    return this.#closedInfo !== undefined;
  }

  stats(): TransportStats {
    return {
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      bufferedBytes: this.#queuedBytes + this.#pending(),
    };
  }

  async openBidi(): Promise<BidiStream> {
    if (this.#closedInfo) throw this.#closedError();
    const send = this.#newSendStream("bidi");
    // The receive half is registered when the id is assigned at the first transmission.
    send.pairedRecv = new QmuxRecvStream(this, -1, this.#limits.maxStreamData);
    return { send, recv: send.pairedRecv };
  }

  async openUni(): Promise<SendStream> {
    if (this.#closedInfo) throw this.#closedError();
    return this.#newSendStream("uni");
  }

  #newSendStream(dir: Direction): QmuxSendStream {
    const stream = new QmuxSendStream(this, dir);
    this.#liveSend.add(stream);
    return stream;
  }

  acceptBidi(): Promise<BidiStream | undefined> {
    return this.#incomingBidi.next(this.#closedInfo !== undefined);
  }

  acceptUni(): Promise<RecvStream | undefined> {
    return this.#incomingUni.next(this.#closedInfo !== undefined);
  }

  close(code = 0, reason = "", error?: MoqError): void {
    if (this.#closedInfo) return;
    if (this.#socket.readyState === WS_OPEN) {
      const frame = encodeConnectionClose(this.framing, code, reason);
      this.#socket.send(frame, { binary: true });
      this.#bytesOut += frame.byteLength;
      this.#socket.close(1000);
    }
    this.#finalize(error ? { code, reason, remote: false, error } : { code, reason, remote: false });
  }

  #closedError(): MoqError {
    const info = this.#closedInfo;
    return new MoqError(
      "MOQ_CLOSED",
      `session closed (${info?.code ?? 0}${info?.reason ? `: ${info.reason}` : ""})`,
    );
  }

  #fail(error: MoqError): void {
    this.close(error.wireCode, error.message, error);
  }

  #finalize(info: TransportCloseInfo): void {
    if (this.#closedInfo) return;
    this.#closedInfo = info;
    clearInterval(this.#pingTimer);
    const error = new MoqError(
      "MOQ_CLOSED",
      `session closed (${info.code}${info.reason ? `: ${info.reason}` : ""})`,
      {
        wireCode: info.code,
      },
    );
    for (const entry of this.#streams.values()) {
      if (entry.recv && !entry.recv.done) {
        entry.recv.error = error;
        entry.recv.wake();
      }
    }
    for (const stream of this.#liveSend) this.#closeSendForSession(stream, error);
    this.#liveSend.clear();
    this.#ready = [];
    for (const dir of Object.values(this.#dirs)) dir.awaitingId = [];
    this.#streams.clear();
    this.#incomingBidi.close();
    this.#incomingUni.close();
    this.#resolveClosed(info);
  }

  #closeSendForSession(stream: QmuxSendStream, error: MoqError): void {
    stream.sessionClosed = true;
    this.#queuedBytes -= stream.dropQueue();
    stream.settleStopped(undefined);
    const recv = stream.pairedRecv;
    if (recv && !recv.done) {
      recv.error = error;
      recv.wake();
    }
  }

  #onSocketClose(code: number, reason: string): void {
    if (this.#closedInfo) return;
    this.#finalize({
      code: WireErrorCode.Transport,
      reason: `WebSocket closed (${code}${reason ? ` ${reason}` : ""})`,
      remote: true,
    });
  }

  #ping(): void {
    if (this.#closedInfo) return;
    if (this.#pongPending) {
      this.#socket.terminate();
      this.#finalize({
        code: WireErrorCode.Timeout,
        reason: "no WebSocket pong within the ping interval",
        remote: false,
        error: new MoqError("MOQ_TIMEOUT", "no WebSocket pong within the ping interval"),
      });
      return;
    }
    if (this.#socket.readyState !== WS_OPEN) return;
    this.#pongPending = true;
    this.#socket.ping();
  }

  // ---- receiving ----

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closedInfo) return;
    this.#bytesIn += data.byteLength;
    if (!isBinary) return;
    try {
      const frame = decodeFrame(data, this.framing);
      this.#handleFrame(frame);
    } catch (err) {
      this.#fail(err instanceof MoqError ? err : toMoqError(err));
    }
  }

  #handleFrame(frame: QmuxFrame): void {
    if (this.#qmux && !this.#peerParams && frame.type !== "transport_parameters") {
      throw new ProtocolViolationError(
        `QMux: the first frame must be TRANSPORT_PARAMETERS, got ${frame.type}`,
      );
    }
    switch (frame.type) {
      case "stream":
        this.#onStreamFrame(frame.id, frame.data, frame.fin, frame.offset);
        break;
      case "reset_stream":
        this.#onResetStream(frame.id, frame.code);
        break;
      case "stop_sending":
        this.#onStopSending(frame.id, frame.code);
        break;
      case "connection_close":
        if (this.#socket.readyState === WS_OPEN) this.#socket.close(1000);
        this.#finalize({ code: frame.code, reason: frame.reason, remote: true });
        break;
      case "transport_parameters":
        this.#onTransportParameters(frame.params);
        break;
      case "max_data":
        this.#requireQmux("MAX_DATA");
        if (frame.max > this.#sendMaxData) {
          this.#sendMaxData = frame.max;
          this.#schedulePump();
        }
        break;
      case "max_stream_data": {
        this.#requireQmux("MAX_STREAM_DATA");
        const send = this.#streams.get(frame.id)?.send;
        if (send && frame.max > send.sendMax) {
          send.sendMax = frame.max;
          if (send.buffered > 0 || send.finPending) this.markReady(send);
        }
        break;
      }
      case "max_streams": {
        this.#requireQmux("MAX_STREAMS");
        const dir = this.#dirs[frame.bidi ? "bidi" : "uni"];
        if (frame.max > dir.peerMax) {
          dir.peerMax = frame.max;
          const waiting = dir.awaitingId.splice(0);
          for (const stream of waiting) this.markReady(stream);
        }
        break;
      }
      case "ignored":
        break;
    }
  }

  #requireQmux(what: string): void {
    if (!this.#qmux) throw new ProtocolViolationError(`legacy framing has no ${what} frame`);
  }

  #onTransportParameters(params: TransportParameters): void {
    if (!this.#qmux) throw new ProtocolViolationError("legacy framing has no TRANSPORT_PARAMETERS frame");
    if (this.#peerParams) throw new ProtocolViolationError("QMux: TRANSPORT_PARAMETERS sent twice");
    this.#peerParams = params;
    this.#sendMaxData = params.maxData;
    this.#dirs.bidi.peerMax = params.maxStreamsBidi;
    this.#dirs.uni.peerMax = params.maxStreamsUni;
    this.#schedulePump();
  }

  #isLocal(id: number): boolean {
    return StreamId.isServerInitiated(id) === (this.role === "server");
  }

  #onStreamFrame(id: number, data: Uint8Array, fin: boolean, offset: number | undefined): void {
    if (data.byteLength > MAX_STREAM_PAYLOAD + 24) {
      throw new ProtocolViolationError(
        `QMux: STREAM frame of ${data.byteLength} bytes is too large`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    const entry = this.#streams.get(id) ?? this.#openPeerStream(id);
    // Connection-level accounting happens even for streams we no longer track.
    if (this.#qmux) {
      if (this.#receivedData + data.byteLength > this.#recvMaxData) {
        throw new ProtocolViolationError(
          `QMux flow control: peer sent ${this.#receivedData + data.byteLength} bytes, MAX_DATA is ${this.#recvMaxData}`,
          "MOQ_BOUNDS_EXCEEDED",
        );
      }
    }
    this.#receivedData += data.byteLength;
    const recv = entry?.recv;
    if (!recv || recv.fin || recv.error) {
      // A closed or stopped stream: the bytes still count against the window; return them at once.
      this.#connectionConsumed(data.byteLength);
      return;
    }
    if (offset !== undefined && offset !== recv.received) {
      throw new ProtocolViolationError(
        `QMux: STREAM offset ${offset} on stream ${id}, expected ${recv.received}`,
      );
    }
    if (this.#qmux && recv.received + data.byteLength > recv.maxData) {
      throw new ProtocolViolationError(
        `QMux flow control: stream ${id} reached ${recv.received + data.byteLength} bytes, MAX_STREAM_DATA is ${recv.maxData}`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    recv.received += data.byteLength;
    if (recv.stoppedLocally) {
      this.#connectionConsumed(data.byteLength);
    } else if (data.byteLength > 0) {
      // Counted before the push: a waiting reader takes the chunk inside it (and returns credit).
      this.#unreadBytes += data.byteLength;
      recv.push(data);
      if (!this.#qmux && !this.#socketPaused && this.#unreadBytes > this.#limits.legacyReceiveBuffer) {
        this.#socketPaused = true;
        this.#socket.pause();
      }
    }
    if (fin) {
      recv.fin = true;
      recv.wake();
      this.#recvSideDone(entry!);
    }
  }

  /** Creates the state for a stream the peer opened with this frame, or undefined for a stale id. */
  #openPeerStream(id: number): StreamEntry | undefined {
    const uni = StreamId.isUni(id);
    if (this.#isLocal(id)) {
      if (uni) throw new ProtocolViolationError(`QMux: peer sent data on our unidirectional stream ${id}`);
      const index = StreamId.index(id);
      if (index >= this.#dirs.bidi.nextLocal) {
        throw new ProtocolViolationError(`QMux: peer sent data on stream ${id}, which we never opened`);
      }
      return undefined; // Our stream, already closed.
    }
    const dir = this.#dirs[uni ? "uni" : "bidi"];
    const index = StreamId.index(id);
    if (index < dir.nextPeer) {
      if (!dir.gaps.delete(index)) return undefined; // Already closed: a late frame.
    } else {
      if (this.#qmux && index + 1 > dir.localMax) {
        throw new ProtocolViolationError(
          `QMux: peer opened ${uni ? "uni" : "bidi"} stream index ${index}, MAX_STREAMS is ${dir.localMax}`,
          "MOQ_BOUNDS_EXCEEDED",
        );
      }
      for (let gap = dir.nextPeer; gap < index; gap++) dir.gaps.add(gap);
      dir.nextPeer = index + 1;
    }
    dir.peerOpen++;
    if (!this.#qmux && dir.peerOpen > this.#limits.legacyMaxPeerStreams) {
      throw new ProtocolViolationError(
        `peer has more than ${this.#limits.legacyMaxPeerStreams} ${uni ? "uni" : "bidi"} streams open`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    const entry = new StreamEntry(id, false);
    entry.recv = new QmuxRecvStream(this, id, this.#limits.maxStreamData);
    this.#streams.set(id, entry);
    if (uni) {
      this.#incomingUni.push(entry.recv);
    } else {
      entry.send = this.#newSendStream("bidi");
      entry.send.id = id;
      entry.send.sendMax = this.#peerParams?.maxStreamDataBidiLocal ?? Number.MAX_SAFE_INTEGER;
      this.#incomingBidi.push({ send: entry.send, recv: entry.recv });
    }
    return entry;
  }

  #onResetStream(id: number, code: number): void {
    const entry = this.#streams.get(id);
    if (!entry) {
      if (
        !this.#isLocal(id) &&
        StreamId.index(id) >= this.#dirs[StreamId.isUni(id) ? "uni" : "bidi"].nextPeer
      ) {
        // RESET of a stream never seen: it opened and ended at once.
        const opened = this.#openPeerStream(id);
        if (opened) this.#onResetStream(id, code);
      }
      return;
    }
    const recv = entry.recv;
    if (!recv) throw new ProtocolViolationError(`QMux: RESET_STREAM for our unidirectional stream ${id}`);
    if (recv.done) return;
    const unread = recv.buffered;
    recv.chunks = [];
    recv.head = 0;
    recv.buffered = 0;
    if (unread > 0) this.consumed(recv, unread);
    recv.error = new MoqError("MOQ_CANCELLED", `stream ${id} reset by the peer (code ${code})`, {
      wireCode: code,
    });
    recv.wake();
    this.#recvSideDone(entry);
  }

  #onStopSending(id: number, code: number): void {
    const entry = this.#streams.get(id);
    if (!entry) {
      if (!this.#isLocal(id) && StreamId.isUni(id)) {
        throw new ProtocolViolationError(`QMux: STOP_SENDING for the peer's own unidirectional stream ${id}`);
      }
      return;
    }
    const send = entry.send;
    if (!send)
      throw new ProtocolViolationError(`QMux: STOP_SENDING for stream ${id}, which only the peer sends on`);
    if (send.finSent || send.resetSent || send.stoppedByPeer) return;
    send.stoppedByPeer = true;
    this.#queuedBytes -= send.dropQueue();
    if (send.inReady) this.#unready(send);
    this.#sendControl(encodeResetStream(this.framing, id, code, send.sentOffset));
    send.settleStopped(code);
    this.#sendSideDone(send);
    this.#liveSend.delete(send);
  }

  /** Called by a receive stream when the application read (or discarded) `n` bytes. */
  consumed(recv: QmuxRecvStream, n: number): void {
    this.#unreadBytes -= n;
    if (this.#socketPaused && this.#unreadBytes * 2 < this.#limits.legacyReceiveBuffer) {
      this.#socketPaused = false;
      this.#socket.resume();
    }
    if (!this.#qmux || this.#closedInfo) return;
    recv.consumed += n;
    if (!recv.fin && !recv.error && !recv.stoppedLocally && recv.id >= 0) {
      if (recv.maxData - recv.consumed < recv.window / 2) {
        recv.maxData = recv.consumed + recv.window;
        this.#sendControl(encodeMaxStreamData(recv.id, recv.maxData));
      }
    }
    this.#connectionConsumed(n);
  }

  #connectionConsumed(n: number): void {
    if (!this.#qmux || this.#closedInfo) return;
    this.#consumedData += n;
    if (this.#recvMaxData - this.#consumedData < this.#limits.maxData / 2) {
      this.#recvMaxData = this.#consumedData + this.#limits.maxData;
      this.#sendControl(encodeMaxData(this.#recvMaxData));
    }
  }

  /** Called by a receive stream the application stopped. */
  stopRecvStream(recv: QmuxRecvStream, code: number): void {
    if (this.#closedInfo || recv.id < 0) return;
    this.#sendControl(encodeStopSending(recv.id, code));
    const entry = this.#streams.get(recv.id);
    if (entry) this.#recvSideDone(entry);
  }

  #recvSideDone(entry: StreamEntry): void {
    if (!entry.send || entry.send.finSent || entry.send.resetSent || entry.send.stoppedByPeer) {
      this.#retire(entry);
    }
  }

  #sendSideDone(send: QmuxSendStream): void {
    if (send.id < 0) return;
    const entry = this.#streams.get(send.id);
    if (!entry) return;
    if (!entry.recv || entry.recv.done) this.#retire(entry);
  }

  #retire(entry: StreamEntry): void {
    if (!this.#streams.delete(entry.id)) return;
    if (entry.local) return;
    const dir = this.#dirs[StreamId.isUni(entry.id) ? "uni" : "bidi"];
    dir.peerOpen--;
    dir.peerClosed++;
    if (this.#qmux && !this.#closedInfo && dir.localMax - dir.peerClosed < dir.window / 2) {
      dir.localMax = dir.peerClosed + dir.window;
      this.#sendControl(encodeMaxStreams(dir === this.#dirs.bidi, dir.localMax));
    }
  }

  // ---- sending ----

  /** Tracks bytes queued in send streams. */
  bufferedChanged(delta: number): void {
    this.#queuedBytes += delta;
  }

  /** Puts a stream with something to send into the scheduler. */
  markReady(stream: QmuxSendStream): void {
    if (stream.inReady || this.#closedInfo) return;
    if (stream.seq === 0) stream.seq = ++this.#streamSeq;
    stream.inReady = true;
    this.#ready.push(stream);
    this.#schedulePump();
  }

  resetSendStream(stream: QmuxSendStream, code: number): void {
    this.#queuedBytes -= stream.dropQueue();
    if (stream.inReady) this.#unready(stream);
    for (const dir of Object.values(this.#dirs)) {
      const index = dir.awaitingId.indexOf(stream);
      if (index >= 0) dir.awaitingId.splice(index, 1);
    }
    if (stream.id >= 0 && !this.#closedInfo) {
      this.#sendControl(encodeResetStream(this.framing, stream.id, code, stream.sentOffset));
      this.#sendSideDone(stream);
    }
    stream.settleStopped(undefined);
    this.#liveSend.delete(stream);
    const recv = stream.pairedRecv;
    if (recv && stream.id < 0) {
      // Never transmitted: the peer never learns of it, so its receive half ends here too.
      recv.stoppedLocally = true;
      recv.wake();
    }
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#closedInfo) return;
    this.#pumpScheduled = true;
    schedulePump(this.#pump);
  }

  readonly #pump = (): void => {
    this.#pumpScheduled = false;
    if (this.#closedInfo) return;
    const raw = this.#rawSocket;
    raw?.cork();
    try {
      while (!this.#closedInfo && this.#pending() < this.#limits.socketHighWater) {
        const stream = this.#pick();
        if (!stream) return;
        this.#transmit(stream);
      }
    } finally {
      raw?.uncork();
    }
  };

  /** The ready stream to serve next: highest priority, then highest order, then oldest. */
  #pick(): QmuxSendStream | undefined {
    let best: QmuxSendStream | undefined;
    const connBlocked = this.#sentData >= this.#sendMaxData;
    const ready = this.#ready;
    for (let i = 0; i < ready.length; i++) {
      const stream = ready[i]!;
      if (connBlocked && stream.buffered > 0) continue;
      if (
        best === undefined ||
        stream.priority > best.priority ||
        (stream.priority === best.priority &&
          (stream.order > best.order || (stream.order === best.order && stream.seq < best.seq)))
      ) {
        best = stream;
      }
    }
    return best;
  }

  #unready(stream: QmuxSendStream): void {
    const ready = this.#ready;
    const index = ready.indexOf(stream);
    if (index >= 0) {
      // Swap-remove: order in the array does not matter (#pick compares every entry).
      ready[index] = ready[ready.length - 1]!;
      ready.pop();
    }
    stream.inReady = false;
  }

  #assignId(stream: QmuxSendStream): boolean {
    const dir = this.#dirs[stream.dir];
    if (this.#qmux && !this.#peerParams) {
      this.#unready(stream);
      dir.awaitingId.push(stream);
      return false;
    }
    if (dir.nextLocal + 1 > dir.peerMax) {
      this.#unready(stream);
      dir.awaitingId.push(stream);
      return false;
    }
    const id = StreamId.make(dir.nextLocal++, stream.dir === "uni", this.role === "server");
    stream.id = id;
    const params = this.#peerParams;
    stream.sendMax = !this.#qmux
      ? Number.MAX_SAFE_INTEGER
      : stream.dir === "uni"
        ? params!.maxStreamDataUni
        : params!.maxStreamDataBidiRemote;
    const entry = new StreamEntry(id, true);
    entry.send = stream;
    const recv = stream.pairedRecv;
    if (recv) {
      recv.id = id;
      entry.recv = recv;
    }
    this.#streams.set(id, entry);
    return true;
  }

  #transmit(stream: QmuxSendStream): void {
    if (stream.id < 0 && !this.#assignId(stream)) return;
    let n = Math.min(stream.buffered, MAX_STREAM_PAYLOAD);
    if (this.#qmux) {
      n = Math.min(n, stream.sendMax - stream.sentOffset, this.#sendMaxData - this.#sentData);
    }
    const fin = stream.finPending && n === stream.buffered;
    if (n <= 0 && !fin) {
      // Out of stream credit: wait for MAX_STREAM_DATA (connection credit is checked in #pick).
      this.#unready(stream);
      return;
    }
    if (n < 0) n = 0;
    const firstFrame = stream.sentOffset === 0;
    const parts = this.#parts;
    const partCount = stream.takeParts(n, parts);
    stream.sentOffset += n;
    this.#sentData += n;
    this.#queuedBytes -= n;
    this.#sendStreamFrame(stream.id, n, fin, parts, partCount);
    // Clear the slots (the array keeps its capacity; it must not keep payloads alive).
    for (let i = 0; i < partCount; i++) parts[i] = undefined as never;
    if (firstFrame && stream.pairedRecv?.stoppedLocally) {
      // The reader gave up before the peer knew the stream; tell it now.
      this.#sendControl(encodeStopSending(stream.id, 0));
      const entry = this.#streams.get(stream.id);
      if (entry) this.#recvSideDone(entry);
    }
    if (fin) {
      stream.finSent = true;
      this.#unready(stream);
      stream.wakeDrained();
      this.#liveSend.delete(stream);
      this.#sendSideDone(stream);
    } else if (stream.buffered === 0 && !stream.finPending) {
      this.#unready(stream);
    }
  }

  /**
   * Sends one STREAM frame as one WebSocket message. Small parts are copied behind the frame
   * header; large parts (media payload shared by every subscriber) go out by reference as
   * continuation fragments of the same message, so fan-out costs no per-subscriber copy.
   */
  #sendStreamFrame(id: number, length: number, fin: boolean, parts: Uint8Array[], partCount: number): void {
    if (this.#socket.readyState !== WS_OPEN) return;
    const headerSize = streamFrameHeaderSize(this.framing, id, length);
    let leading = 0;
    let leadingBytes = headerSize;
    while (leading < partCount && parts[leading]!.byteLength < ZERO_COPY_MIN_BYTES) {
      leadingBytes += parts[leading]!.byteLength;
      leading++;
    }
    // Room in front for the WebSocket header when this side frames messages itself.
    const total = headerSize + length;
    const room = this.#wire ? webSocketHeaderSize(total) : 0;
    const first = Buffer.allocUnsafe(room + leadingBytes);
    let offset =
      room + writeStreamFrameHeader(room ? first.subarray(room) : first, this.framing, id, length, fin);
    for (let i = 0; i < leading; i++) {
      first.set(parts[i]!, offset);
      offset += parts[i]!.byteLength;
    }
    this.#bytesOut += total;
    const wire = this.#wire;
    if (wire) {
      // One WebSocket message: our own frame header in front of the QMux header (in the room
      // reserved above), then the payload parts by reference.
      writeWebSocketHeader(first, total);
      wire.write(first);
      for (let i = leading; i < partCount; i++) wire.write(parts[i]!);
      return;
    }
    this.#unflushed += total;
    this.#flushSizes.push(total);
    if (leading === partCount) {
      this.#socket.send(first, { binary: true }, this.#onFlushed);
      return;
    }
    this.#socket.send(first, { binary: true, fin: false });
    for (let i = leading; i < partCount; i++) {
      const last = i === partCount - 1;
      this.#socket.send(parts[i]!, { binary: true, fin: last }, last ? this.#onFlushed : undefined);
    }
  }

  /** Bytes handed to the socket layer and not yet to the kernel. */
  #pending(): number {
    return this.#wire ? this.#wire.writableLength : this.#unflushed;
  }

  #socketSend(frame: Uint8Array): void {
    if (this.#socket.readyState !== WS_OPEN) return;
    this.#bytesOut += frame.byteLength;
    const wire = this.#wire;
    if (wire) {
      const room = webSocketHeaderSize(frame.byteLength);
      const message = Buffer.allocUnsafe(room + frame.byteLength);
      message.set(frame, room);
      writeWebSocketHeader(message, frame.byteLength);
      wire.write(message);
      return;
    }
    this.#unflushed += frame.byteLength;
    this.#flushSizes.push(frame.byteLength);
    this.#socket.send(frame, { binary: true }, this.#onFlushed);
  }

  readonly #onFlushed = (): void => {
    const size = this.#flushSizes[this.#flushHead++] ?? 0;
    if (this.#flushHead === this.#flushSizes.length) {
      this.#flushSizes = [];
      this.#flushHead = 0;
    } else if (this.#flushHead > 1024) {
      this.#flushSizes = this.#flushSizes.slice(this.#flushHead);
      this.#flushHead = 0;
    }
    this.#unflushed -= size;
    if (this.#ready.length > 0 && this.#unflushed * 2 < this.#limits.socketHighWater) this.#schedulePump();
  };

  /** Control frames go out at once, ahead of queued stream data. */
  #sendControl(frame: Uint8Array): void {
    if (this.#closedInfo) return;
    this.#socketSend(frame);
  }
}
