/**
 * WebTransport endpoints of a relay, built on `@fails-components/webtransport`:
 *
 * - **HTTP/2** (extended CONNECT `:protocol webtransport`, plus the library's WebSocket mapping
 *   `webtransport_kDraft*`). The library's `node:http2` secure server (with HTTP/1.1 allowed) is
 *   not listened on by itself: the relay feeds it TLS connections from its own TCP listener, so
 *   WSS (QMux), `GET /certificate.sha256` and WebTransport share one port. Its `stream` and
 *   `upgrade` handlers are routed: CONNECT streams and `webtransport_kDraft*` upgrades go to
 *   the library, everything else to the relay.
 * - **HTTP/3** on the UDP port with the same number, when the optional quiche addon loads.
 *
 * Sessions are admitted through the library's request callback, which answers the HTTP status
 * (401/403/...) before a session exists and selects the WT-Protocol. That path also avoids the
 * library's upload stall: sessions it creates from a registered *path* start with a 15 MiB
 * receive window while the peer was told (SETTINGS_WT_INITIAL_MAX_DATA) 16 KiB, so the first
 * MAX_DATA would only be sent after 7.5 MiB were read and the peer stops at 16 KiB forever.
 * Sessions admitted through the request callback use the advertised window, so credit flows.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type {
  Http2SecureServer,
  Http2ServerRequest,
  Http2ServerResponse,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from "node:http2";
import type { Duplex } from "node:stream";
import type { ReadableStreamReadResult } from "node:stream/web";
import type { MoqLogger } from "../session/logger.ts";
import type {
  FailsHttpServer,
  FailsRequestResult,
  FailsServerInit,
  FailsServerSession,
  WebTransportLibrary,
} from "./loader.ts";

/** Which WebTransport flavour carried a session. */
export type WebTransportKind = "webtransport-h2" | "webtransport-h3";

/** A WebTransport session request, before the session exists. */
export interface WebTransportRequest {
  readonly kind: WebTransportKind;
  /** The request target (path and query). */
  readonly target: string;
  /** Offered WT-Protocols (`wt-available-protocols`), parsed. */
  readonly offeredProtocols: readonly string[];
  readonly remoteAddress: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The decision on a {@link WebTransportRequest}. */
export type WebTransportDecision =
  | { readonly status: 200; readonly protocol: string; readonly context: unknown }
  | { readonly status: number };

/** Options of a {@link WebTransportListener}. */
export interface WebTransportListenerOptions {
  readonly library: WebTransportLibrary;
  readonly host: string | undefined;
  readonly certPem: string;
  readonly keyPem: string;
  readonly http2: boolean;
  readonly http3: boolean;
  readonly logger: MoqLogger;
  /** Decides on a session request. Must not throw. */
  readonly decide: (request: WebTransportRequest) => Promise<WebTransportDecision>;
  /** Receives each admitted session with the decision's context. */
  readonly onSession: (session: FailsServerSession, kind: WebTransportKind, context: unknown) => void;
}

/** Flow-control windows granted to WebTransport peers (the library defaults are 16 KiB). */
const FLOW_CONTROL = {
  initialStreamFlowControlWindow: 256 * 1024,
  initialSessionFlowControlWindow: 1024 * 1024,
  streamFlowControlWindowSizeLimit: 1024 * 1024,
  sessionFlowControlWindowSizeLimit: 4 * 1024 * 1024,
  initialBidirectionalStreams: 128,
  initialUnidirectionalStreams: 256,
} as const;

/** The library routes admitted sessions by this key (the real path travels in the decision context). */
const ROUTE = "/lvqr-moq-session";
const REMOTE_ADDRESS: unique symbol = Symbol("remoteAddress") as never;

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

function offeredOf(header: Record<string | symbol, unknown>): string[] {
  const value = header["wt-available-protocols"];
  const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  return list
    .map((item) =>
      String(item)
        .trim()
        .replace(/^"(.*)"$/, "$1"),
    )
    .filter((item) => item !== "");
}

/** True for the library's WebSocket mapping (`Sec-WebSocket-Protocol: webtransport_kDraft…`). */
function isLibraryWebSocket(value: string | string[] | undefined): boolean {
  return (headerString(value) ?? "").split(",").some((item) => item.trim().startsWith("webtransport_kDraft"));
}

/** The relay's WebTransport endpoints. See the module doc. */
export class WebTransportListener {
  /** The HTTP/2 + HTTP/1.1 TLS server to hand TLS connections to (undefined without HTTP/2). */
  readonly secureServer: Http2SecureServer | undefined;
  /** True once HTTP/3 is listening. */
  http3Live = false;
  /** Why HTTP/3 is not live, if it is not. */
  http3Unavailable: string | undefined;
  readonly #options: WebTransportListenerOptions;
  #h3: FailsHttpServer | undefined;
  #closed = false;

  private constructor(options: WebTransportListenerOptions, secure: Http2SecureServer | undefined) {
    this.#options = options;
    this.secureServer = secure;
  }

  /**
   * Creates the endpoints. The HTTP/2 server is returned unlistened (feed it connections);
   * HTTP/3 listens on UDP `port` when enabled and available.
   */
  static async create(options: WebTransportListenerOptions): Promise<WebTransportListener> {
    const { module } = options.library;
    let h2: FailsHttpServer | undefined;
    let secure: Http2SecureServer | undefined;
    if (options.http2) {
      // Port 0: this server never listens itself (connections are handed to it).
      h2 = new module.Http2Server(WebTransportListener.#init(options, 0));
      h2.ready.catch(() => {});
      await h2.createTransportInt();
      secure = (h2.transportInt as { serverInt?: Http2SecureServer } | undefined)?.serverInt;
      if (!secure || typeof secure.listeners !== "function") {
        throw new Error("@fails-components/webtransport changed shape: its HTTP/2 server is not reachable");
      }
    }
    const listener = new WebTransportListener(options, secure);
    if (h2 && secure) listener.#routeHttp2(h2, secure);
    if (!options.http3) listener.http3Unavailable = "disabled by configuration";
    else if (!options.library.http3) listener.http3Unavailable = options.library.http3Unavailable;
    return listener;
  }

  static #init(options: WebTransportListenerOptions, port: number): FailsServerInit {
    return {
      port,
      host: options.host ?? "::",
      secret: randomBytes(32).toString("hex"),
      cert: options.certPem,
      privKey: options.keyPem,
      ...FLOW_CONTROL,
    };
  }

  /**
   * Routes the library's HTTP/2 server: CONNECT streams and the library's own WebSocket mapping
   * go to the library; plain requests reach `request` listeners and other upgrades `upgrade`
   * listeners added afterwards through {@link onRequest} / {@link onUpgrade}.
   */
  #routeHttp2(h2: FailsHttpServer, secure: Http2SecureServer): void {
    const libraryStream = secure.listeners("stream") as StreamListener[];
    const libraryUpgrade = secure.listeners("upgrade") as UpgradeListener[];
    secure.removeAllListeners("stream");
    secure.removeAllListeners("upgrade");
    secure.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
      stream.on("error", () => {});
      if (headers[":method"] === "CONNECT") {
        const socket = stream.session?.socket;
        (headers as Record<symbol, unknown>)[REMOTE_ADDRESS] = socket?.remoteAddress;
        if (headers[":protocol"] === "websocket" && !isLibraryWebSocket(headers["sec-websocket-protocol"])) {
          if (this.#connectWebSocket) this.#connectWebSocket(stream, headers);
          else {
            stream.respond({ ":status": 501 });
            stream.end();
          }
          return;
        }
        for (const listener of libraryStream) listener.call(secure, stream, headers, ...rest);
        return;
      }
      for (const listener of this.#compatStream) listener.call(secure, stream, headers, ...rest);
    });
    secure.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (isLibraryWebSocket(req.headers["sec-websocket-protocol"])) {
        (req.headers as Record<symbol, unknown>)[REMOTE_ADDRESS] = req.socket.remoteAddress;
        for (const listener of libraryUpgrade) listener.call(secure, req, socket, head);
        return;
      }
      if (this.#upgrade) this.#upgrade(req, socket, head);
      else socket.destroy();
    });
    h2.setRequestCallback((request) => this.#decide("webtransport-h2", request.header));
    void this.#acceptSessions(h2, "webtransport-h2");
  }

  #compatStream: StreamListener[] = [];
  #upgrade: UpgradeListener | undefined;
  #connectWebSocket: ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void) | undefined;

  /** Plain HTTP requests over the TLS port (HTTP/1.1 and HTTP/2). */
  onRequest(
    handler: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void,
  ): void {
    const secure = this.secureServer;
    if (!secure) return;
    // Adding a `request` listener makes node:http2 install its compatibility `stream` listener;
    // take it back out and call it only for non-CONNECT streams.
    const before = new Set(secure.listeners("stream"));
    secure.on("request", handler);
    for (const listener of secure.listeners("stream")) {
      if (before.has(listener)) continue;
      secure.removeListener("stream", listener as StreamListener);
      this.#compatStream.push(listener as StreamListener);
    }
  }

  /** HTTP/1.1 upgrades over the TLS port that are not the library's (QMux WebSockets). */
  onUpgrade(handler: UpgradeListener): void {
    this.#upgrade = handler;
  }

  /** RFC 8441 WebSockets (extended CONNECT `:protocol websocket`) that are not the library's. */
  onConnectWebSocket(handler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void): void {
    this.#connectWebSocket = handler;
  }

  /**
   * Starts HTTP/3 on UDP `port` (the TCP port's number) when enabled and the addon loaded. A
   * failure leaves {@link http3Live} false with the reason in {@link http3Unavailable}.
   */
  async startHttp3(port: number): Promise<void> {
    const { library } = this.#options;
    if (!this.#options.http3 || !library.http3 || this.#closed) return;
    try {
      const h3 = new library.module.Http3Server(WebTransportListener.#init(this.#options, port));
      h3.setRequestCallback((request) => this.#decide("webtransport-h3", request.header));
      const sessions = this.#acceptSessions(h3, "webtransport-h3");
      h3.startServer();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        h3.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("HTTP/3 server did not start within 5 s")), 5000);
        }),
      ]).finally(() => clearTimeout(timer));
      this.#h3 = h3;
      this.http3Live = true;
      void sessions;
    } catch (err) {
      this.http3Unavailable = `HTTP/3 server failed to start: ${(err as Error).message}`;
    }
  }

  async #decide(
    kind: WebTransportKind,
    header: Record<string | symbol, unknown>,
  ): Promise<FailsRequestResult> {
    const target = String(header[":path"] ?? "/");
    try {
      const decision = await this.#options.decide({
        kind,
        target,
        offeredProtocols: offeredOf(header),
        remoteAddress: header[REMOTE_ADDRESS] as string | undefined,
        headers: header as Record<string, string | string[] | undefined>,
      });
      if (decision.status !== 200 || !("context" in decision))
        return { status: decision.status, path: ROUTE };
      return {
        status: 200,
        path: ROUTE,
        userData: { context: decision.context },
        ...(decision.protocol ? { selectedProtocol: decision.protocol } : {}),
      };
    } catch (err) {
      this.#options.logger.error({ err: (err as Error).message, kind }, "moq WebTransport request failed");
      return { status: 500, path: ROUTE };
    }
  }

  async #acceptSessions(server: FailsHttpServer, kind: WebTransportKind): Promise<void> {
    const reader = server.sessionStream(ROUTE, { noAutoPaths: true }).getReader();
    for (;;) {
      let next: ReadableStreamReadResult<FailsServerSession>;
      try {
        next = await reader.read();
      } catch {
        return;
      }
      if (next.done) return;
      const session = next.value;
      if (this.#closed) {
        session.close({ closeCode: 0, reason: "server shutting down" });
        continue;
      }
      const context = (session.userData as { context?: unknown } | undefined)?.context;
      session.closed.catch(() => {});
      try {
        this.#options.onSession(session, kind, context);
      } catch (err) {
        this.#options.logger.error(
          { err: (err as Error).message, kind },
          "moq WebTransport session setup failed",
        );
        session.close({ closeCode: 4, reason: "internal error" });
      }
    }
  }

  /** Replaces the certificate of every endpoint (rotation of the development certificate). */
  updateCertificate(certPem: string, keyPem: string): void {
    this.secureServer?.setSecureContext({ cert: certPem, key: keyPem });
    try {
      this.#h3?.updateCert(certPem, keyPem, false);
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, "moq HTTP/3 certificate update failed");
    }
  }

  /**
   * Stops HTTP/3 and refuses sessions still being admitted. Admitted sessions belong to their
   * transport sessions, which the relay closes first: closing a library session twice makes its
   * HTTP/2 stream spin, so this never touches them.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#h3?.stopServer();
    } catch {
      // Not started.
    }
  }
}
