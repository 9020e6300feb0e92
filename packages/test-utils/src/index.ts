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
 * - Clients for assertions: {@link MoqTestClient} (groups, frames, catalog, `0.timing`),
 *   {@link HlsTestClient} (LL-HLS with blocking reload), {@link DashTestClient} (live MPD),
 *   {@link slo} (`/api/v1/slo`), {@link probe} (ffprobe when installed, an explicit `skipped`
 *   otherwise) and {@link waitFor} (polling with a useful failure message).
 *
 * ```ts
 * import { publishRtmp, TestServer } from "@lvqr/test-utils";
 * await using server = await TestServer.start();
 * const publish = await publishRtmp(server.rtmpUrl("live", "cam0"), "fixture", { loop: true });
 * await publish.stop();
 * ```
 */

// The FLV tag body builders live with the RTMP ingest; they are re-exported so a test needs one import.
export {
  type AvcNaluTagOptions,
  buildAacRawTag,
  buildAacSequenceHeaderTag,
  buildAvcDecoderConfigurationRecord,
  buildAvcEndOfSequenceTag,
  buildAvcNaluTag,
  buildAvcSequenceHeaderTag,
  buildEnhancedVideoTag,
  type EnhancedVideoTagOptions,
} from "@lvqr/ingest-rtmp";
export * from "./clients/dash-test-client.ts";
export * from "./clients/hls-test-client.ts";
export {
  expectFirstBox,
  firstBoxType,
  type HttpGetOptions,
  type HttpResponse,
  httpGet,
  httpGetOk,
} from "./clients/http-get.ts";
export * from "./clients/m3u8.ts";
export * from "./clients/moq-test-client.ts";
export * from "./clients/mpd.ts";
export * from "./errors.ts";
export * from "./media/fixture.ts";
export * from "./media/flv-source.ts";
export * from "./media/synthetic-aac.ts";
export * from "./media/synthetic-h264.ts";
export * from "./probe.ts";
export * from "./rtmp/publish-rtmp.ts";
export * from "./slo.ts";
export * from "./test-server.ts";
export * from "./wait-for.ts";
