/**
 * ffprobe / ffmpeg (a real peer) accept our init segments plus per-sample fragments, for H.264,
 * AAC and HEVC: codec, profile, size, rate, channels, frame count, timestamps, and a clean decode.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { buildFragment, buildInitSegment } from "../src/index.ts";
import { type Fixture, HEVC_FIXTURE, loadFixture } from "./support/feed-fixture.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "lvqr-cmaf-ffprobe-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes init + one fragment per sample of `kind`, with times in the track's CMAF timescale. */
function packageTrack(
  fixture: Fixture,
  kind: "video" | "audio",
  file: string,
): { timescale: number; dts: number[] } {
  const config = fixture[kind]!;
  const timescale = kind === "video" ? 90000 : config.timescale;
  const samples = fixture.samples.filter((s) => s.kind === kind);
  const parts: Uint8Array[] = [buildInitSegment(config)];
  // Shift so the first decode time is 0 (B-frame reordering makes the fixture's first dts negative).
  const base = samples[0]!.dtsMs;
  const ticks = (ms: number) => Math.round(((ms - base) * timescale) / 1000);
  const dts: number[] = [];
  samples.forEach((sample, i) => {
    const next = samples[i + 1];
    const decodeTime = ticks(sample.dtsMs);
    const duration = next ? ticks(next.dtsMs) - decodeTime : kind === "audio" ? 1024 : 3000;
    dts.push(decodeTime);
    parts.push(
      buildFragment({
        sequenceNumber: i + 1,
        trackId: 1,
        baseMediaDecodeTime: decodeTime,
        samples: [
          {
            duration,
            data: sample.data,
            keyframe: sample.keyframe,
            compositionOffset: ticks(sample.ptsMs) - decodeTime,
          },
        ],
      }),
    );
  });
  writeFileSync(file, Buffer.concat(parts));
  return { timescale, dts };
}

function ffprobe(file: string, ...args: string[]): Record<string, unknown> {
  const out = execFileSync("ffprobe", ["-v", "error", "-of", "json", ...args, file], { encoding: "utf8" });
  return JSON.parse(out);
}

function decodeErrors(file: string): string {
  // -xerror stops at the first decode error; stderr stays empty for a clean stream.
  return execFileSync("ffmpeg", ["-v", "error", "-xerror", "-i", file, "-f", "null", "-"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("ffprobe accepts init + per-sample fragments", () => {
  test("H.264 High 640x360, 192 frames, B-frame composition offsets preserved", () => {
    const file = path.join(dir, "h264.mp4");
    const { dts } = packageTrack(loadFixture(), "video", file);
    const probe = ffprobe(
      file,
      "-count_frames",
      "-show_entries",
      "stream=codec_name,profile,width,height,nb_read_frames,time_base,r_frame_rate:format=duration",
    ) as { streams: Record<string, unknown>[]; format: { duration: string } };
    expect(probe.streams[0]).toMatchObject({
      codec_name: "h264",
      profile: "High",
      width: 640,
      height: 360,
      nb_read_frames: "192",
      time_base: "1/90000",
      r_frame_rate: "30/1",
    });
    expect(Number(probe.format.duration)).toBeCloseTo(6.4, 2);
    const packets = ffprobe(file, "-show_entries", "packet=dts,pts,flags") as {
      packets: { dts: number; pts: number; flags: string }[];
    };
    expect(packets.packets.map((p) => p.dts)).toEqual(dts);
    expect(packets.packets.filter((p) => p.flags.startsWith("K"))).toHaveLength(7);
    // The first frame is shown two B-frame slots after its decode time.
    expect(packets.packets[0]!.pts - packets.packets[0]!.dts).toBe(6000);
    expect(decodeErrors(file)).toBe("");
  });

  test("AAC-LC 48 kHz stereo, 300 frames of exactly 1024 samples", () => {
    const file = path.join(dir, "aac.mp4");
    const { dts } = packageTrack(loadFixture(), "audio", file);
    const probe = ffprobe(
      file,
      "-count_frames",
      "-show_entries",
      "stream=codec_name,profile,sample_rate,channels,nb_read_frames,time_base:format=duration",
    ) as { streams: Record<string, unknown>[]; format: { duration: string } };
    expect(probe.streams[0]).toMatchObject({
      codec_name: "aac",
      profile: "LC",
      sample_rate: "48000",
      channels: 2,
      nb_read_frames: "300",
      time_base: "1/48000",
    });
    expect(Number(probe.format.duration)).toBeCloseTo(6.4, 2);
    expect(dts.every((t, i) => t === i * 1024)).toBe(true);
    expect(decodeErrors(file)).toBe("");
  });

  test("HEVC Main 320x180 from libx265 (hvc1/hvcC)", () => {
    const file = path.join(dir, "hevc.mp4");
    packageTrack(loadFixture(HEVC_FIXTURE), "video", file);
    const probe = ffprobe(
      file,
      "-count_frames",
      "-show_entries",
      "stream=codec_name,codec_tag_string,profile,width,height,nb_read_frames",
    ) as { streams: Record<string, unknown>[] };
    expect(probe.streams[0]).toMatchObject({
      codec_name: "hevc",
      codec_tag_string: "hvc1",
      profile: "Main",
      width: 320,
      height: 180,
      nb_read_frames: "30",
    });
    expect(decodeErrors(file)).toBe("");
  });
});
