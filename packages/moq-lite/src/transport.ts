/**
 * The transport contract that moq-lite sessions run on: a multiplexed connection with
 * bidirectional and unidirectional streams, as QUIC and WebTransport provide them. QMux over
 * WebSocket (`src/qmux/`) implements it today; a WebTransport adapter implements the same
 * interfaces, so sessions never know which one carries them.
 *
 * Contract, for implementers:
 * - Send streams queue chunks by reference (callers never modify a written chunk) and transmit
 *   them as the transport's scheduler decides: higher `priority` first, then higher `order`
 *   (a relay uses the group sequence so newer groups go first). `write()` returns false once the
 *   stream's buffer is over its high-water mark; the writer then awaits `drained()`.
 * - Nothing is sent on a stream after `finish()` or `reset()`. When the peer sends STOP_SENDING,
 *   queued data is dropped at once, the stream is reset with the peer's code, `stopped`
 *   resolves, and later writes are silently discarded (the writer notices `closed`).
 * - `read()` resolves with the next chunk, `undefined` at FIN (or after `stop()`), and rejects
 *   with a {@link MoqError} carrying the peer's code when the peer resets the stream or the
 *   session fails. Flow-control credit is returned to the peer as chunks are read, so a reader
 *   that stops reading stops its peer rather than growing memory.
 * - `close()` is idempotent; it ends every stream, settles every pending call, and resolves
 *   `closed` with the reason.
 */
import type { MoqError } from "./error.ts";

/** The sending half of a stream. */
export interface SendStream {
  /** The transport's stream id, or -1 until the stream has been assigned one. */
  readonly id: number;
  /** Bytes queued but not yet handed to the network. */
  readonly bufferedBytes: number;
  /** True once the stream can send nothing more: finished, reset, stopped by the peer, or the session closed. */
  readonly closed: boolean;
  /** Resolves with the peer's STOP_SENDING code, or undefined when the session closed first. */
  readonly stopped: Promise<number | undefined>;
  /** Scheduling weight: higher `priority` (0-255) first; among equal priorities, higher `order` first. */
  setPriority(priority: number, order?: number): void;
  /**
   * Queues `chunk` (by reference). `onSent` runs once its last byte has been handed to the
   * network. Returns false when the buffer is over the high-water mark: await {@link drained}.
   * Throws after `finish()`/`reset()`; discards silently once stopped by the peer.
   */
  write(chunk: Uint8Array, onSent?: () => void): boolean;
  /** Resolves once the buffer is below its low-water mark, or the stream is closed. Never rejects. */
  drained(): Promise<void>;
  /** Sends FIN after the queued data. Idempotent. */
  finish(): void;
  /** Abandons the stream: drops queued data and sends RESET_STREAM with `code`. Idempotent. */
  reset(code: number): void;
}

/** The receiving half of a stream. */
export interface RecvStream {
  /** The transport's stream id. */
  readonly id: number;
  /** The next chunk (a view the caller may keep), or undefined at FIN. Rejects when reset. */
  read(): Promise<Uint8Array | undefined>;
  /** Stops reading: discards buffered data and sends STOP_SENDING with `code`. Idempotent. */
  stop(code: number): void;
}

/** Both halves of a bidirectional stream. */
export interface BidiStream {
  readonly send: SendStream;
  readonly recv: RecvStream;
}

/** Why a transport session ended. */
export interface TransportCloseInfo {
  /** Application close code (CONNECTION_CLOSE), or the MoqError wire code for local failures. */
  readonly code: number;
  readonly reason: string;
  /** True when the peer closed (or the connection dropped), false when this side closed. */
  readonly remote: boolean;
  /** The local error that closed the session, if any (e.g. a protocol violation by the peer). */
  readonly error?: MoqError;
}

/** Byte counters of a transport session. */
export interface TransportStats {
  /** Bytes received from the network, framing included. */
  readonly bytesIn: number;
  /** Bytes handed to the network, framing included. */
  readonly bytesOut: number;
  /** Bytes queued in send streams and not yet written to the socket, plus unflushed socket bytes. */
  readonly bufferedBytes: number;
}

/** A multiplexed connection that a moq-lite session runs on. */
export interface TransportSession {
  /** "client" for the side that connected, "server" for the side that accepted. */
  readonly role: "client" | "server";
  /**
   * The negotiated application protocol: "" or "moql" (moq-lite version chosen by SETUP),
   * "moq-lite-03", "moq-lite-04".
   */
  readonly protocol: string;
  /** Opens a bidirectional stream. May wait for the peer's stream credit. */
  openBidi(): Promise<BidiStream>;
  /** Opens a unidirectional stream. May wait for the peer's stream credit. */
  openUni(): Promise<SendStream>;
  /** The next bidirectional stream the peer opened, or undefined once the session is closed. */
  acceptBidi(): Promise<BidiStream | undefined>;
  /** The next unidirectional stream the peer opened, or undefined once the session is closed. */
  acceptUni(): Promise<RecvStream | undefined>;
  /** Closes the session with an application `code` and `reason`. Idempotent. */
  close(code?: number, reason?: string, error?: MoqError): void;
  /** Resolves once the session is closed. */
  readonly closed: Promise<TransportCloseInfo>;
  /** Live counters. */
  stats(): TransportStats;
}
