/**
 * @lvqr/test-utils: run a real LVQR server inside any test suite, push media into it without
 * ffmpeg, and assert on what comes out.
 *
 * - {@link TestServer}: the full stack through the server's own `start()` on 127.0.0.1 with
 *   every port 0; URL helpers, the Origin and the SLO tracker; `stop()` and `await using`.
 * - Media: the committed H.264 + AAC FLV fixture ({@link fixtureSource}), a synthetic encoder
 *   that decoders accept ({@link syntheticSource}), FLV tag sources and files.
 * - {@link publishRtmp}: a TypeScript RTMP publisher that replays a source in real time or as fast
 *   as possible, loops with continuous timestamps, and stops cleanly or abruptly.
 *
 * ```ts
 * import { publishRtmp, TestServer } from "@lvqr/test-utils";
 * await using server = await TestServer.start();
 * const publish = await publishRtmp(server.rtmpUrl("live", "cam0"), "fixture", { loop: true });
 * await publish.stop();
 * ```
 */
export * from "./errors.ts";
export * from "./media/fixture.ts";
export * from "./media/flv-source.ts";
export * from "./media/synthetic-aac.ts";
export * from "./media/synthetic-h264.ts";
export * from "./rtmp/publish-rtmp.ts";
export * from "./test-server.ts";
export * from "./wait-for.ts";
