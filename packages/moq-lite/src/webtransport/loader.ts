/**
 * Lazy loading of `@fails-components/webtransport` (WebTransport over HTTP/2 and, with its
 * optional quiche addon, HTTP/3). Nothing is imported until it is needed: a relay loads it at its
 * first TLS connection (or at startup when the quiche addon is installed, because HTTP/3 listens
 * from the start), a client at its first WebTransport connect. Relays that only ever see
 * WebSocket never pay for it (about 4.5 MB of memory).
 *
 * When the quiche addon is absent, merely importing the library prints "http3 loader" errors to
 * the console from its module initialisers. We probe the addon first; when it is missing, those
 * specific lines (and only those) are dropped while the library settles, and the caller gets
 * the reason to log once.
 *
 * Only the small surface this package uses is typed here (a structural subset of the W3C
 * WebTransport API and the library's server classes).
 */

/** A bidirectional WebTransport stream (W3C shape). */
export interface W3CBidirectionalStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

/** What we use of a W3C `WebTransport` (client) or the library's server-side session object. */
export interface W3CWebTransport {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<{ closeCode?: number; reason?: string } | undefined>;
  readonly incomingBidirectionalStreams: ReadableStream<W3CBidirectionalStream>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  createBidirectionalStream(options?: { sendOrder?: number }): Promise<W3CBidirectionalStream>;
  createUnidirectionalStream(options?: { sendOrder?: number }): Promise<WritableStream<Uint8Array>>;
  close(info?: { closeCode?: number; reason?: string }): void;
  /** The negotiated WT-Protocol (client side), when the implementation reports one. */
  readonly protocol?: string;
}

/** The server-side session object of the library: a W3C-shaped session plus request data. */
export interface FailsServerSession extends W3CWebTransport {
  /** `userData` returned by the request callback. */
  readonly userData?: unknown;
  readonly peerAddress?: string;
}

/** Result of the library's request callback (see `HttpServer.setRequestCallback`). */
export interface FailsRequestResult {
  readonly status: number;
  readonly path?: string;
  readonly userData?: unknown;
  readonly selectedProtocol?: string;
}

/** The request the library hands to the request callback: the CONNECT / upgrade headers. */
export interface FailsSessionRequest {
  readonly header: Record<string, string | string[] | undefined>;
}

/** The library's `HttpServer` (Http2Server / Http3Server). */
export interface FailsHttpServer {
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  /** @internal The transport object; for HTTP/2 it owns the `node:http2` server as `serverInt`. */
  transportInt?: unknown;
  startServer(): void;
  stopServer(): void;
  createTransportInt(): Promise<void>;
  updateCert(cert: string, privKey: string, http2only: boolean): void;
  setRequestCallback(callback: (request: FailsSessionRequest) => Promise<FailsRequestResult>): void;
  sessionStream(path: string, options?: { noAutoPaths?: boolean }): ReadableStream<FailsServerSession>;
  address(): { port: number; host: string } | null;
}

/** Constructor options of the library's servers that we pass. */
export interface FailsServerInit {
  readonly port: number;
  readonly host: string;
  readonly secret: string;
  readonly cert: string;
  readonly privKey: string;
  readonly initialStreamFlowControlWindow?: number;
  readonly initialSessionFlowControlWindow?: number;
  readonly streamFlowControlWindowSizeLimit?: number;
  readonly sessionFlowControlWindowSizeLimit?: number;
  readonly initialBidirectionalStreams?: number;
  readonly initialUnidirectionalStreams?: number;
}

/** The library's module namespace, as far as we use it. */
export interface FailsWebTransportModule {
  readonly Http2Server: new (init: FailsServerInit) => FailsHttpServer;
  readonly Http3Server: new (init: FailsServerInit) => FailsHttpServer;
  readonly WebTransport: new (url: string, options: Record<string, unknown>) => W3CWebTransport;
}

/** What loading found. */
export interface WebTransportLibrary {
  readonly module: FailsWebTransportModule;
  /** True when the HTTP/3 (quiche) addon loaded. */
  readonly http3: boolean;
  /** Why HTTP/3 is unavailable, when it is. */
  readonly http3Unavailable: string | undefined;
}

const HTTP3_ADDON = "@fails-components/webtransport-transport-http3-quiche";
const LIBRARY = "@fails-components/webtransport";
/** Console lines the library prints from module initialisers when the addon is missing. */
const NOISE = ["http3 loader", "Problem loading http3-quiche transport", `Did you install ${HTTP3_ADDON}?`];

let loading: Promise<WebTransportLibrary> | undefined;

function isNoise(args: unknown[]): boolean {
  const first = args[0];
  return typeof first === "string" && NOISE.some((prefix) => first.startsWith(prefix));
}

let probing: Promise<string | undefined> | undefined;

/**
 * Loads the HTTP/3 (quiche) addon alone, once per process: resolves to undefined when it loaded,
 * or to the reason it did not. Cheap when the addon is absent; the library itself is not loaded.
 */
export function probeHttp3Addon(): Promise<string | undefined> {
  probing ??= import(HTTP3_ADDON).then(
    () => undefined,
    (err: NodeJS.ErrnoException) =>
      err.code === "ERR_MODULE_NOT_FOUND"
        ? `${HTTP3_ADDON} is not installed`
        : `${HTTP3_ADDON} failed to load (${err.message.split("\n")[0]})`,
  );
  return probing;
}

/**
 * Why the library cannot be loaded, found without loading it (it is resolved, not imported), or
 * undefined when it is installed.
 */
export function webTransportLibraryMissing(): string | undefined {
  // Some module runners (test tools) lack import.meta.resolve: then only loading will tell.
  if (typeof import.meta.resolve !== "function") return undefined;
  try {
    import.meta.resolve(LIBRARY);
    return undefined;
  } catch (err) {
    return `${LIBRARY} is not installed (${(err as Error).message.split("\n")[0]})`;
  }
}

async function load(): Promise<WebTransportLibrary> {
  const http3Unavailable = await probeHttp3Addon();
  if (http3Unavailable === undefined) {
    const module = (await import(LIBRARY)) as unknown as FailsWebTransportModule;
    return { module, http3: true, http3Unavailable };
  }
  // Drop the library's own reports of the missing addon while its initialisers settle.
  const { error, log } = console;
  const quietError = (...args: unknown[]) => {
    if (!isNoise(args)) error.apply(console, args);
  };
  const quietLog = (...args: unknown[]) => {
    if (!isNoise(args)) log.apply(console, args);
  };
  console.error = quietError;
  console.log = quietLog;
  try {
    const module = (await import(LIBRARY)) as unknown as FailsWebTransportModule & {
      quicheLoaded?: Promise<unknown>;
    };
    await module.quicheLoaded;
    // The server module's own attempt settles in the same turn; give its handlers a tick.
    await new Promise((resolve) => setTimeout(resolve, 0));
    return { module, http3: false, http3Unavailable };
  } finally {
    // Restore only what is still ours (someone may have replaced the console meanwhile).
    if (console.error === quietError) console.error = error;
    if (console.log === quietLog) console.log = log;
  }
}

/**
 * Loads `@fails-components/webtransport` once per process and reports whether HTTP/3 is
 * available. Rejects only when the library itself cannot be imported.
 */
export function loadWebTransportLibrary(): Promise<WebTransportLibrary> {
  loading ??= load().catch((err) => {
    loading = undefined;
    throw err;
  });
  return loading;
}
