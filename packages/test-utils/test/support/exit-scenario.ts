// Runs a whole TestServer scenario in a child process and then simply returns: if anything the
// kit started (a timer, a socket, a child) were left behind, the process would not exit by itself.
import {
  DashTestClient,
  HlsTestClient,
  MoqTestClient,
  publishRtmp,
  slo,
  syntheticSource,
  TestServer,
  waitFor,
} from "../../src/index.ts";

const server = await TestServer.start({ dash: true, hls: { targetDurationS: 1, partTargetMs: 200 } });
const publish = await publishRtmp(server.rtmpUrl("live", "exit"), syntheticSource({ gopFrames: 15 }), {
  loop: true,
});
const moq = await MoqTestClient.connect(server.moqUrl());
const video = await moq.subscribe("live/exit", "video");
const hls = await HlsTestClient.open(server.hlsUrl("live/exit"), { fetchParts: true });
const dash = await DashTestClient.open(server.dashUrl("live/exit"));
await Promise.all([
  video.waitForGroups(2),
  hls.waitForSegments(2),
  dash.waitForSegments(2, { contentType: "video" }),
]);
await waitFor(async () => (await slo(server)).length > 0);
// A wait that fails must not leave its timer behind either.
await waitFor(() => false, { timeoutMs: 50 }).catch(() => undefined);
await moq.close();
await hls.close();
await dash.close();
await publish.stop();
await server.stop();
process.stdout.write(`done ${performance.now()}\n`);
