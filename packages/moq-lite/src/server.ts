/**
 * A moq-lite relay endpoint. {@link MoqServer} authorizes connections and runs a
 * {@link MoqSession} per connection, whose root is the URL path, serving and importing through
 * one shared {@link OriginProducer}. It accepts:
 *
 * - WebSocket (QMux `qmux-00` or the legacy `webtransport` framing): HTTP/1.1 upgrades on any
 *   path, and RFC 8441 extended CONNECT over HTTP/2;
 * - WebTransport over HTTP/2 on the same TLS port, and over HTTP/3 on the UDP port with the same
 *   number when the optional quiche addon is installed (see `webtransport/listener.ts`).
 *
 * {@link serveMoq} starts all of it on one port. Without `tls` it generates a development
 * certificate (ECDSA P-256, ≤ 14 days, rotated before it expires) and serves plain HTTP/WS and
 * TLS on the same TCP port, told apart by the first byte; `GET /certificate.sha256` answers the
 * fingerprint of the certificate WebTransport uses, as the official clients expect.
 *
 * ```ts
 * const origin = new OriginProducer();
 * const server = await serveMoq({ port: 4443, origin });
 * // clients connect to http://host:4443/<root>; publishers' broadcasts land in `origin`
 * await server.close();
 * ```
 */
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import type {
  Http2ServerRequest,
  Http2ServerResponse,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from "node:http2";
import https from "node:https";
import { createRequire } from "node:module";
import net, { type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import { authorizationStatus, MoqError, toMoqError, WireErrorCode } from "./error.ts";
import type { IetfOptions } from "./ietf/context.ts";
import type { FrameMeta } from "./model/frame.ts";
import type { OriginProducer } from "./model/origin.ts";
import { joinPath, normalizePath } from "./path.ts";
import type { Framing } from "./qmux/frame.ts";
import { type QmuxLimits, QmuxSession } from "./qmux/session.ts";
import { DEFAULT_FRAMINGS, type SubprotocolSelection, selectSubprotocol } from "./qmux/subprotocol.ts";
import type { SessionLimits } from "./session/context.ts";
import { type MoqLogger, silentLogger } from "./session/logger.ts";
import { MoqSession } from "./session/session.ts";
import { closeHttpServer, TlsEndpoints } from "./tls-endpoints.ts";
import type { TransportSession } from "./transport.ts";
import {
  certificateSha256,
  type DevCertificate,
  type DevCertificateOptions,
  generateDevCertificate,
} from "./webtransport/certificate.ts";
import type { WebTransportDecision, WebTransportKind, WebTransportRequest } from "./webtransport/listener.ts";
import {
  type FailsServerSession,
  probeHttp3Addon,
  webTransportLibraryMissing,
} from "./webtransport/loader.ts";
import { WebTransportSession } from "./webtransport/session.ts";
import { AppProtocol, versionName } from "./wire/version.ts";

/**
 * `node:http`, loaded with `require`: importing it as an ES module makes Node read every export
 * to build the module namespace, including the lazy `WebSocket`/`MessageEvent`/`CloseEvent`
 * getters, which load undici (Node's fetch and WebSocket client); that costs a relay about 14 MB
 * of memory for code it never runs.
 */
const http = createRequire(import.meta.url)("node:http") as typeof import("node:http");

/**
 * What a connection may do, as path prefixes relative to its root (`undefined` = everything,
 * `[]` = nothing), and until when.
 */
export interface MoqPermissions {
  readonly read?: readonly string[];
  readonly publish?: readonly string[];
  /**
   * Unix ms at which the credentials expire: the session is closed with CONNECTION_CLOSE
   * (Unauthorized, "authorization expired") within a second after it. Already past: 401.
   */
  readonly expiresAtMs?: number;
}

/** How a connection reached the relay. */
export type MoqTransportKind = "websocket" | "websocket-h2" | WebTransportKind;

/** The input of an {@link MoqAuthorizer}. */
export interface AuthorizeRequest {
  /** The session root: the normalized URL path. */
  readonly path: string;
  /** `?token=` or `?jwt=` from the URL. */
  readonly token: string | undefined;
  readonly url: URL;
  readonly remoteAddress: string | undefined;
  /** The transport the connection arrived on. */
  readonly transport: MoqTransportKind;
}

/**
 * Decides whether a connection may open and what it may read and publish. Throwing (or
 * rejecting) refuses the connection before the upgrade / CONNECT with the error's `status` when
 * it is 400, 401 or 403 (see {@link MoqAuthorizationError}), otherwise 401.
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
   * Application protocols the server may select on WebSocket in `<framing>.<app>` form (e.g.
   * "moq-lite-04"). Default none: clients are given the bare framing and negotiate lite-02 by SETUP.
   */
  readonly appProtocols?: readonly string[];
  /**
   * SHA-256 of the TLS certificate (hex, colons allowed) served at `/certificate.sha256`.
   * {@link serveMoq} sets it from the certificate WebTransport actually uses.
   */
  readonly certificateSha256?: string;
  /** WebSocket ping interval; a connection missing a pong for a whole interval is dropped. Default 15 s. */
  readonly pingIntervalMs?: number;
  /** Largest WebSocket message accepted (QMux frames are at most 16 KiB). Default 64 KiB. */
  readonly maxWebSocketMessageBytes?: number;
  /** Called whenever a frame is handed to a subscriber's connection. */
  readonly onFrameSent?: (event: ServerFrameSentEvent) => void;
  /** Concurrent connections (all transports); further ones get HTTP 503. Default 10 000. */
  readonly maxConnections?: number;
  /**
   * WT-Protocols selected for WebTransport, in order of preference, when the client offers them.
   * Default `["moq-lite-04", "moq-lite-03"]`; otherwise "moql" or none, and SETUP picks lite-02.
   */
  readonly webTransportProtocols?: readonly string[];
  /**
   * moq-transport (IETF drafts 14 to 17). Draft-14 is selected over SETUP when a client offers
   * no moq-lite version (or always with `preferDraft14`); drafts 15 to 17 when the transport
   * negotiates `moqt-15/16/17`, which needs them listed in `appProtocols` (WebSocket) or
   * `webTransportProtocols`. Enabled by default.
   */
  readonly ietf?: IetfOptions;
}

/** WebTransport settings of {@link serveMoq}. */
export interface WebTransportServeOptions {
  /** WebTransport over HTTP/2 on the TCP port. Default true. */
  readonly http2?: boolean;
  /** WebTransport over HTTP/3 on the UDP port with the same number, if the quiche addon loads. Default true. */
  readonly http3?: boolean;
}

/** Options of {@link serveMoq}. */
export interface ServeMoqOptions extends MoqServerOptions {
  readonly port: number;
  readonly host?: string;
  /**
   * TLS options (PEM `key` and `cert`, ...): the TCP port then speaks only TLS (WSS, HTTPS and
   * WebTransport over HTTP/2). Without it, a development certificate is generated and the port
   * serves plain HTTP/WS and TLS side by side.
   */
  readonly tls?: https.ServerOptions;
  /** WebTransport endpoints; `false` disables them. Default: HTTP/2 and (when available) HTTP/3. */
  readonly webTransport?: boolean | WebTransportServeOptions;
  /** Names and validity of the generated development certificate (used when `tls` is absent). */
  readonly devCertificate?: DevCertificateOptions;
}

/** A transport the relay is accepting connections on. */
export type MoqListenerKind = "ws" | "wss" | "webtransport-h2" | "webtransport-h3";

/** Counters for the admin API. */
export interface MoqServerStats {
  readonly sessionsOpen: number;
  readonly sessionsTotal: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /**
   * Subscribers per absolute broadcast path: sessions with at least one live subscription to one
   * of its tracks (a viewer of video and audio counts once).
   */
  readonly subscribers: ReadonlyMap<string, number>;
}

interface SessionEntry {
  readonly session: MoqSession;
  readonly root: string;
}

/** What an accepted request carries into its session. */
interface Admission {
  readonly root: string;
  readonly permissions: MoqPermissions | undefined;
  readonly remoteAddress: string | undefined;
  readonly transport: MoqTransportKind;
}

type AdmissionResult =
  | { readonly ok: true; readonly admission: Admission }
  | { readonly ok: false; readonly status: number; readonly message: string };

const CERTIFICATE_PATH = "/certificate.sha256";
const MAX_ROOT_BYTES = 255;
const ROOT_CHARSET = /^[A-Za-z0-9._/-]*$/;
const DEFAULT_WEBTRANSPORT_PROTOCOLS: readonly string[] = [AppProtocol.Lite04, AppProtocol.Lite03];
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
  socket.once("finish", () => socket.destroy());
}

function rejectStream(stream: ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8" });
  stream.end(message);
}

/** The first PEM string of a `tls.cert`/`tls.key` option, or undefined. */
function firstPem(value: unknown): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first === "string") return first;
  if (Buffer.isBuffer(first)) return first.toString("utf8");
  if (first && typeof first === "object" && "pem" in first) return firstPem((first as { pem: unknown }).pem);
  return undefined;
}

/** Accepts moq-lite connections for one origin. Mount it with {@link attach} or use {@link serveMoq}. */
export class MoqServer {
  readonly #options: MoqServerOptions;
  readonly #logger: MoqLogger;
  #fingerprint: string | undefined;
  readonly #wss: WebSocketServer;
  readonly #selections: WeakMap<IncomingMessage, SubprotocolSelection> = new WeakMap();
  readonly #sockets: Set<WebSocket> = new Set();
  readonly #transports: Set<TransportSession> = new Set();
  readonly #sessions: Map<MoqSession, SessionEntry> = new Map();
  #sessionsTotal = 0;
  #closedBytesIn = 0;
  #closedBytesOut = 0;
  #httpServer: HttpServer | https.Server | undefined;
  #closing: Promise<void> | undefined;
  /** Resources serveMoq created, closed with the server. */
  #owned: { close(): Promise<void> | void }[] = [];
  #addressSource: net.Server | undefined;
  #listeners: MoqListenerKind[] = [];
  #http3Unavailable: string | undefined;

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

  /** The listening address of the TCP server this server owns or is attached to. */
  get address(): AddressInfo | undefined {
    const address = (this.#addressSource ?? this.#httpServer)?.address();
    return address && typeof address === "object" ? address : undefined;
  }

  /** The transports being accepted (set by {@link serveMoq}; "ws" for a server mounted with {@link attach}). */
  get transports(): readonly MoqListenerKind[] {
    return this.#listeners;
  }

  /** Why WebTransport over HTTP/3 is not live, when it is not (e.g. the quiche addon is not installed). */
  get http3Unavailable(): string | undefined {
    return this.#http3Unavailable;
  }

  /** Hex SHA-256 of the certificate served at `/certificate.sha256` (the one WebTransport uses). */
  get certificateSha256(): string | undefined {
    return this.#fingerprint;
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
      let watched: Set<string> | undefined;
      for (const sub of session.subscriptions()) {
        const path = joinPath(root, sub.broadcast);
        watched ??= new Set();
        if (watched.has(path)) continue;
        watched.add(path);
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
  attach(server: HttpServer | https.Server): void {
    this.#httpServer ??= server;
    if (this.#listeners.length === 0) this.#listeners = [server instanceof https.Server ? "wss" : "ws"];
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.handleUpgrade(req, socket, head),
    );
  }

  /**
   * Answers `GET /certificate.sha256` (bare hex, CORS `*`; 404 when no fingerprint is
   * configured). Returns false for any other request, which the caller handles.
   */
  handleRequest(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): boolean {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== CERTIFICATE_PATH) return false;
    const headers = {
      "content-type": "text/plain; charset=utf-8",
      "access-control-allow-origin": "*",
      "cache-control": "no-store",
    };
    // Both response flavours (HTTP/1.1 and the HTTP/2 compatibility API) share this shape.
    const out = res as ServerResponse;
    if (this.#fingerprint === undefined) {
      out.writeHead(404, headers).end("no certificate fingerprint is configured");
    } else {
      out.writeHead(200, headers).end(this.#fingerprint);
    }
    return true;
  }

  /** Handles an HTTP/1.1 upgrade request (from an `upgrade` event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    void this.#upgrade(req, socket, head).catch((err) => {
      this.#logger.error({ err: toMoqError(err).message }, "moq upgrade failed");
      rejectUpgrade(socket, 500, "internal error");
    });
  }

  /**
   * Handles an RFC 8441 WebSocket (HTTP/2 extended CONNECT with `:protocol websocket`), which
   * browsers use on an HTTP/2 connection to a server that enabled extended CONNECT.
   */
  handleConnectWebSocket(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    void this.#connectWebSocket(stream, headers).catch((err) => {
      this.#logger.error({ err: toMoqError(err).message }, "moq upgrade failed");
      rejectStream(stream, 500, "internal error");
    });
  }

  /** Capacity, path and credentials: the checks every transport makes before a session exists. */
  async #admit(
    target: string,
    remoteAddress: string | undefined,
    transport: MoqTransportKind,
  ): Promise<AdmissionResult> {
    if (this.#closing) return { ok: false, status: 503, message: "server is shutting down" };
    if (this.#transports.size >= (this.#options.maxConnections ?? 10_000)) {
      this.#logger.warn(
        { remoteAddress, connections: this.#transports.size },
        "moq connection refused: too many connections",
      );
      return { ok: false, status: 503, message: "too many connections" };
    }
    // Validate the path as sent: URL parsing would silently resolve "..".
    const rawPath = target.split("?")[0]!;
    const root = parseSessionRoot(rawPath);
    if (root === undefined) {
      this.#logger.info({ remoteAddress, path: rawPath }, "moq connection refused: invalid path");
      return { ok: false, status: 400, message: `invalid session path ${JSON.stringify(rawPath)}` };
    }
    let url: URL;
    try {
      url = new URL(target, "http://localhost");
    } catch {
      return { ok: false, status: 400, message: "invalid request target" };
    }
    const token = url.searchParams.get("token") ?? url.searchParams.get("jwt") ?? undefined;
    let permissions: MoqPermissions | undefined;
    try {
      permissions =
        (await this.#options.authorize?.({ path: root, token, url, remoteAddress, transport })) ?? undefined;
    } catch (err) {
      const status = authorizationStatus(err);
      const reason = toMoqError(err).message;
      this.#logger.info(
        { remoteAddress, path: root, status, err: reason },
        "moq connection refused: unauthorized",
      );
      return {
        ok: false,
        status,
        message: status === 400 ? `bad request: ${reason}` : status === 403 ? "forbidden" : "unauthorized",
      };
    }
    if (permissions?.expiresAtMs !== undefined && permissions.expiresAtMs <= Date.now()) {
      this.#logger.info(
        { remoteAddress, path: root },
        "moq connection refused: authorization already expired",
      );
      return { ok: false, status: 401, message: "unauthorized: credentials expired" };
    }
    if (this.#closing) return { ok: false, status: 503, message: "server is shutting down" };
    return { ok: true, admission: { root, permissions, remoteAddress, transport } };
  }

  #selectSubprotocol(offeredHeader: string | string[] | undefined): SubprotocolSelection | undefined {
    const offered = (Array.isArray(offeredHeader) ? offeredHeader.join(",") : (offeredHeader ?? ""))
      .split(",")
      .filter((value) => value.trim() !== "");
    return selectSubprotocol(
      offered,
      this.#options.framings ?? DEFAULT_FRAMINGS,
      this.#options.appProtocols ?? [],
    );
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (req.headers.upgrade?.toLowerCase() !== "websocket")
      return rejectUpgrade(socket, 400, "expected a WebSocket upgrade");
    const selection = this.#selectSubprotocol(req.headers["sec-websocket-protocol"]);
    if (!selection) {
      return rejectUpgrade(
        socket,
        400,
        "no supported WebSocket subprotocol offered (expected qmux-00 or webtransport)",
      );
    }
    const result = await this.#admit(req.url ?? "/", req.socket.remoteAddress, "websocket");
    if (!result.ok) return rejectUpgrade(socket, result.status, result.message);
    if (socket.destroyed) return;
    this.#selections.set(req, selection);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const raw = socket as Socket;
      this.#startWebSocket(ws, typeof raw.cork === "function" ? raw : undefined, selection, result.admission);
    });
  }

  async #connectWebSocket(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    stream.on("error", () => {});
    const selection = this.#selectSubprotocol(headers["sec-websocket-protocol"]);
    if (!selection) {
      return rejectStream(
        stream,
        400,
        "no supported WebSocket subprotocol offered (expected qmux-00 or webtransport)",
      );
    }
    const result = await this.#admit(
      String(headers[":path"] ?? "/"),
      stream.session?.socket?.remoteAddress,
      "websocket-h2",
    );
    if (!result.ok) return rejectStream(stream, result.status, result.message);
    if (stream.destroyed) return;
    stream.respond({ ":status": 200, "sec-websocket-protocol": selection.subprotocol });
    // `ws` runs a server-side WebSocket over any duplex: the same two steps its own server takes
    // after a handshake (constructor without an address, then setSocket).
    const ws = new WebSocket(null as never, undefined, {
      maxPayload: this.#options.maxWebSocketMessageBytes ?? 64 * 1024,
    } as never);
    const internals = ws as unknown as {
      _protocol: string;
      setSocket(
        socket: Duplex,
        head: Buffer,
        options: { maxPayload: number; allowSynchronousEvents: boolean; skipUTF8Validation: boolean },
      ): void;
    };
    internals._protocol = selection.subprotocol;
    internals.setSocket(stream, Buffer.alloc(0), {
      maxPayload: this.#options.maxWebSocketMessageBytes ?? 64 * 1024,
      allowSynchronousEvents: true,
      skipUTF8Validation: false,
    });
    this.#startWebSocket(ws, stream, selection, result.admission);
  }

  #startWebSocket(
    ws: WebSocket,
    corkable: { cork(): void; uncork(): void } | undefined,
    selection: SubprotocolSelection,
    admission: Admission,
  ): void {
    this.#sockets.add(ws);
    ws.once("close", () => this.#sockets.delete(ws));
    const transport = new QmuxSession(ws, {
      framing: selection.framing,
      role: "server",
      protocol: selection.protocol,
      limits: this.#options.transportLimits,
      pingIntervalMs: this.#options.pingIntervalMs ?? 15_000,
      rawSocket: corkable,
    });
    this.#startSession(transport, admission, { framing: selection.framing });
  }

  /** @internal Decides on a WebTransport session request (called by the WebTransport listener). */
  async decideWebTransport(request: WebTransportRequest): Promise<WebTransportDecision> {
    const result = await this.#admit(request.target, request.remoteAddress, request.kind);
    if (!result.ok) return { status: result.status };
    const preferred = this.#options.webTransportProtocols ?? DEFAULT_WEBTRANSPORT_PROTOCOLS;
    const offered = new Set(request.offeredProtocols);
    const protocol =
      preferred.find((candidate) => offered.has(candidate)) ??
      (offered.has(AppProtocol.Moql) ? AppProtocol.Moql : "");
    if (offered.size > 0 && protocol === "") {
      this.#logger.info(
        { offered: [...offered] },
        "moq WebTransport refused: no supported WT-Protocol offered",
      );
      return { status: 400 };
    }
    return { status: 200, protocol, context: { admission: result.admission, protocol } };
  }

  /** @internal Runs a session on an admitted WebTransport session (called by the WebTransport listener). */
  acceptWebTransport(wt: FailsServerSession, kind: WebTransportKind, context: unknown): void {
    const { admission, protocol } = context as { admission: Admission; protocol: string };
    const transport = new WebTransportSession(wt, { role: "server", protocol, kind });
    this.#startSession(transport, admission, { transport: kind });
  }

  #startSession(
    transport: TransportSession & { readonly isClosed: boolean },
    admission: Admission,
    logExtra: Record<string, unknown>,
  ): void {
    const options = this.#options;
    const { root, permissions, remoteAddress } = admission;
    if (this.#closing) {
      transport.close(0, "server shutting down");
      return;
    }
    this.#transports.add(transport);
    let expiry: NodeJS.Timeout | undefined;
    void transport.closed.then(() => {
      clearTimeout(expiry);
      this.#transports.delete(transport);
      const stats = transport.stats();
      this.#closedBytesIn += stats.bytesIn;
      this.#closedBytesOut += stats.bytesOut;
    });
    if (permissions?.expiresAtMs !== undefined) {
      const expiresAt = permissions.expiresAtMs;
      const arm = () => {
        const remaining = expiresAt - Date.now();
        if (remaining > 0) {
          expiry = setTimeout(arm, Math.min(remaining, MAX_TIMER_MS));
          expiry.unref();
          return;
        }
        this.#logger.info({ remoteAddress, root }, "moq session closed: authorization expired");
        const reason = `authorization expired at ${new Date(expiresAt).toISOString()}`;
        transport.close(WireErrorCode.Unauthorized, reason, new MoqError("MOQ_UNAUTHORIZED", reason));
      };
      arm();
    }

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
      logFields: { remoteAddress, root, ...logExtra },
      ietf: options.ietf,
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
          { remoteAddress, root, version: versionName(session.version), ...logExtra },
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
   * the listeners {@link serveMoq} created. Idempotent.
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
    for (const owned of this.#owned.reverse()) await owned.close();
  }

  /** @internal Used by {@link serveMoq}: listeners and resources this server owns and closes. */
  adopt(
    resources: { close(): Promise<void> | void }[],
    front: net.Server,
    listeners: MoqListenerKind[],
    http3Unavailable: string | undefined,
  ): void {
    this.#owned.push(...resources);
    this.#addressSource = front;
    this.#listeners = listeners;
    this.#http3Unavailable = http3Unavailable;
  }

  /** @internal Used by {@link serveMoq} when the development certificate is rotated. */
  setCertificateSha256(fingerprint: string): void {
    this.#fingerprint = normalizeFingerprint(fingerprint);
  }
}

/** Hands a connection whose first bytes were read back to `server`, or drops it. */
function handOver(socket: Socket, server: net.Server | undefined): void {
  if (socket.destroyed) return;
  if (!server) {
    socket.destroy();
    return;
  }
  server.emit("connection", socket);
  process.nextTick(() => socket.resume());
}

/** How long a new TCP connection may stay silent before its first byte decides plain or TLS. */
const FIRST_BYTE_TIMEOUT_MS = 10_000;

/**
 * Starts a standalone relay endpoint on `port`: WebSocket (QMux) on every path, WebTransport
 * over HTTP/2 on the same TCP port and over HTTP/3 on the same UDP port (when the addon is
 * installed), `/certificate.sha256`, and 426 for other plain requests. Resolves once listening.
 */
export async function serveMoq(options: ServeMoqOptions): Promise<MoqServer> {
  const logger = options.logger ?? silentLogger;
  const wtOptions =
    options.webTransport === false
      ? undefined
      : options.webTransport === true || options.webTransport === undefined
        ? {}
        : options.webTransport;
  const wantHttp2 = wtOptions !== undefined && wtOptions.http2 !== false;
  const wantHttp3 = wtOptions !== undefined && wtOptions.http3 !== false;

  // The certificate WebTransport and TLS use: the configured one, or a development certificate.
  let certPem = firstPem(options.tls?.cert);
  let keyPem = firstPem(options.tls?.key);
  let dev: DevCertificate | undefined;
  if (!options.tls && (wantHttp2 || wantHttp3)) {
    dev = generateDevCertificate(options.devCertificate);
    certPem = dev.certPem;
    keyPem = dev.keyPem;
  }
  let fingerprint = options.certificateSha256;
  if (certPem) {
    try {
      fingerprint = certificateSha256(certPem);
    } catch (err) {
      logger.warn(
        { err: (err as Error).message },
        "moq: cannot read the TLS certificate; /certificate.sha256 is not served",
      );
    }
  }
  const moq = new MoqServer({ ...options, certificateSha256: fingerprint });

  const onRequest = (
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ) => {
    if (moq.handleRequest(req, res)) return;
    (res as ServerResponse)
      .writeHead(426, {
        "content-type": "text/plain; charset=utf-8",
        ...(req.httpVersionMajor < 2 ? { upgrade: "websocket", connection: "Upgrade" } : {}),
      })
      .end("this endpoint speaks MoQ over WebSocket (qmux-00 or webtransport subprotocol) and WebTransport");
  };

  // WebTransport: HTTP/2 shares the TLS side of the TCP port and is set up at the first TLS
  // connection; HTTP/3 listens on UDP from the start, so the quiche addon is probed now.
  let http3Unavailable: string | undefined = wantHttp3 ? undefined : "disabled by configuration";
  let webTransport = wantHttp2 || wantHttp3;
  if (webTransport && (!certPem || !keyPem)) {
    logger.warn({}, "moq: WebTransport needs PEM `tls.key` and `tls.cert`; serving WebSocket only");
    http3Unavailable = "no PEM certificate";
    webTransport = false;
  } else if (webTransport) {
    const missing = webTransportLibraryMissing();
    if (missing !== undefined) {
      logger.warn({ err: missing }, "moq: WebTransport is unavailable; serving WebSocket only");
      http3Unavailable = `WebTransport library failed to load: ${missing}`;
      webTransport = false;
    } else if (wantHttp3) {
      http3Unavailable = await probeHttp3Addon();
    }
  }
  const startsAtBoot = webTransport && wantHttp3 && http3Unavailable === undefined;

  // The TLS side: with a configured or development certificate.
  const tls =
    options.tls || (certPem && keyPem)
      ? new TlsEndpoints({
          tls: options.tls,
          certPem,
          keyPem,
          logger,
          webTransport: webTransport
            ? {
                host: options.host,
                http2: wantHttp2,
                http3: wantHttp3,
                logger,
                decide: (request) => moq.decideWebTransport(request),
                onSession: (session, kind, context) => moq.acceptWebTransport(session, kind, context),
              }
            : undefined,
          onRequest,
          onUpgrade: (req, socket, head) => moq.handleUpgrade(req, socket, head),
          onConnectWebSocket: (stream, headers) => moq.handleConnectWebSocket(stream, headers),
        })
      : undefined;
  if (startsAtBoot) await tls?.start();
  // Plain HTTP/WS only in development mode (no `tls`).
  let plain: HttpServer | undefined;
  if (!options.tls) {
    plain = http.createServer(onRequest);
    plain.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      moq.handleUpgrade(req, socket, head),
    );
  }

  const connections = new Set<Socket>();
  const front = net.createServer({ noDelay: true }, (socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once("data", (chunk: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(chunk);
      // A TLS record starts with 0x16 (handshake); HTTP/1.1 starts with a method name.
      if (chunk[0] !== 0x16) handOver(socket, plain);
      else if (!tls) socket.destroy();
      else
        tls.server().then(
          (server) => handOver(socket, server),
          () => socket.destroy(),
        );
    });
  });
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, options.host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  const port = (front.address() as AddressInfo).port;
  const wt = startsAtBoot ? tls?.webTransport : undefined;
  if (wt) {
    await wt.startHttp3(port);
    http3Unavailable = wt.http3Live ? undefined : wt.http3Unavailable;
  } else if (startsAtBoot) {
    http3Unavailable = "WebTransport library failed to load";
  }
  if (http3Unavailable !== undefined && wantHttp3) {
    logger.info({ reason: http3Unavailable }, "moq: WebTransport over HTTP/3 is unavailable");
  }

  // Rotate the development certificate before it expires.
  let rotation: NodeJS.Timeout | undefined;
  if (dev) {
    const devOptions = options.devCertificate ?? {};
    let current = dev;
    const validity = current.notAfter.getTime() - current.notBefore.getTime();
    const renewBeforeMs = Math.min(24 * 3600_000, validity / 4);
    const checkEveryMs = Math.max(250, Math.min(3600_000, validity / 8));
    rotation = setInterval(() => {
      if (Date.now() < current.notAfter.getTime() - renewBeforeMs) return;
      try {
        current = generateDevCertificate(devOptions);
      } catch (err) {
        logger.error({ err: (err as Error).message }, "moq: development certificate renewal failed");
        return;
      }
      tls?.updateCertificate(current.certPem, current.keyPem);
      moq.setCertificateSha256(current.sha256);
      logger.info(
        { sha256: current.sha256, notAfter: current.notAfter.toISOString() },
        "moq: development certificate renewed",
      );
    }, checkEveryMs);
    rotation.unref();
  }

  const listeners: MoqListenerKind[] = [];
  if (plain) listeners.push("ws");
  if (tls) listeners.push("wss");
  if (webTransport && wantHttp2 && (!startsAtBoot || wt?.secureServer)) listeners.push("webtransport-h2");
  if (wt?.http3Live) listeners.push("webtransport-h3");
  logger.info(
    {
      port,
      transports: listeners,
      certificateSha256: moq.certificateSha256,
      devCertificate: dev !== undefined,
    },
    "moq relay listening",
  );
  moq.adopt(
    [
      {
        close: async () => {
          clearInterval(rotation);
          const frontClosed = new Promise<void>((resolve) => front.close(() => resolve()));
          // Idle keep-alive and half-open connections would hold close() open: end them all.
          for (const socket of connections) socket.destroy();
          await frontClosed;
          if (plain) await closeHttpServer(plain);
          await tls?.close();
        },
      },
    ],
    front,
    listeners,
    http3Unavailable,
  );
  return moq;
}
