/**
 * `TestServer`: the whole LVQR server, started through the real `start()` of `@lvqr/server` on
 * 127.0.0.1 with every port 0, for one test (or one file) and then stopped. Nothing is mocked;
 * ports are read back from the bound listeners, so any number of servers run side by side.
 *
 * ```ts
 * await using server = await TestServer.start({ dash: true });
 * const publish = await publishRtmp(server.rtmpUrl("live", "cam0"), "fixture");
 * const playlist = await fetch(server.hlsUrl("live/cam0", "playlist.m3u8"));
 * ```
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LatencyTracker, LvqrMetrics } from "@lvqr/admin";
import type { OriginProducer } from "@lvqr/moq-lite";
import {
  type BoundAddresses,
  type ClusterConfig,
  type HlsConfig,
  type LogLevel,
  loopbackEphemeralConfig,
  type ServeAuthConfig,
  type ServeConfig,
  type ServerHandle,
  start,
  type TlsConfig,
} from "@lvqr/server";
import { TestUtilsError } from "./errors.ts";

/** Options of {@link TestServer.start}. Every field is optional; the defaults mirror the reference fixture. */
export interface TestServerOptions {
  /** LL-HLS: on by default; `false` turns it off; an object tunes it (target duration, part target, DVR). */
  readonly hls?: boolean | HlsConfig;
  /** MPEG-DASH: off by default (as in the reference fixture); `true` turns it on. */
  readonly dash?: boolean;
  /** Auth gates (admin token, publish key, subscribe token, JWT). Open when unset. */
  readonly auth?: ServeAuthConfig;
  /** HMAC secret for signed live/playback URLs (shorthand for `auth.hmacPlaybackSecret`). */
  readonly hmacPlaybackSecret?: string;
  /** Runtime stream keys over the admin API (default true; shorthand for `auth.streamKeys`). */
  readonly streamKeys?: boolean;
  /** Subscribe auth on live HLS/DASH (default true; shorthand for `auth.livePlaybackAuth`). */
  readonly livePlaybackAuth?: boolean;
  /**
   * Where persistent state (stream keys) lives. Default: a fresh folder under the OS temp
   * directory, deleted by `stop()`. A folder given here is left in place.
   */
  readonly dataDir?: string;
  /**
   * Cluster settings, passed to `ServeConfig.cluster` unchanged. This is the place for them once
   * the server wires `@lvqr/cluster` into `start()`; until then `start()` does not act on them and
   * every TestServer is a single node (use the cluster package's own API for multi-node tests).
   */
  readonly cluster?: ClusterConfig;
  /** TLS for the MoQ listener (`moqUrl()` becomes `https://`). */
  readonly tls?: TlsConfig;
  /** Server log level. Default: the `LVQR_TEST_LOG_LEVEL` environment variable, else `silent`. */
  readonly logLevel?: LogLevel;
  /** Drain time of `stop()` for publishers and viewers (default 0: tests stop at once). */
  readonly shutdownGraceMs?: number;
  /** Anything else, merged last into the `ServeConfig` (ports included, if you must). */
  readonly serveConfig?: Partial<ServeConfig>;
}

/**
 * A fluent builder for {@link TestServerOptions}, named after the reference fixture's builder
 * (`withDash()`, `withoutHls()`, ...). Each method returns a new builder.
 */
export class TestServerConfig {
  /** The options built so far. */
  readonly options: TestServerOptions;

  constructor(options: TestServerOptions = {}) {
    this.options = options;
  }

  #with(patch: TestServerOptions): TestServerConfig {
    return new TestServerConfig({ ...this.options, ...patch });
  }

  /** Turns LL-HLS off. */
  withoutHls(): TestServerConfig {
    return this.#with({ hls: false });
  }

  /** Keeps LL-HLS on with this tuning. */
  withHls(tuning: HlsConfig): TestServerConfig {
    return this.#with({ hls: tuning });
  }

  /** Turns MPEG-DASH on. */
  withDash(): TestServerConfig {
    return this.#with({ dash: true });
  }

  /** Sets the auth gates (merged over earlier auth settings). */
  withAuth(auth: ServeAuthConfig): TestServerConfig {
    return this.#with({ auth: { ...this.options.auth, ...auth } });
  }

  /** Sets the HMAC secret for signed URLs. */
  withHmacPlaybackSecret(secret: string): TestServerConfig {
    return this.#with({ hmacPlaybackSecret: secret });
  }

  /** Turns subscribe auth on live HLS/DASH off. */
  withoutLivePlaybackAuth(): TestServerConfig {
    return this.#with({ livePlaybackAuth: false });
  }

  /** Turns runtime stream keys off. */
  withNoStreamKeys(): TestServerConfig {
    return this.#with({ streamKeys: false });
  }

  /** Keeps state in this folder (not deleted on stop). */
  withDataDir(dataDir: string): TestServerConfig {
    return this.#with({ dataDir });
  }

  /** Cluster settings (see {@link TestServerOptions.cluster}). */
  withCluster(cluster: ClusterConfig): TestServerConfig {
    return this.#with({ cluster });
  }

  /** TLS for the MoQ listener. */
  withTls(tls: TlsConfig): TestServerConfig {
    return this.#with({ tls });
  }

  /** Server log level. */
  withLogLevel(logLevel: LogLevel): TestServerConfig {
    return this.#with({ logLevel });
  }

  /** Drain time of `stop()`. */
  withShutdownGrace(ms: number): TestServerConfig {
    return this.#with({ shutdownGraceMs: ms });
  }

  /** Raw `ServeConfig` fields merged last. */
  withServeConfig(serveConfig: Partial<ServeConfig>): TestServerConfig {
    return this.#with({ serveConfig: { ...this.options.serveConfig, ...serveConfig } });
  }
}

const LOG_LEVELS: readonly string[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function defaultLogLevel(): LogLevel {
  const fromEnv = process.env["LVQR_TEST_LOG_LEVEL"];
  return fromEnv !== undefined && LOG_LEVELS.includes(fromEnv) ? (fromEnv as LogLevel) : "silent";
}

/** Builds the `ServeConfig` a TestServer passes to `start()` (exported for tests and for tools). */
export function testServeConfig(options: TestServerOptions, dataDir: string): ServeConfig {
  const hls = options.hls ?? true;
  const auth: ServeAuthConfig = {
    ...options.auth,
    ...(options.hmacPlaybackSecret === undefined ? {} : { hmacPlaybackSecret: options.hmacPlaybackSecret }),
    ...(options.streamKeys === undefined ? {} : { streamKeys: options.streamKeys }),
    ...(options.livePlaybackAuth === undefined ? {} : { livePlaybackAuth: options.livePlaybackAuth }),
  };
  return loopbackEphemeralConfig({
    hlsPort: hls === false ? false : 0,
    dashPort: options.dash ? 0 : false,
    ...(typeof hls === "object" ? { hls } : {}),
    auth,
    dataDir,
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    logLevel: options.logLevel ?? defaultLogLevel(),
    shutdownGraceMs: options.shutdownGraceMs ?? 0,
    ...options.serveConfig,
  });
}

/** A running server on loopback with ephemeral ports. Create with {@link TestServer.start}. */
export class TestServer implements AsyncDisposable {
  /** The server handle `start()` returned. */
  readonly handle: ServerHandle;
  /** The configuration passed to `start()`. */
  readonly config: ServeConfig;
  /** The data directory in use. */
  readonly dataDir: string;
  /** Milliseconds from calling `start()` to every listener being bound. */
  readonly startupMs: number;
  readonly #ownsDataDir: boolean;
  #stopping: Promise<void> | undefined;

  private constructor(
    handle: ServerHandle,
    config: ServeConfig,
    dataDir: string,
    ownsDataDir: boolean,
    startupMs: number,
  ) {
    this.handle = handle;
    this.config = config;
    this.dataDir = dataDir;
    this.#ownsDataDir = ownsDataDir;
    this.startupMs = startupMs;
  }

  /**
   * Starts the full stack (RTMP, MoQ, LL-HLS unless disabled, DASH when enabled, admin API) on
   * 127.0.0.1 with every port 0, through the server's own `start()`. Accepts options or a
   * {@link TestServerConfig} builder.
   */
  static async start(options: TestServerOptions | TestServerConfig = {}): Promise<TestServer> {
    const resolved = options instanceof TestServerConfig ? options.options : options;
    const startedAt = performance.now();
    const ownsDataDir = resolved.dataDir === undefined;
    const dataDir = resolved.dataDir ?? (await mkdtemp(join(tmpdir(), "lvqr-test-server-")));
    const config = testServeConfig(resolved, dataDir);
    let handle: ServerHandle;
    try {
      handle = await start(config);
    } catch (error) {
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
      throw error;
    }
    return new TestServer(handle, config, dataDir, ownsDataDir, performance.now() - startedAt);
  }

  /** The registry of live broadcasts (every ingest writes into it, every egress reads it). */
  get origin(): OriginProducer {
    return this.handle.origin;
  }

  /** The latency SLO tracker behind `/api/v1/slo`. */
  get slo(): LatencyTracker {
    return this.handle.slo;
  }

  /** The Prometheus metrics behind `/metrics`. */
  get metrics(): LvqrMetrics {
    return this.handle.metrics;
  }

  /** Every bound address (HLS and DASH are undefined when disabled). */
  get addresses(): BoundAddresses {
    return this.handle.addresses;
  }

  /** The RTMP listener. */
  get rtmpAddress(): AddressInfo {
    return this.handle.addresses.rtmp;
  }

  /** The MoQ listener (TCP: WebSocket and WebTransport over HTTP/2). */
  get moqAddress(): AddressInfo {
    return this.handle.addresses.moq;
  }

  /** The admin API listener. */
  get adminAddress(): AddressInfo {
    return this.handle.addresses.admin;
  }

  /** The LL-HLS listener; throws `TEST_UTILS_DISABLED` when HLS is off. */
  get hlsAddress(): AddressInfo {
    const address = this.handle.addresses.hls;
    if (!address) throw disabled("HLS", "hls: true (the default)");
    return address;
  }

  /** The DASH listener; throws `TEST_UTILS_DISABLED` when DASH is off. */
  get dashAddress(): AddressInfo {
    const address = this.handle.addresses.dash;
    if (!address) throw disabled("DASH", "dash: true");
    return address;
  }

  /** True when LL-HLS is on. */
  get hlsEnabled(): boolean {
    return this.handle.addresses.hls !== undefined;
  }

  /** True when DASH is on. */
  get dashEnabled(): boolean {
    return this.handle.addresses.dash !== undefined;
  }

  /** `rtmp://127.0.0.1:<port>/<app>/<stream>`, with `?key=` when a key is given. */
  rtmpUrl(app: string, stream: string, options: { key?: string } = {}): string {
    const url = this.handle.rtmpUrl(app, stream);
    return options.key === undefined ? url : `${url}?key=${encodeURIComponent(options.key)}`;
  }

  /** `http://127.0.0.1:<port>/hls/<broadcast>/<file>` (file defaults to `master.m3u8`). */
  hlsUrl(broadcast: string, file?: string): string {
    if (!this.hlsEnabled) throw disabled("HLS", "hls: true (the default)");
    return this.handle.hlsUrl(broadcast, file);
  }

  /** `http://127.0.0.1:<port>/dash/<broadcast>/<file>` (file defaults to `manifest.mpd`). */
  dashUrl(broadcast: string, file?: string): string {
    if (!this.dashEnabled) throw disabled("DASH", "dash: true");
    return this.handle.dashUrl(broadcast, file);
  }

  /** The MoQ session URL for a root path (default the whole origin), with `?token=` when given. */
  moqUrl(path?: string, options: { token?: string } = {}): string {
    const url = this.handle.moqUrl(path);
    return options.token === undefined ? url : `${url}?token=${encodeURIComponent(options.token)}`;
  }

  /** `http://127.0.0.1:<port><path>` on the admin port (path defaults to `/`). */
  adminUrl(path?: string): string {
    return this.handle.adminUrl(path);
  }

  /**
   * Stops the server (every publish ends, every listener and socket closes) and deletes the
   * temporary data directory. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      try {
        await this.handle.shutdown();
      } finally {
        if (this.#ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
      }
    })();
    return this.#stopping;
  }

  /** `await using server = await TestServer.start()` stops it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

function disabled(what: string, option: string): TestUtilsError {
  return new TestUtilsError(
    "TEST_UTILS_DISABLED",
    `${what} is disabled on this TestServer; start it with ${option} to use it`,
  );
}

/**
 * A vitest fixture that starts a TestServer for each test that uses it and stops it afterwards:
 *
 * ```ts
 * import { test as base } from "vitest";
 * const test = base.extend<{ server: TestServer }>({ server: testServerFixture({ dash: true }) });
 * test("plays", async ({ server }) => { ... });
 * // one server per file: server: [testServerFixture(), { scope: "file" }]
 * ```
 */
export function testServerFixture(
  options: TestServerOptions | TestServerConfig = {},
): (context: object, use: (server: TestServer) => Promise<void>) => Promise<void> {
  // vitest reads the fixture's parameter list from its source and requires a destructuring
  // pattern first, so this must stay `({}, use)`.
  // biome-ignore lint/correctness/noEmptyPattern: vitest requires an object pattern here.
  return async ({}: object, use: (server: TestServer) => Promise<void>): Promise<void> => {
    const server = await TestServer.start(options);
    try {
      await use(server);
    } finally {
      await server.stop();
    }
  };
}

/** Runs `body` with a started TestServer and stops it afterwards (for node:test, jest, scripts). */
export async function withTestServer<T>(
  options: TestServerOptions | TestServerConfig,
  body: (server: TestServer) => Promise<T>,
): Promise<T> {
  const server = await TestServer.start(options);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}
