import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { MoqError } from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";
import {
  DashTestClient,
  FIXTURE_INFO,
  HlsTestClient,
  isTestUtilsError,
  MoqTestClient,
  probe,
  publishRtmp,
  slo,
  syntheticSource,
  TestServer,
  waitFor,
} from "../src/index.ts";

describe("end of stream and republish", () => {
  it("HLS gets ENDLIST, DASH turns static; a republish brings a discontinuity and a new Period", async () => {
    await using server = await TestServer.start({ dash: true });
    const name = "live/again";
    const first = await publishRtmp(server.rtmpUrl("live", "again"), "fixture", {
      realtime: false,
      durationMs: 2 * FIXTURE_INFO.durationMs,
      keepOpen: true,
    });
    const hls = await HlsTestClient.open(server.hlsUrl(name));
    const dash = await DashTestClient.open(server.dashUrl(name));
    await hls.waitForSegments(2);
    await first.stop();
    const ended = await hls.waitForEndList();
    expect(ended.preloadHint).toBeUndefined();
    expect(hls.segments.every((s) => s.firstBox === "moof")).toBe(true);
    const staticMpd = await dash.waitForStatic();
    expect(staticMpd.minimumUpdatePeriodS).toBeUndefined();
    await hls.done;
    await dash.done;

    const second = await publishRtmp(server.rtmpUrl("live", "again"), "fixture", {
      realtime: false,
      durationMs: 2 * FIXTURE_INFO.durationMs,
      keepOpen: true,
    });
    await using again = await HlsTestClient.open(server.hlsUrl(name));
    await using dashAgain = await DashTestClient.open(server.dashUrl(name));
    await waitFor(() => again.stats.discontinuities >= 1 && again.segments.length >= 3, {
      timeoutMs: 20_000,
      message: "a discontinuity in the republished playlist",
    });
    const afterBreak = again.segments.find((s) => s.discontinuity)!;
    expect(afterBreak.msn).toBeGreaterThan(hls.segments.at(-1)!.msn);
    expect(again.endList).toBe(false);
    await waitFor(() => dashAgain.stats.periods >= 2, { timeoutMs: 20_000, message: "a second DASH Period" });
    await dashAgain.waitForSegments(1, { contentType: "video" });
    await second.stop();
  });
});

describe("reconnects", () => {
  it("after an abrupt drop a reconnect takes the name at once; HLS and DASH mark the break", async () => {
    await using server = await TestServer.start({ dash: true });
    const first = await publishRtmp(server.rtmpUrl("live", "drop"), syntheticSource(), { loop: true });
    // The drop ends the playlist (ENDLIST); the reconnect makes it live again, so keep following.
    await using hls = await HlsTestClient.open(server.hlsUrl("live/drop"), { followAfterEndList: true });
    await using dash = await DashTestClient.open(server.dashUrl("live/drop"), { followAfterStatic: true });
    await hls.waitForParts(3);
    await dash.waitForSegments(1, { contentType: "video" });
    first.destroy(); // no FCUnpublish: what a crashed encoder looks like
    const started = performance.now();
    await using second = await publishRtmp(server.rtmpUrl("live", "drop"), syntheticSource(), { loop: true });
    expect(performance.now() - started).toBeLessThan(3000);
    expect((await first.done).reason).toBe("destroyed");
    await waitFor(() => hls.segments.some((s) => s.discontinuity), {
      timeoutMs: 20_000,
      message: "a discontinuity after the reconnect",
    });
    await waitFor(() => !hls.endList, { message: "the playlist to be live again" });
    expect(hls.stats.endLists).toBeLessThanOrEqual(1);
    await waitFor(() => dash.stats.periods >= 2 && !dash.isStatic, {
      timeoutMs: 20_000,
      message: "a second Period",
    });
    const latest = dash.mpd.periods.at(-1)!.id ?? String(dash.mpd.periods.length - 1);
    await waitFor(() => dash.segments.some((s) => s.period === latest && s.bytes !== undefined), {
      timeoutMs: 20_000,
      message: "a segment of the new Period",
    });
    // While the second publisher is live, a third is refused with the server's status.
    const third = await publishRtmp(server.rtmpUrl("live", "drop"), syntheticSource()).catch((e) => e);
    expect(third.status).toBe("NetStream.Publish.BadName");
    expect(second.publisher.closed).toBe(false);
  });
});

describe("credentials", () => {
  it("MoQ, HLS and the SLO API refuse without the token and work with it", async () => {
    // With a publish key too, an anonymous MoQ session is granted nothing and refused outright.
    const auth = { subscribeToken: "view", publishKey: "pub", adminToken: "adm" };
    await using server = await TestServer.start({ auth });
    await using publish = await publishRtmp(
      server.rtmpUrl("live", "private", { key: "pub" }),
      syntheticSource(),
      {
        loop: true,
      },
    );

    const refused = await MoqTestClient.connect(server.moqUrl()).catch((e) => e);
    expect(refused).toBeInstanceOf(MoqError);
    expect(refused.code).toBe("MOQ_UNAUTHORIZED");
    await using moq = await MoqTestClient.connect(server.moqUrl(), { token: "view" });
    const video = await moq.subscribe("live/private", "video");
    await video.waitForGroups(1);

    // A 401 will not change by waiting: open() fails at once instead of timing out.
    const denied = await HlsTestClient.open(server.hlsUrl("live/private"), { openTimeoutMs: 30_000 }).catch(
      (e) => e,
    );
    expect(isTestUtilsError(denied, "TEST_UTILS_HTTP")).toBe(true);
    expect(denied.message).toMatch(/answered 401/);
    await using hls = await HlsTestClient.open(server.hlsUrl("live/private"), { token: "view" });
    await hls.waitForSegments(1);
    expect(hls.segments[0]!.url).toContain("token=view");

    const noAdmin = await slo(server).catch((e) => e);
    expect(isTestUtilsError(noAdmin, "TEST_UTILS_HTTP")).toBe(true);
    expect(noAdmin.message).toMatch(/answered 401/);
    expect(Array.isArray(await slo(server, { token: "adm" }))).toBe(true);
    expect(publish.counters.keyframes).toBeGreaterThan(0);
  });
});

describe("MoqTestClient", () => {
  it("closes cleanly: the server counts the subscriber and then forgets it", async () => {
    await using server = await TestServer.start();
    await using publish = await publishRtmp(server.rtmpUrl("live", "count"), syntheticSource(), {
      loop: true,
    });
    const moqSubscribers = async () => {
      const stats = (await (await fetch(server.adminUrl("/api/v1/stats"))).json()) as {
        subscribers_by_protocol: { moq: number };
      };
      return stats.subscribers_by_protocol.moq;
    };
    const moq = await MoqTestClient.connect(server.moqUrl());
    const video = await moq.subscribe("live/count", "video");
    await video.waitForFrames(5);
    await waitFor(async () => (await moqSubscribers()) >= 1, {
      message: "the server to count the MoQ subscriber",
    });
    await moq.close();
    expect(video.ended).toBe(true);
    await waitFor(async () => (await moqSubscribers()) === 0, {
      message: "the server to drop the MoQ subscriber",
    });
    await expect(moq.subscribe("live/count", "video")).rejects.toThrow(/closed/);
    expect(publish.publisher.closed).toBe(false);
  });

  it("reports a track that does not exist", async () => {
    await using server = await TestServer.start();
    await using publish = await publishRtmp(server.rtmpUrl("live", "tracks"), syntheticSource(), {
      loop: true,
    });
    await using moq = await MoqTestClient.connect(server.moqUrl());
    const missing = await moq.subscribe("live/tracks", "no-such-track");
    // The wait fails with the track's own error (not a timeout) as soon as the server refuses it.
    const error = await missing.waitForFrames(1, { timeoutMs: 15_000 }).catch((e) => e);
    expect(error).toBeInstanceOf(MoqError);
    expect(error.code).toBe("MOQ_NOT_FOUND");
    expect(missing.error).toBe(error);
    expect(missing.frameCount).toBe(0);
    expect(publish.counters.tags).toBeGreaterThan(0);
  });
});

describe("probe", () => {
  it("reads live HLS output with ffprobe, and says 'skipped' when there is no ffprobe", async () => {
    await using server = await TestServer.start();
    await using publish = await publishRtmp(server.rtmpUrl("live", "probe"), "fixture", { loop: true });
    await using hls = await HlsTestClient.open(server.hlsUrl("live/probe"));
    const [segment] = await hls.waitForSegments(1);
    const bytes = Buffer.concat([await hls.fetchInit(), await hls.fetchSegment(segment!)]);
    const result = await probe(bytes);
    if (result.status !== "ok")
      throw new Error(`ffprobe is needed here (it is installed in CI): ${JSON.stringify(result)}`);
    expect(result.streams[0]).toMatchObject({
      codecType: "video",
      codecName: "h264",
      width: 640,
      height: 360,
    });
    expect(result.durationS).toBeGreaterThan(1);

    const master = await probe(server.hlsUrl("live/probe"));
    if (master.status !== "ok") throw new Error(`ffprobe on the master playlist: ${JSON.stringify(master)}`);
    expect(master.streams.map((s) => s.codecName).sort()).toEqual(["aac", "h264"]);

    const skipped = await probe(server.hlsUrl("live/probe"), { ffprobePath: "lvqr-no-such-ffprobe" });
    expect(skipped).toEqual({ status: "skipped", reason: expect.stringContaining("not installed") });
    const failed = await probe(new Uint8Array(64));
    expect(failed.status).toBe("failed");
    expect(publish.counters.keyframes).toBeGreaterThanOrEqual(1);
  });
});

describe("resources", () => {
  it("leave nothing behind: a process that used every part of the kit exits by itself", async () => {
    const script = fileURLToPath(new URL("./support/exit-scenario.ts", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=@lvqr/source", script], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    let doneAt = 0;
    const exit = await new Promise<{ code: number | null; afterDoneMs: number }>((resolve) => {
      const kill = setTimeout(() => child.kill("SIGKILL"), 45_000);
      child.stdout.on("data", () => {
        if (doneAt === 0 && stdout.includes("done")) doneAt = performance.now();
      });
      child.on("exit", (code) => {
        clearTimeout(kill);
        resolve({ code, afterDoneMs: doneAt === 0 ? Number.NaN : performance.now() - doneAt });
      });
    });
    expect(stdout, stderr).toMatch(/^done /);
    expect(exit.code, stderr).toBe(0);
    // The scenario ended at "done"; the process must exit right after, not when some timer fires.
    expect(exit.afterDoneMs).toBeLessThan(2000);
  });
});
