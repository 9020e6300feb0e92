import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EgressApp, followed, StepFeed, settle, startEgressApp, until } from "./egress-harness.ts";

const run = promisify(execFile);

interface Probe {
  streams: Array<{
    codec_name: string;
    codec_type: string;
    width?: number;
    height?: number;
    sample_rate?: string;
    channels?: number;
  }>;
  format: { duration?: string; format_name: string };
}

async function ffprobe(url: string): Promise<Probe> {
  const { stdout } = await run(
    "ffprobe",
    ["-v", "error", "-show_streams", "-show_format", "-print_format", "json", url],
    { timeout: 30_000 },
  );
  return JSON.parse(stdout) as Probe;
}

// One fixture pass (6.4 s), published and ended: the playlists are complete (ENDLIST, static MPD),
// so ffprobe can read the whole presentation and report its duration.
let app: EgressApp & { url: string };
beforeAll(async () => {
  app = await startEgressApp({ listen: true });
  const feed = new StepFeed(app.origin, "live/probe");
  await followed(app.hub, "live/probe");
  await feed.advanceTo(6_400);
  await settle();
  feed.close();
  await until(() => app.hub.get("live/probe")?.ended === true, 2000, "ended");
}, 30_000);
afterAll(async () => {
  await app.close();
});

describe("ffprobe reads the projections", () => {
  it("reads master.m3u8: H.264 640x360 and AAC 48 kHz stereo, 6.4 s", async () => {
    const probe = await ffprobe(`${app.url}/hls/live/probe/master.m3u8`);
    const video = probe.streams.find((s) => s.codec_type === "video");
    const audio = probe.streams.find((s) => s.codec_type === "audio");
    expect(video).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(audio).toMatchObject({ codec_name: "aac", sample_rate: "48000", channels: 2 });
    expect(probe.format.format_name).toBe("hls");
    expect(Number(probe.format.duration)).toBeGreaterThan(6.0);
    expect(Number(probe.format.duration)).toBeLessThan(6.9);
  });

  it("reads manifest.mpd: the same streams and duration", async () => {
    const probe = await ffprobe(`${app.url}/dash/live/probe/manifest.mpd`);
    const video = probe.streams.find((s) => s.codec_type === "video");
    const audio = probe.streams.find((s) => s.codec_type === "audio");
    expect(video).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(audio).toMatchObject({ codec_name: "aac", sample_rate: "48000", channels: 2 });
    expect(probe.format.format_name).toBe("dash");
    // ffmpeg's DASH demuxer keeps mediaPresentationDuration in whole seconds (PT6.403S reads as 6).
    expect(Number(probe.format.duration)).toBe(6);
  });
});
