/**
 * Request IDs and their flow control. The client numbers its requests 0, 2, 4, ... and the
 * server 1, 3, 5, ...; in drafts 14 to 16 each side may only use IDs below the Maximum Request
 * ID the other granted (the SETUP option, raised later by MAX_REQUEST_ID).
 *
 * Incoming: this side grants a window of concurrent requests and raises the maximum as
 * requests finish, so the number of open peer requests never exceeds the window. IDs may arrive
 * out of order (the official clients allocate an ID before opening the stream that carries it),
 * so duplicates are found with a floor plus the set of IDs seen above it, bounded by the window.
 * Outgoing: requests wait for credit; the first wait per maximum sends REQUESTS_BLOCKED.
 */
import { MoqError } from "../error.ts";
import { IetfProtocolError, IetfSessionCode } from "./errors.ts";

/** Settings of a {@link RequestIdFlow}. */
export interface RequestIdFlowOptions {
  readonly role: "client" | "server";
  /** Drafts 14 to 16 have MAX_REQUEST_ID; draft-17 bounds requests by stream limits instead. */
  readonly flowControlled: boolean;
  /** Concurrent peer requests this side accepts. */
  readonly window: number;
  /** The peer's initial MAX_REQUEST_ID (from its SETUP). */
  readonly peerMax: number;
}

/** Request ID allocation (ours) and validation plus credit (the peer's), for one session. */
export class RequestIdFlow {
  readonly #flowControlled: boolean;
  readonly #window: number;
  readonly #peerParity: number;
  // Incoming.
  #granted: number;
  #floor: number;
  readonly #seen: Set<number> = new Set();
  #releasedSinceGrant = 0;
  // Outgoing.
  #next: number;
  #peerMax: number;
  #blockedAt = -1;
  #waiters: Array<{ resolve: () => void; reject: (error: MoqError) => void }> = [];
  #closed: MoqError | undefined;
  /** Called when an outgoing request is blocked on the peer's maximum (send REQUESTS_BLOCKED). */
  onBlocked: ((max: number) => void) | undefined;

  constructor(options: RequestIdFlowOptions) {
    this.#flowControlled = options.flowControlled;
    this.#window = Math.max(1, options.window);
    this.#peerParity = options.role === "server" ? 0 : 1;
    this.#floor = this.#peerParity;
    this.#granted = this.#peerParity + 2 * this.#window;
    this.#next = options.role === "server" ? 1 : 0;
    this.#peerMax = options.flowControlled ? options.peerMax : Number.POSITIVE_INFINITY;
  }

  /** The MAX_REQUEST_ID this side grants initially (for its SETUP). */
  get initialMax(): number {
    return this.#peerParity + 2 * this.#window;
  }

  /** The maximum granted to the peer so far. */
  get granted(): number {
    return this.#granted;
  }

  /** True for an ID the peer may have used already (its parity, not above what it sent). */
  isPeerId(id: number): boolean {
    return id % 2 === this.#peerParity && (id < this.#floor || this.#seen.has(id));
  }

  /** True for an ID this side has issued. */
  isOwnId(id: number): boolean {
    return id % 2 !== this.#peerParity && id < this.#next;
  }

  /** Checks and records the ID of a new peer request; throws the session error on violation. */
  accept(id: number): void {
    if (id % 2 !== this.#peerParity) {
      throw new IetfProtocolError(
        IetfSessionCode.InvalidRequestId,
        `request id ${id} has the wrong parity for the peer`,
      );
    }
    if (id < this.#floor || this.#seen.has(id)) {
      throw new IetfProtocolError(IetfSessionCode.InvalidRequestId, `request id ${id} was already used`);
    }
    if (this.#flowControlled && id >= this.#granted) {
      throw new IetfProtocolError(
        IetfSessionCode.TooManyRequests,
        `request id ${id} is not below the maximum request id ${this.#granted}`,
      );
    }
    // A gap that never fills would keep every later ID in the set: bound it.
    if (this.#seen.size >= 4 * this.#window) {
      throw new IetfProtocolError(
        IetfSessionCode.InvalidRequestId,
        `request ids skip too far ahead (at ${id})`,
      );
    }
    this.#seen.add(id);
    while (this.#seen.delete(this.#floor)) this.#floor += 2;
  }

  /**
   * A peer request finished. Returns the new maximum to announce with MAX_REQUEST_ID when a
   * quarter of the window has been released (or `urgent`, after REQUESTS_BLOCKED), else undefined.
   */
  release(urgent = false): number | undefined {
    if (!this.#flowControlled) return undefined;
    this.#releasedSinceGrant++;
    return this.#maybeGrant(urgent);
  }

  /** The peer says it is blocked: grant whatever has been released. */
  blocked(): number | undefined {
    return this.#maybeGrant(true);
  }

  #maybeGrant(urgent: boolean): number | undefined {
    if (this.#releasedSinceGrant === 0) return undefined;
    if (!urgent && this.#releasedSinceGrant < Math.ceil(this.#window / 4)) return undefined;
    this.#granted += 2 * this.#releasedSinceGrant;
    this.#releasedSinceGrant = 0;
    return this.#granted;
  }

  /** The next ID for an outgoing request, waiting for the peer's credit. Rejects once closed. */
  async next(): Promise<number> {
    for (;;) {
      if (this.#closed) throw this.#closed;
      if (this.#next < this.#peerMax) {
        const id = this.#next;
        this.#next += 2;
        return id;
      }
      if (this.#blockedAt !== this.#peerMax) {
        this.#blockedAt = this.#peerMax;
        this.onBlocked?.(this.#peerMax);
      }
      await new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }
  }

  /** MAX_REQUEST_ID from the peer; it must only grow. */
  raise(max: number): void {
    if (!this.#flowControlled) return;
    if (max <= this.#peerMax) {
      throw new IetfProtocolError(
        IetfSessionCode.ProtocolViolation,
        `MAX_REQUEST_ID ${max} does not exceed the current maximum ${this.#peerMax}`,
      );
    }
    this.#peerMax = max;
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }

  /** Fails pending and future allocations. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = new MoqError("MOQ_CLOSED", "session closed");
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#closed);
  }
}
