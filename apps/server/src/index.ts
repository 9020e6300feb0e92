/**
 * @lvqr/server: the LVQR-TS server as a library and as the `lvqr` command.
 *
 * `start(config)` binds every listener (RTMP ingest, the MoQ relay over WebSocket/WebTransport,
 * LL-HLS, DASH and the admin API) and resolves with a {@link ServerHandle}: the bound addresses,
 * URL helpers, the Origin, the SLO tracker, and a draining `shutdown()`.
 *
 * ```ts
 * import { start } from "@lvqr/server";
 * const server = await start({ rtmpPort: 1935, hlsPort: 8888 });
 * console.log(server.rtmpUrl("live", "cam0"), server.hlsUrl("live/cam0"));
 * await server.shutdown();
 * ```
 *
 * The auth building blocks (providers, stream keys, signed URLs, the playback gate) are exported
 * too, for servers composed differently.
 */
export * from "./auth/index.ts";
export * from "./cli-options.ts";
export * from "./config.ts";
export * from "./start.ts";
