/**
 * A moq-lite relay endpoint over WebSocket: it accepts the HTTP/1.1 upgrade on any path of an
 * HTTP(S) server, negotiates the QMux or legacy framing, authorizes the connection, and runs a
 * {@link MoqSession} whose root is the URL path, serving and importing through one shared
 * {@link OriginProducer}. The same HTTP server answers `GET /certificate.sha256` for clients in
 * development mode.
 *
 * ```ts
 * const origin = new OriginProducer();
 * const server = await serveMoq({ port: 4443, origin });
 * // clients connect to http://host:4443/<root>; publishers' broadcasts land in `origin`
 * await server.close();
 * ```
 */
import http, { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { MoqError, toMoqError } from "./error.ts";
import type { FrameMeta } from "./model/frame.ts";
import type { OriginProducer } from "./model/origin.ts";
import { joinPath, normalizePath } from "./path.ts";
import type { Framing } from "./qmux/frame.ts";
import { type QmuxLimits, QmuxSession } from "./qmux/session.ts";
import { DEFAULT_FRAMINGS, type SubprotocolSelection, selectSubprotocol } from "./qmux/subprotocol.ts";
import type { SessionLimits } from "./session/context.ts";
import { type MoqLogger, silentLogger } from "./session/logger.ts";
import { MoqSession } from "./session/session.ts";
import { versionName } from "./wire/version.ts";

/** What a connection may do, as path prefixes relative to its root. `undefined` = everything, `[]` = nothing. */
export interface MoqPermissions {
  readonly read?: readonly string[];
  readonly publish?: readonly string[];
}

/** The input of an {@link MoqAuthorizer}. */
export interface AuthorizeRequest {
  /** The session root: the normalized URL path. */
  readonly path: string;
  /** `?token=` or `?jwt=` from the URL. */
  readonly token: string | undefined;
  readonly url: URL;
  readonly remoteAddress: string | undefined;
}

/**
 * Decides whether a connection may open and what it may read and publish. Throwing (or
 * rejecting) refuses the connection with HTTP 401 before the WebSocket upgrade.
 */
export type MoqAuthorizer = (
  request: AuthorizeRequest,
) => MoqPermissions | undefined | Promise<MoqPermissions | undefined>;

/** A frame handed to a subscriber's connection (for latency measurement). */
export interface ServerFrameSentEvent {
  /** Absolute broadcast path in the origin. */
  readonly broadcast: string;
  readonly track: string;
  readonly bytes: number;
  readonly meta: FrameMeta | undefined;
  /** Wall-clock time (Unix ms) at which the frame was handed to the connection. */
  readonly sentAtMs: number;
}

/** Options of {@link MoqServer} and {@link serveMoq}. */
export interface MoqServerOptions {
  /** The origin sessions serve from and publish into. */
  readonly origin: OriginProducer;
  readonly authorize?: MoqAuthorizer;
  /** pino-compatible logger. */
  readonly logger?: MoqLogger;
  readonly sessionLimits?: Partial<SessionLimits>;
  readonly transportLimits?: Partial<QmuxLimits>;
  /** Framings the server selects, in order of preference (default qmux-00, then webtransport). */
  readonly framings?: readonly Framing[];
  /**
   * Application protocols the server may select in `<framing>.<app>` form (e.g. "moq-lite-04").
   * Default none: clients are given the bare framing and negotiate lite-02 by SETUP.
   */
  readonly appProtocols?: readonly string[];
  /** SHA-256 of the TLS certificate (hex, colons allowed) served at `/certificate.sha256`. */
  readonly certificateSha256?: string;
  /** WebSocket ping interval; a connection missing a pong for a whole interval is dropped. Default 15 s. */
  readonly pingIntervalMs?: number;
  /** Largest WebSocket message accepted (QMux frames are at most 16 KiB). Default 64 KiB. */
  readonly maxWebSocketMessageBytes?: number;
  /** Called whenever a frame is handed to a subscriber's connection. */
  readonly onFrameSent?: (event: ServerFrameSentEvent) => void;
  /** Concurrent WebSocket connections accepted; further upgrades get HTTP 503. Default 10 000. */
  readonly maxConnections?: number;
}

/** Options of {@link serveMoq}. */
export interface ServeMoqOptions extends MoqServerOptions {
  readonly port: number;
  readonly host?: string;
  /** TLS options (key, cert, ...): the server speaks HTTPS/WSS when given. */
  readonly tls?: https.ServerOptions;
}

/** Counters for the admin API. */
export interface MoqServerStats {
  readonly sessionsOpen: number;
  readonly sessionsTotal: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Live subscriptions per absolute broadcast path. */
  readonly subscribers: ReadonlyMap<string, number>;
}

interface SessionEntry {
  readonly session: MoqSession;
  readonly root: string;
}

const CERTIFICATE_PATH = "/certificate.sha256";
const MAX_ROOT_BYTES = 255;
const ROOT_CHARSET = /^[A-Za-z0-9._/-]*$/;

/** The session root for a URL path, or undefined when the path is invalid. */
export function parseSessionRoot(pathname: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  const root = normalizePath(decoded);
  if (Buffer.byteLength(root) > MAX_ROOT_BYTES || !ROOT_CHARSET.test(root)) return undefined;
  if (root.split("/").some((segment) => segment === "." || segment === "..")) return undefined;
  return root;
}

function normalizeFingerprint(value: string): string {
  const hex = value.replace(/[\s:]/g, "").replace(/^0x/i, "").toLowerCase();
  if (!/^([0-9a-f]{2})+$/.test(hex))
    throw new RangeError(`certificateSha256 ${JSON.stringify(value)} is not hex`);
  return hex;
}

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
  socket.once("finish", () => socket.destroy());
}

/** Accepts moq-lite WebSocket connections for one origin. Mount it with {@link attach} or use {@link serveMoq}. */
export class MoqServer {
  readonly #options: MoqServerOptions;
  readonly #logger: MoqLogger;
  readonly #fingerprint: string | undefined;
  readonly #wss: WebSocketServer;
  readonly #selections: WeakMap<IncomingMessage, SubprotocolSelection> = new WeakMap();
  readonly #sockets: Set<WebSocket> = new Set();
  readonly #transports: Set<QmuxSession> = new Set();
  readonly #sessions: Map<MoqSession, SessionEntry> = new Map();
  #sessionsTotal = 0;
  #closedBytesIn = 0;
  #closedBytesOut = 0;
  #httpServer: http.Server | https.Server | undefined;
  #ownsHttpServer = false;
  #closing: Promise<void> | undefined;

  /** A server for `options.origin`; it does not listen by itself. */
  constructor(options: MoqServerOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#fingerprint = options.certificateSha256
      ? normalizeFingerprint(options.certificateSha256)
      : undefined;
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: options.maxWebSocketMessageBytes ?? 64 * 1024,
      handleProtocols: (_offered, req) => this.#selections.get(req)?.subprotocol ?? false,
    });
  }

  /** The listening address of the HTTP server this server owns or is attached to. */
  get address(): AddressInfo | undefined {
    const address = this.#httpServer?.address();
    return address && typeof address === "object" ? address : undefined;
  }

  /** Live sessions. */
  get sessions(): Iterable<MoqSession> {
    return this.#sessions.keys();
  }

  /** Counters: sessions, bytes, subscribers per broadcast. */
  stats(): MoqServerStats {
    let bytesIn = this.#closedBytesIn;
    let bytesOut = this.#closedBytesOut;
    const subscribers = new Map<string, number>();
    for (const { session, root } of this.#sessions.values()) {
      const stats = session.transport.stats();
      bytesIn += stats.bytesIn;
      bytesOut += stats.bytesOut;
      for (const sub of session.subscriptions()) {
        const path = joinPath(root, sub.broadcast);
        subscribers.set(path, (subscribers.get(path) ?? 0) + 1);
      }
    }
    return {
      sessionsOpen: this.#sessions.size,
      sessionsTotal: this.#sessionsTotal,
      bytesIn,
      bytesOut,
      subscribers,
    };
  }

  /** Routes WebSocket upgrades of `server` to this MoQ server (every path). */
  attach(server: http.Server | https.Server): void {
    this.#httpServer ??= server;
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.handleUpgrade(req, socket, head),
    );
  }

  /**
   * Answers `GET /certificate.sha256` (bare hex, CORS `*`; 404 when no fingerprint is
   * configured). Returns false for any other request, which the caller handles.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== CERTIFICATE_PATH) return false;
    const headers = {
      "content-type": "text/plain; charset=utf-8",
      "access-control-allow-origin": "*",
      "cache-control": "no-store",
    };
    if (this.#fingerprint === undefined) {
      res.writeHead(404, headers).end("no certificate fingerprint is configured");
    } else {
      res.writeHead(200, headers).end(this.#fingerprint);
    }
    return true;
  }

  /** Handles an HTTP upgrade request (from an `upgrade` event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    void this.#upgrade(req, socket, head).catch((err) => {
      this.#logger.error({ err: toMoqError(err).message }, "moq upgrade failed");
      rejectUpgrade(socket, 500, "internal error");
    });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const remoteAddress = req.socket.remoteAddress;
    if (this.#closing) return rejectUpgrade(socket, 503, "server is shutting down");
    if (this.#transports.size >= (this.#options.maxConnections ?? 10_000)) {
      this.#logger.warn(
        { remoteAddress, connections: this.#transports.size },
        "moq connection refused: too many connections",
      );
      return rejectUpgrade(socket, 503, "too many connections");
    }
    if (req.headers.upgrade?.toLowerCase() !== "websocket")
      return rejectUpgrade(socket, 400, "expected a WebSocket upgrade");
    // Validate the path as sent: URL parsing would silently resolve "..".
    const rawPath = (req.url ?? "/").split("?")[0]!;
    const root = parseSessionRoot(rawPath);
    if (root === undefined) {
      this.#logger.info({ remoteAddress, path: rawPath }, "moq connection refused: invalid path");
      return rejectUpgrade(socket, 400, `invalid session path ${JSON.stringify(rawPath)}`);
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const offered = (req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .filter((value) => value.trim() !== "");
    const selection = selectSubprotocol(
      offered,
      this.#options.framings ?? DEFAULT_FRAMINGS,
      this.#options.appProtocols ?? [],
    );
    if (!selection) {
      return rejectUpgrade(
        socket,
        400,
        "no supported WebSocket subprotocol offered (expected qmux-00 or webtransport)",
      );
    }
    const token = url.searchParams.get("token") ?? url.searchParams.get("jwt") ?? undefined;
    let permissions: MoqPermissions | undefined;
    try {
      permissions = (await this.#options.authorize?.({ path: root, token, url, remoteAddress })) ?? undefined;
    } catch (err) {
      this.#logger.info(
        { remoteAddress, path: root, err: toMoqError(err).message },
        "moq connection refused: unauthorized",
      );
      return rejectUpgrade(socket, 401, "unauthorized");
    }
    if (this.#closing) return rejectUpgrade(socket, 503, "server is shutting down");
    if (socket.destroyed) return;
    this.#selections.set(req, selection);
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#onSocket(ws, socket as Socket, selection, root, permissions, remoteAddress),
    );
  }

  #onSocket(
    ws: WebSocket,
    rawSocket: Socket,
    selection: SubprotocolSelection,
    root: string,
    permissions: MoqPermissions | undefined,
    remoteAddress: string | undefined,
  ): void {
    const options = this.#options;
    this.#sockets.add(ws);
    ws.once("close", () => this.#sockets.delete(ws));
    const transport = new QmuxSession(ws, {
      framing: selection.framing,
      role: "server",
      protocol: selection.protocol,
      limits: options.transportLimits,
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
      rawSocket: typeof rawSocket.cork === "function" ? rawSocket : undefined,
    });
    this.#transports.add(transport);
    void transport.closed.then(() => {
      this.#transports.delete(transport);
      const stats = transport.stats();
      this.#closedBytesIn += stats.bytesIn;
      this.#closedBytesOut += stats.bytesOut;
    });

    let serve = options.origin.consume().withRoot(root);
    if (permissions?.read) serve = serve.restrict(permissions.read);
    let receive = options.origin.withRoot(root);
    if (permissions?.publish) receive = receive.restrict({ publish: permissions.publish });
    const onFrameSent = options.onFrameSent;
    void MoqSession.accept(transport, {
      serve,
      receive,
      announceInterest: permissions?.publish ?? [""],
      limits: options.sessionLimits,
      logger: this.#logger,
      logFields: { remoteAddress, root, framing: selection.framing },
      onFrameSent: onFrameSent
        ? (event) =>
            onFrameSent({
              broadcast: joinPath(root, event.broadcast),
              track: event.track,
              bytes: event.bytes,
              meta: event.meta,
              sentAtMs: Date.now(),
            })
        : undefined,
    }).then(
      (session) => {
        if (transport.isClosed) return;
        this.#sessionsTotal++;
        this.#sessions.set(session, { session, root });
        this.#logger.debug(
          { remoteAddress, root, version: versionName(session.version) },
          "moq session opened",
        );
        void session.closed.then(() => this.#sessions.delete(session));
      },
      () => {
        // Setup failures are logged and the connection closed by the session.
      },
    );
  }

  /**
   * Closes every session (CONNECTION_CLOSE), waits until their sockets are closed, and closes
   * the HTTP server if {@link serveMoq} created it. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const transport of [...this.#transports]) {
      transport.close(0, "server shutting down", new MoqError("MOQ_CLOSED", "server shutting down"));
    }
    await Promise.all(
      [...this.#sockets].map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === ws.CLOSED) return resolve();
            const timer = setTimeout(() => ws.terminate(), 2000);
            ws.once("close", () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    this.#wss.close();
    const server = this.#httpServer;
    if (server && this.#ownsHttpServer) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  /** @internal Used by {@link serveMoq}: this server owns `server` and closes it. */
  adopt(server: http.Server | https.Server): void {
    this.#httpServer = server;
    this.#ownsHttpServer = true;
  }
}

/**
 * Starts a standalone relay endpoint: an HTTP (or HTTPS, with `tls`) server on `port` that
 * accepts MoQ WebSocket connections on every path, answers `/certificate.sha256`, and returns
 * 426 for other plain requests. Resolves once listening.
 */
export async function serveMoq(options: ServeMoqOptions): Promise<MoqServer> {
  const moq = new MoqServer(options);
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (moq.handleRequest(req, res)) return;
    res
      .writeHead(426, {
        "content-type": "text/plain; charset=utf-8",
        upgrade: "websocket",
        connection: "Upgrade",
      })
      .end("this endpoint speaks MoQ over WebSocket (qmux-00 or webtransport subprotocol)");
  };
  const server = options.tls ? https.createServer(options.tls, onRequest) : http.createServer(onRequest);
  moq.adopt(server);
  moq.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return moq;
}
