import { HlsTestClient, publishRtmp, syntheticSource, TestServer, waitFor } from "../src/index.ts";

const server = await TestServer.start();
const a = await publishRtmp(server.rtmpUrl("live", "t"), syntheticSource(), { loop: true });
await waitFor(() => server.origin.consume().consume("live/t"));
await new Promise((r) => setTimeout(r, 500));
// drop without unpublish, then reconnect at once
a.destroy();
const t0 = performance.now();
const b = await publishRtmp(server.rtmpUrl("live", "t"), syntheticSource(), { loop: true }).catch((e) => e);
console.log(
  "republish after abrupt drop:",
  b instanceof Error ? `${b.message}` : "accepted",
  (performance.now() - t0).toFixed(0),
  "ms",
);
console.log("a outcome", (await a.done).reason);
// takeover while the first is still connected and sending
const c = await publishRtmp(server.rtmpUrl("live", "t"), syntheticSource(), { loop: true }).catch((e) => e);
console.log("second concurrent publisher:", c instanceof Error ? c.message : "accepted");
if (!(b instanceof Error)) {
  const o = await Promise.race([b.done, new Promise((r) => setTimeout(() => r("still running"), 1000))]);
  console.log("b after c:", typeof o === "string" ? o : o.reason);
}
const hls = await HlsTestClient.open(server.hlsUrl("live/t"));
await hls.waitForSegments(2);
console.log(
  "segments",
  hls.segments.map((s) => [s.msn, s.discontinuity, s.durationS]),
);
await hls.close();
if (!(c instanceof Error)) await c.stop();
if (!(b instanceof Error)) await b.stop();
await waitFor(() => server.origin.consume().consume("live/t") === undefined, { message: "broadcast gone" });
console.log("gone");
await server.stop();
