/**
 * A {@link TransportSession} over a W3C-shaped WebTransport session: the server-side sessions of
 * `@fails-components/webtransport` (HTTP/2 and HTTP/3) and its client `WebTransport`, or any
 * standard implementation. It maps the contract onto WHATWG streams:
 *
 * - a send stream hands each chunk to its writer at once (by reference) and counts the bytes
 *   whose write has not completed; over the high-water mark `write()` returns false and
 *   `drained()` waits. Priority becomes the stream's `sendOrder` (priority first, then order).
 * - `reset(code)` aborts the writable and `stop(code)` cancels the readable with a reason that
 *   carries the code both as `streamErrorCode` (W3C) and `code` (fails-components).
 * - the peer's RESET_STREAM / STOP_SENDING surface as stream errors; their code is read from
 *   `streamErrorCode` or, for fails-components, from the error message.
 *
 * Flow control is the WebTransport implementation's: a reader that stops reading stops the
 * peer (credit is returned only as the readable is pulled).
 */
import type { ReadableStreamReadResult } from "node:stream/web";
import { MoqError, WireErrorCode } from "../error.ts";
import type {
  BidiStream,
  RecvStream,
  SendStream,
  TransportCloseInfo,
  TransportSession,
  TransportStats,
} from "../transport.ts";
import type { W3CBidirectionalStream, W3CWebTransport } from "./loader.ts";

/** Options of a {@link WebTransportSession}. */
export interface WebTransportSessionOptions {
  readonly role: "client" | "server";
  /** The negotiated WT-Protocol ("" when none was selected). */
  readonly protocol: string;
  /** Per-stream bytes in flight above which `write()` returns false. Default 64 KiB. */
  readonly streamHighWater?: number;
  /** A label for the transport in logs and stats ("webtransport-h2", "webtransport-h3"). */
  readonly kind?: string;
}

/** Largest sendOrder step per priority level, so (priority, order) maps into one safe integer. */
const ORDER_SPAN = 2 ** 36;

function sendOrderOf(priority: number, order: number): number {
  const clamped = Math.max(-(ORDER_SPAN / 2), Math.min(ORDER_SPAN / 2 - 1, order));
  return priority * ORDER_SPAN + clamped;
}

/** A stream error's application code: `streamErrorCode` (W3C) or "...code:N" (fails-components). */
function streamErrorCode(err: unknown): number | undefined {
  const value = (err as { streamErrorCode?: unknown } | undefined)?.streamErrorCode;
  if (typeof value === "number") return value;
  const match = /code:\s*(\d+)/.exec(String((err as Error | undefined)?.message ?? ""));
  return match ? Number(match[1]) : undefined;
}

/** A reason object both W3C implementations and fails-components read a code from. */
function codedReason(code: number, message: string): Error {
  return Object.assign(new Error(message), { code, streamErrorCode: code });
}

class WtSendStream implements SendStream {
  readonly id: number;
  readonly #session: WebTransportSession;
  readonly #writable: WritableStream<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #highWater: number;
  #buffered = 0;
  #ended = false;
  /** finish() or reset() was called: writing again is a caller bug. */
  #endedLocally = false;
  #stoppedByPeer = false;
  #drainWaiters: Array<() => void> = [];
  readonly stopped: Promise<number | undefined>;

  constructor(
    session: WebTransportSession,
    id: number,
    writable: WritableStream<Uint8Array>,
    highWater: number,
  ) {
    this.id = id;
    this.#session = session;
    this.#writable = writable;
    this.#writer = writable.getWriter();
    this.#highWater = highWater;
    this.stopped = this.#writer.closed.then(
      () => undefined,
      (err: unknown) => {
        this.#ended = true;
        this.#buffered = 0;
        this.#wake();
        if (session.isClosed) return undefined;
        const code = streamErrorCode(err);
        // Our own abort also rejects `closed`; only a peer's STOP_SENDING counts as stopped.
        if (this.#stoppedByPeer || code === undefined) return undefined;
        this.#stoppedByPeer = true;
        return code;
      },
    );
    void session.closed.then(() => {
      this.#ended = true;
      this.#buffered = 0;
      this.#wake();
    });
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  get closed(): boolean {
    return this.#ended || this.#session.isClosed;
  }

  setPriority(priority: number, order = 0): void {
    const writable = this.#writable as WritableStream<Uint8Array> & { sendOrder?: number };
    try {
      writable.sendOrder = sendOrderOf(priority, order);
    } catch {
      // Implementations without sendOrder schedule in their own order.
    }
  }

  write(chunk: Uint8Array, onSent?: () => void): boolean {
    if (this.#endedLocally) {
      throw new MoqError("MOQ_CLOSED", `write on WebTransport stream ${this.id} after finish or reset`);
    }
    if (this.#ended || this.#session.isClosed) return true; // stopped by the peer or the session ended
    if (chunk.byteLength === 0) {
      onSent?.();
      return this.#buffered < this.#highWater;
    }
    const size = chunk.byteLength;
    this.#buffered += size;
    this.#session.countOut(size);
    this.#writer.write(chunk).then(
      () => {
        if (this.#ended) return;
        this.#buffered -= size;
        onSent?.();
        if (this.#buffered * 2 <= this.#highWater) this.#wake();
      },
      () => {
        // The stream failed (peer STOP_SENDING, reset, or session end): `stopped` reports it.
      },
    );
    return this.#buffered < this.#highWater;
  }

  drained(): Promise<void> {
    if (this.closed || this.#buffered < this.#highWater) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endedLocally = true;
    this.#writer.close().catch(() => {});
  }

  reset(code: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endedLocally = true;
    this.#buffered = 0;
    this.#wake();
    this.#writer.abort(codedReason(code, `stream reset with code ${code}`)).catch(() => {});
  }

  #wake(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }
}

class WtRecvStream implements RecvStream {
  readonly id: number;
  readonly #session: WebTransportSession;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #done = false;

  constructor(session: WebTransportSession, id: number, readable: ReadableStream<Uint8Array>) {
    this.id = id;
    this.#session = session;
    this.#reader = readable.getReader();
  }

  async read(): Promise<Uint8Array | undefined> {
    if (this.#done) return undefined;
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.#reader.read();
    } catch (err) {
      if (this.#done) return undefined;
      this.#done = true;
      if (this.#session.isClosed) throw this.#session.closedError();
      const code = streamErrorCode(err) ?? WireErrorCode.Cancel;
      throw new MoqError("MOQ_CANCELLED", `stream ${this.id} reset by the peer (code ${code})`, {
        wireCode: code,
      });
    }
    if (result.done) {
      this.#done = true;
      return undefined;
    }
    this.#session.countIn(result.value.byteLength);
    return result.value;
  }

  stop(code: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#reader.cancel(codedReason(code, `stop sending with code ${code}`)).catch(() => {});
  }
}

/** A transport session over one WebTransport session. See the module doc. */
export class WebTransportSession implements TransportSession {
  readonly role: "client" | "server";
  readonly protocol: string;
  /** "webtransport-h2" or "webtransport-h3" (or what the creator passed). */
  readonly kind: string;
  readonly #wt: W3CWebTransport;
  readonly #highWater: number;
  readonly #closed: Promise<TransportCloseInfo>;
  readonly #resolveClosed: (info: TransportCloseInfo) => void;
  readonly #bidiReader: ReadableStreamDefaultReader<W3CBidirectionalStream>;
  readonly #uniReader: ReadableStreamDefaultReader<ReadableStream<Uint8Array>>;
  #closedInfo: TransportCloseInfo | undefined;
  #nextLocalId = 0;
  #nextPeerId = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #inFlight = new Set<WtSendStream>();

  /** Takes ownership of a ready WebTransport session. */
  constructor(wt: W3CWebTransport, options: WebTransportSessionOptions) {
    this.#wt = wt;
    this.role = options.role;
    this.protocol = options.protocol;
    this.kind = options.kind ?? "webtransport";
    this.#highWater = options.streamHighWater ?? 64 * 1024;
    const { promise, resolve } = Promise.withResolvers<TransportCloseInfo>();
    this.#closed = promise;
    this.#resolveClosed = resolve;
    this.#bidiReader = wt.incomingBidirectionalStreams.getReader();
    this.#uniReader = wt.incomingUnidirectionalStreams.getReader();
    wt.closed.then(
      (info) =>
        this.#finalize({
          code: info?.closeCode ?? 0,
          reason: info?.reason ?? "",
          remote: true,
        }),
      (err: unknown) =>
        this.#finalize({
          code: WireErrorCode.Transport,
          reason: `WebTransport session failed: ${(err as Error)?.message ?? String(err)}`,
          remote: true,
        }),
    );
  }

  get closed(): Promise<TransportCloseInfo> {
    return this.#closed;
  }

  /** True once the session has closed. */
  get isClosed(): boolean {
    return this.#closedInfo !== undefined;
  }

  stats(): TransportStats {
    let buffered = 0;
    for (const stream of this.#inFlight) buffered += stream.bufferedBytes;
    return { bytesIn: this.#bytesIn, bytesOut: this.#bytesOut, bufferedBytes: buffered };
  }

  /** @internal */
  countIn(n: number): void {
    this.#bytesIn += n;
  }

  /** @internal */
  countOut(n: number): void {
    this.#bytesOut += n;
  }

  /** @internal The error pending calls fail with once the session is closed. */
  closedError(): MoqError {
    const info = this.#closedInfo;
    return new MoqError(
      "MOQ_CLOSED",
      `session closed (${info?.code ?? 0}${info?.reason ? `: ${info.reason}` : ""})`,
      {
        wireCode: info?.code,
      },
    );
  }

  #track(stream: WtSendStream): WtSendStream {
    this.#inFlight.add(stream);
    void stream.stopped.finally(() => this.#inFlight.delete(stream));
    return stream;
  }

  async openBidi(): Promise<BidiStream> {
    if (this.#closedInfo) throw this.closedError();
    let bidi: W3CBidirectionalStream;
    try {
      bidi = await this.#wt.createBidirectionalStream();
    } catch (err) {
      throw this.#closedInfo
        ? this.closedError()
        : new MoqError("MOQ_TRANSPORT", `cannot open a stream: ${(err as Error).message}`);
    }
    const id = this.#nextLocalId++;
    return {
      send: this.#track(new WtSendStream(this, id, bidi.writable, this.#highWater)),
      recv: new WtRecvStream(this, id, bidi.readable),
    };
  }

  async openUni(): Promise<SendStream> {
    if (this.#closedInfo) throw this.closedError();
    let writable: WritableStream<Uint8Array>;
    try {
      writable = await this.#wt.createUnidirectionalStream();
    } catch (err) {
      throw this.#closedInfo
        ? this.closedError()
        : new MoqError("MOQ_TRANSPORT", `cannot open a stream: ${(err as Error).message}`);
    }
    return this.#track(new WtSendStream(this, this.#nextLocalId++, writable, this.#highWater));
  }

  async acceptBidi(): Promise<BidiStream | undefined> {
    if (this.#closedInfo) return undefined;
    const next = await this.#bidiReader.read().catch(() => ({ done: true as const, value: undefined }));
    if (next.done || this.#closedInfo) return undefined;
    const id = this.#nextPeerId++;
    return {
      send: this.#track(new WtSendStream(this, id, next.value.writable, this.#highWater)),
      recv: new WtRecvStream(this, id, next.value.readable),
    };
  }

  async acceptUni(): Promise<RecvStream | undefined> {
    if (this.#closedInfo) return undefined;
    const next = await this.#uniReader.read().catch(() => ({ done: true as const, value: undefined }));
    if (next.done || this.#closedInfo) return undefined;
    return new WtRecvStream(this, this.#nextPeerId++, next.value);
  }

  close(code = 0, reason = "", error?: MoqError): void {
    if (this.#closedInfo) return;
    try {
      this.#wt.close({ closeCode: code, reason: reason.slice(0, 1024) });
    } catch {
      // Already closing underneath.
    }
    this.#finalize(error ? { code, reason, remote: false, error } : { code, reason, remote: false });
  }

  #finalize(info: TransportCloseInfo): void {
    if (this.#closedInfo) return;
    this.#closedInfo = info;
    // Release, never cancel: the library closes these streams itself and throws from a socket
    // callback if they were already closed.
    this.#bidiReader.releaseLock();
    this.#uniReader.releaseLock();
    this.#resolveClosed(info);
  }
}
