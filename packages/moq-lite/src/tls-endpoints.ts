/**
 * The TLS side of a relay's TCP port: WSS (QMux over WebSocket), HTTPS requests such as
 * `/certificate.sha256`, and WebTransport over HTTP/2.
 *
 * With WebTransport over HTTP/2 enabled, the TLS server is the WebTransport library's HTTP/2
 * server (HTTP/1.1 allowed), so the library must be loaded before the first TLS connection is
 * handed over. It is loaded at that first connection, not at startup: a relay whose clients
 * only use plain WebSocket never loads it. Only HTTP/3, which must listen from the start, makes
 * {@link serveMoq} load it at startup ({@link TlsEndpoints.start}). When the library cannot be
 * loaded, a plain HTTPS server takes its place and WSS keeps working.
 */
import type http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type {
  Http2SecureServer,
  Http2ServerRequest,
  Http2ServerResponse,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from "node:http2";
import https from "node:https";
import type { Duplex } from "node:stream";
import { createSecureContext } from "node:tls";
import type { MoqLogger } from "./session/logger.ts";
import { WebTransportListener, type WebTransportListenerOptions } from "./webtransport/listener.ts";
import { loadWebTransportLibrary } from "./webtransport/loader.ts";

type SecureServer = Http2SecureServer | https.Server;

/** Options of {@link TlsEndpoints}. */
export interface TlsEndpointsOptions {
  /** The TLS options as configured; without them the PEM pair below is used. */
  readonly tls: https.ServerOptions | undefined;
  /** The PEM certificate and key (the configured ones or a development pair), when PEM. */
  readonly certPem: string | undefined;
  readonly keyPem: string | undefined;
  /**
   * The WebTransport listener's options (its library and certificate are filled in here), or
   * undefined to serve no WebTransport.
   */
  readonly webTransport: Omit<WebTransportListenerOptions, "library" | "certPem" | "keyPem"> | undefined;
  readonly logger: MoqLogger;
  readonly onRequest: (
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly onConnectWebSocket: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
}

/** The TLS server of a relay port, created on first use. See the module doc. */
export class TlsEndpoints {
  readonly #options: TlsEndpointsOptions;
  #certPem: string | undefined;
  #keyPem: string | undefined;
  #creating: Promise<SecureServer> | undefined;
  #server: SecureServer | undefined;
  #webTransport: WebTransportListener | undefined;
  #closed = false;

  /** Throws at once when the key or certificate is unusable (the servers come later). */
  constructor(options: TlsEndpointsOptions) {
    this.#options = options;
    this.#certPem = options.certPem;
    this.#keyPem = options.keyPem;
    createSecureContext(options.tls ?? { key: options.keyPem, cert: options.certPem });
  }

  /** The WebTransport listener, once created (undefined before, or when it could not be). */
  get webTransport(): WebTransportListener | undefined {
    return this.#webTransport;
  }

  /** Creates the TLS server (and the WebTransport listener) now instead of at the first connection. */
  async start(): Promise<void> {
    await this.server();
  }

  /** The TLS server to hand a TLS connection to, created on the first call. Never rejects. */
  server(): Promise<SecureServer> {
    this.#creating ??= this.#create();
    return this.#creating;
  }

  /** Replaces the certificate (rotation of the development certificate). */
  updateCertificate(certPem: string, keyPem: string): void {
    this.#certPem = certPem;
    this.#keyPem = keyPem;
    if (this.#webTransport) this.#webTransport.updateCertificate(certPem, keyPem);
    if (this.#server && this.#server !== this.#webTransport?.secureServer)
      this.#server.setSecureContext({ cert: certPem, key: keyPem });
  }

  /** Stops WebTransport and closes the TLS server with every connection it holds. */
  async close(): Promise<void> {
    this.#closed = true;
    if (!this.#creating) return;
    const server = await this.#creating;
    this.#webTransport?.close();
    await closeHttpServer(server);
  }

  async #create(): Promise<SecureServer> {
    const { webTransport, logger } = this.#options;
    let server: SecureServer | undefined;
    if (webTransport && this.#certPem && this.#keyPem) {
      const certPem = this.#certPem;
      try {
        const library = await loadWebTransportLibrary();
        const listener = await WebTransportListener.create({
          ...webTransport,
          library,
          certPem,
          keyPem: this.#keyPem,
        });
        this.#webTransport = listener;
        if (this.#closed) listener.close();
        server = listener.secureServer;
        if (server) {
          if (this.#options.tls) server.setSecureContext(this.#options.tls as never);
          listener.onRequest(this.#options.onRequest);
          listener.onUpgrade(this.#options.onUpgrade);
          listener.onConnectWebSocket(this.#options.onConnectWebSocket);
        }
        // Rotated while the library loaded: catch up.
        if (this.#certPem !== certPem) this.updateCertificate(this.#certPem, this.#keyPem);
      } catch (err) {
        logger.warn(
          { err: (err as Error).message },
          "moq: WebTransport is unavailable; serving WebSocket only",
        );
      }
    }
    if (!server) {
      server = https.createServer(this.#options.tls ?? { key: this.#keyPem, cert: this.#certPem });
      server.on("request", this.#options.onRequest);
      server.on("upgrade", this.#options.onUpgrade);
    }
    server.on("tlsClientError", () => {});
    this.#server = server;
    return server;
  }
}

/** Closes an HTTP(S)/HTTP2 server and every connection it holds. */
export function closeHttpServer(server: http.Server | https.Server | Http2SecureServer): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as http.Server).closeAllConnections?.();
    // Servers that never listened (connections are handed to them) call back with an error.
  });
}
