/**
 * Graceful shutdown of the real `lvqr serve` process: SIGTERM while ffmpeg publishes and viewers
 * are attached (an LL-HLS follower on each media playlist holding blocking reloads, a DASH
 * follower, and an official @moq/lite subscriber). The publish ends first, so the playlists
 * show `#EXT-X-ENDLIST` (and the MPD turns static) while the server still answers; then every
 * listener closes and the process exits 0 within its grace period. A second signal exits at once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { waitFor } from "@lvqr/test-utils";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { FfmpegPublisher, requireTool } from "./support/ffmpeg.ts";
import { DashFollower, LlHlsFollower } from "./support/http-viewers.ts";
import { LiteViewer } from "./support/moq-viewer.ts";
import { EPHEMERAL_FLAGS, type ReadyPorts, ServerProcess } from "./support/server-process.ts";

const GRACE_MS = 5000;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(() => {
  requireTool("ffmpeg");
  vi.spyOn(console, "debug").mockImplementation(() => {});
  const error = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    if (/^(fatal error running connection|subscribe error)/.test(String(args[0]))) return;
    error(...args);
  });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Starts `lvqr serve` and ffmpeg publishing `live/<name>`; resolves once HLS has two segments. */
async function serveAndPublish(
  name: string,
): Promise<{ lvqr: ServerProcess; ports: ReadyPorts; ffmpeg: FfmpegPublisher }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "lvqr-e2e-shutdown-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const { process: lvqr, ports } = await ServerProcess.serve([
    ...EPHEMERAL_FLAGS,
    "--data-dir",
    dataDir,
    "--shutdown-grace-ms",
    String(GRACE_MS),
  ]);
  cleanups.push(() => lvqr.kill());
  const ffmpeg = FfmpegPublisher.start(`rtmp://127.0.0.1:${ports.rtmp}/live/${name}`);
  cleanups.push(() => ffmpeg.stop());
  await waitFor(
    async () => {
      if (!ffmpeg.running) throw new Error(`ffmpeg exited early:\n${ffmpeg.stderr}`);
      const response = await fetch(`http://127.0.0.1:${ports.hls}/hls/live/${name}/playlist.m3u8`);
      return response.ok && ((await response.text()).match(/#EXTINF/g) ?? []).length >= 2;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: `two HLS segments of live/${name}` },
  );
  return { lvqr, ports, ffmpeg };
}

describe("SIGTERM", () => {
  it("with a publisher and viewers attached: ENDLIST is served before the process exits 0 within the grace period", async () => {
    const { lvqr, ports, ffmpeg } = await serveAndPublish("drain");
    const hlsBase = `http://127.0.0.1:${ports.hls}/hls/live/drain`;
    const video = new LlHlsFollower(`${hlsBase}/playlist.m3u8`);
    const audio = new LlHlsFollower(`${hlsBase}/audio.m3u8`);
    const dash = new DashFollower(`http://127.0.0.1:${ports.dash}/dash/live/drain/manifest.mpd`);
    cleanups.push(() => Promise.all([video.stop(), audio.stop(), dash.stop()]));
    const moq = await LiteViewer.connect(`http://127.0.0.1:${ports.moq}/`);
    cleanups.push(() => moq.close());
    await moq.waitAnnounced("live/drain");
    const catalog = await moq.readCatalog("live/drain");
    const videoTrack = Object.keys(catalog.video?.renditions ?? {})[0]!;
    const moqVideo = moq.record("live/drain", videoTrack, 60);

    // Every viewer is really receiving media before the signal.
    await waitFor(() => video.partsFetched >= 5 && audio.partsFetched >= 5 && dash.segmentsFetched >= 1, {
      timeoutMs: 20_000,
      message: "HLS parts and a DASH segment fetched by the followers",
    });
    await moqVideo.waitForGroups(1);
    expect(video.errors).toEqual([]);

    const signalledAt = Date.now();
    lvqr.signal("SIGTERM");
    const exit = await lvqr.exited;
    const elapsed = exit.atMs - signalledAt;
    console.log(`[e2e shutdown] exit ${exit.code} after ${elapsed} ms (grace ${GRACE_MS} ms)`);

    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(elapsed).toBeLessThanOrEqual(GRACE_MS);

    // Both media playlists were served with ENDLIST (and without a preload hint) before the exit.
    for (const follower of [video, audio]) {
      expect(follower.endlistAtMs, `ENDLIST on ${follower.playlistUrl}`).toBeDefined();
      expect(follower.endlistAtMs!).toBeGreaterThanOrEqual(signalledAt);
      expect(follower.endlistAtMs!).toBeLessThanOrEqual(exit.atMs);
      expect(follower.latest).not.toContain("#EXT-X-PRELOAD-HINT");
      // No request failed before the end was announced: in-flight blocking reloads were answered.
      expect(follower.errors.filter((e) => e.atMs <= follower.endlistAtMs!)).toEqual([]);
    }
    // The DASH manifest turned static before the exit.
    expect(dash.staticAtMs, "a static MPD").toBeDefined();
    expect(dash.staticAtMs!).toBeLessThanOrEqual(exit.atMs);

    // The publisher was disconnected; the MoQ viewer saw the broadcast end.
    await waitFor(() => !ffmpeg.running, { timeoutMs: 10_000, message: "ffmpeg to notice the end" });
    expect(moq.isAnnounced("live/drain")).toBe(false);

    // Every listener is closed; the log tells the story with nothing above warn level.
    for (const port of [ports.rtmp, ports.admin, ports.hls!, ports.dash!, ports.moq]) {
      expect(await tcpConnects(port), `port ${port} closed`).toBe(false);
    }
    const messages = lvqr.logs.map((line) => line.msg);
    expect(messages).toEqual(expect.arrayContaining(["draining", "shutdown complete"]));
    expect(lvqr.logs.filter((line) => (line.level ?? 0) >= 50)).toEqual([]);
  }, 90_000);

  it("a second signal during the drain exits at once with code 1", async () => {
    const { lvqr, ports } = await serveAndPublish("twice");
    const follower = new LlHlsFollower(`http://127.0.0.1:${ports.hls}/hls/live/twice/playlist.m3u8`);
    cleanups.push(() => follower.stop());
    await waitFor(() => follower.partsFetched >= 2, { timeoutMs: 10_000, message: "parts fetched" });

    lvqr.signal("SIGTERM");
    await lvqr.waitForLog((line) => line.msg === "draining", 5000, "the draining log line");
    const secondAt = Date.now();
    lvqr.signal("SIGTERM");
    const exit = await lvqr.exited;
    expect(exit.code).toBe(1);
    expect(exit.atMs - secondAt).toBeLessThan(1000);
    expect(lvqr.logs.some((line) => /second signal/.test(String(line.msg)))).toBe(true);
  }, 60_000);
});
