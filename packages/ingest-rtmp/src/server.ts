/**
 * The RTMP server: accepts connections (its own listener, or sockets handed to `attach()`, e.g.
 * from a TLS server for RTMPS), runs each through the handshake and command flow, admits
 * publishes, enforces the duplicate-name policy, and reports each publish as a
 * {@link PublishSession}.
 */
import { EventEmitter } from "node:events";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import type { PublishRejection } from "./admission.ts";
import { type ConnectionHost, RtmpConnection } from "./connection.ts";
import type { RtmpError } from "./errors.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { type ResolvedServerOptions, type RtmpServerOptions, resolveServerOptions } from "./options.ts";
import type { PublishSession } from "./session.ts";

/** Counters for metrics. */
export interface RtmpServerStats {
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since start. */
  readonly connectionsTotal: number;
  /** Publish sessions running now. */
  readonly publishing: number;
  readonly publishesStarted: number;
  readonly publishesRejected: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Bytes held by all connections' chunk stream readers now (each bounded by its budget). */
  readonly bufferedBytes: number;
  /** Connections closed by a violation, by error code. */
  readonly protocolErrors: Readonly<Record<string, number>>;
}

/** Events of an {@link RtmpServer}. */
export interface RtmpServerEvents {
  /** A publish was admitted and `NetStream.Publish.Start` sent. Attach session listeners here. */
  publish: [session: PublishSession];
  /** A publish was refused (denied, bad name, duplicate); the publisher got an `onStatus` error. */
  reject: [rejection: PublishRejection];
  /** A connection was closed for a violation (already logged once). */
  protocolError: [error: RtmpError, details: Record<string, unknown>];
}

/**
 * An RTMP ingest server.
 *
 * ```ts
 * const server = new RtmpServer({ authorize: async ({ query }) => query.get("key") === "s3cret"
 *   ? { allow: true } : { allow: false, status: "NetStream.Publish.Unauthorized", description: "bad key" } });
 * server.on("publish", (session) => {
 *   session.on("config", (config) => console.log(config.codecString));
 *   session.on("sample", (sample) => console.log(sample.kind, sample.dts));
 *   session.on("end", (reason) => console.log("ended", reason));
 * });
 * await server.listen(1935);
 * ```
 */
export class RtmpServer extends EventEmitter<RtmpServerEvents> {
  readonly #options: ResolvedServerOptions;
  readonly #logger: Logger;
  readonly #connections = new Set<RtmpConnection>();
  readonly #sessions = new Map<string, PublishSession>();
  #server: Server | undefined;
  #closing = false;
  #connectionsTotal = 0;
  #publishesStarted = 0;
  #publishesRejected = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  readonly #protocolErrors: Record<string, number> = {};
  readonly #host: ConnectionHost;

  constructor(options?: RtmpServerOptions) {
    super();
    this.#options = resolveServerOptions(options);
    this.#logger = options?.logger ?? silentLogger;
    this.#host = this.#makeHost();
  }

  /** The effective options (defaults filled in). */
  get options(): ResolvedServerOptions {
    return this.#options;
  }

  /** A snapshot of the counters. */
  get stats(): RtmpServerStats {
    let buffered = 0;
    for (const c of this.#connections) buffered += c.bufferedBytes;
    return {
      bufferedBytes: buffered,
      connections: this.#connections.size,
      connectionsTotal: this.#connectionsTotal,
      publishing: this.#sessions.size,
      publishesStarted: this.#publishesStarted,
      publishesRejected: this.#publishesRejected,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      protocolErrors: { ...this.#protocolErrors },
    };
  }

  /** The live session publishing `name`, if any. */
  session(name: string): PublishSession | undefined {
    return this.#sessions.get(name);
  }

  /** Every live session. */
  sessions(): PublishSession[] {
    return [...this.#sessions.values()];
  }

  /** Starts listening (port 0 picks a free port); resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo> {
    if (this.#server !== undefined) return Promise.reject(new Error("RtmpServer is already listening"));
    if (this.#closing) return Promise.reject(new Error("RtmpServer is closed"));
    const server = createServer((socket) => this.attach(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        server.on("error", (err) => this.#logger.error({ error: err.message }, "RTMP listener error"));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /** The bound address while listening. */
  address(): AddressInfo | undefined {
    const a = this.#server?.address();
    return a !== null && typeof a === "object" ? a : undefined;
  }

  /** Serves an already-connected socket (plain TCP, or a TLS socket for RTMPS). */
  attach(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= this.#options.maxConnections) {
      this.#count("RTMP_TOO_MANY_CONNECTIONS");
      this.#logger.warn(
        { remoteAddress: socket.remoteAddress, limit: this.#options.maxConnections },
        "RTMP connection refused: maxConnections reached",
      );
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    this.#connectionsTotal++;
    this.#connections.add(new RtmpConnection(socket, this.#host));
  }

  /**
   * Stops listening and ends every connection (sessions end with reason "shutdown"); resolves
   * when every socket has closed.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const server = this.#server;
    const listenerClosed =
      server === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) => server.close(() => resolve()));
    const connections = [...this.#connections];
    for (const c of connections) c.shutdown();
    await Promise.all(connections.map((c) => c.whenClosed));
    await listenerClosed;
  }

  #count(code: string): void {
    this.#protocolErrors[code] = (this.#protocolErrors[code] ?? 0) + 1;
  }

  #claim(name: string): boolean {
    const existing = this.#sessions.get(name);
    if (existing === undefined || existing.ended) return true;
    const policy = this.#options.duplicatePublisher;
    const stale = !existing.alive || existing.msSinceMedia > this.#options.staleAfterMs;
    if (policy === "reject" || (policy === "takeover-if-stale" && !stale)) return false;
    this.#logger.info(
      { name, remoteAddress: existing.remoteAddress, stale },
      "RTMP publish takes over an existing session",
    );
    existing.close("takeover");
    return true;
  }

  #makeHost(): ConnectionHost {
    return {
      options: this.#options,
      logger: this.#logger,
      countBytesIn: (n) => {
        this.#bytesIn += n;
      },
      countBytesOut: (n) => {
        this.#bytesOut += n;
      },
      reportError: (error, fields) => {
        this.#count(error.code);
        const log = error.code === "RTMP_INTERNAL" ? this.#logger.error : this.#logger.warn;
        log.call(this.#logger, { code: error.code, ...fields }, error.message);
        if (this.listenerCount("protocolError") > 0) this.emit("protocolError", error, fields);
      },
      claim: (name) => this.#claim(name),
      started: (session) => {
        this.#publishesStarted++;
        this.#sessions.set(session.name, session);
        this.emit("publish", session);
      },
      ended: (session) => {
        if (this.#sessions.get(session.name) === session) this.#sessions.delete(session.name);
      },
      rejected: (info) => {
        this.#publishesRejected++;
        this.emit("reject", info);
      },
      closed: (connection) => {
        this.#connections.delete(connection);
      },
    };
  }
}
