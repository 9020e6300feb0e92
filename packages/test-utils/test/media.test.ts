import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  parseAudioSpecificConfig,
  parseAvcDecoderConfigurationRecord,
  parseAvcSps,
  parseFlvFile,
  parseVideoTag,
} from "@lvqr/ingest-rtmp";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  FIXTURE_INFO,
  fixtureFlvPath,
  fixtureSource,
  flvSourceFromFile,
  flvSourceFromTags,
  isTestUtilsError,
  probe,
  readFixtureFlv,
  silentAacFrame,
  syntheticAacConfig,
  syntheticH264Config,
  syntheticIdrSlice,
  syntheticPSlice,
  syntheticSource,
  writeFlvFile,
} from "../src/index.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Runs ffmpeg; fails the test with a clear message when it is not installed (it is in CI). */
function ffmpeg(args: string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const run = spawnSync("ffmpeg", ["-hide_banner", "-v", "error", ...args], { maxBuffer: 64 * 1024 * 1024 });
  if (run.error)
    throw new Error(`these tests need ffmpeg on PATH to decode the synthetic media: ${run.error.message}`);
  return { status: run.status, stdout: run.stdout, stderr: run.stderr.toString() };
}

async function withFile<T>(
  name: string,
  bytes: Uint8Array,
  body: (path: string) => Promise<T> | T,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "lvqr-test-utils-media-"));
  try {
    const path = join(dir, name);
    await writeFile(path, bytes);
    return await body(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("the committed fixture", () => {
  it("is what FIXTURE_INFO says", async () => {
    const source = await fixtureSource();
    expect(fixtureFlvPath()).toMatch(/fixtures[/\\]av\.flv$/);
    expect(source.summary).toMatchObject({
      videoFrames: FIXTURE_INFO.videoFrames,
      audioFrames: FIXTURE_INFO.audioFrames,
      keyframes: FIXTURE_INFO.keyframes,
      firstTimestampMs: 0,
    });
    expect(source.loopDurationMs).toBeCloseTo(FIXTURE_INFO.durationMs, 6);
    expect(source.headers.map((t) => t.type)).toEqual([9, 8]);
    expect(source.trailer).toHaveLength(1);
    expect(source.metadata).toMatchObject({ width: 640, height: 360, framerate: 30, audiosamplerate: 48000 });
    const video = parseVideoTag(source.headers[0]!.body);
    if (video.type !== "sequence-start") throw new Error("first header is not an AVC sequence header");
    const avcC = parseAvcDecoderConfigurationRecord(video.record);
    expect(parseAvcSps(avcC.sps[0]!)).toMatchObject({ profileIdc: 100, width: 640, height: 360 });
    // Keyframes every 32 frames: the first video tag of each loop is one.
    const keyTimes = source.media
      .filter((t) => t.type === 9 && t.body[0]! >> 4 === 1)
      .map((t) => t.timestamp);
    expect(keyTimes).toEqual([0, 1067, 2134, 3200]);
  });

  it("reads the same through the mean-interval loop estimate as through FIXTURE_INFO", async () => {
    const estimated = flvSourceFromFile(await readFixtureFlv());
    expect(Math.abs(estimated.loopDurationMs - FIXTURE_INFO.durationMs)).toBeLessThan(1);
  });
});

describe("synthetic H.264", () => {
  it("writes an SPS and PPS that match the golden bytes, field by field", () => {
    const config = syntheticH264Config({ width: 320, height: 180, fps: 30 });
    // 67: nal_ref_idc 3, type 7 (SPS) | 42: profile_idc 66 | c0: constraint_set0+1 | 1e: level 3.0
    // 95: sps_id ue(0)=1, log2_max_frame_num_minus4 ue(4)=00101, pic_order_cnt_type ue(2)=01|1
    // a0 50: max_num_ref_frames ue(1)=010, gaps 0, pic_width_in_mbs_minus1 ue(19)=000010100
    // 67: pic_height_in_map_units_minus1 ue(11)=0001100, frame_mbs_only 1, direct_8x8 1, cropping 1
    // e7: crop left/right/top ue(0)=1,1,1, bottom ue(6)=00111 (192 - 180 = 12 rows = 6 units)
    // 84 ...: vui 1, aspect 0, overscan 0, signal 0, chroma loc 0, timing 1, num_units_in_tick 1,
    //   time_scale 60 (with emulation prevention: 00 00 03), fixed rate 1, no HRD, no pic_struct,
    //   bitstream restriction (no reorder, one frame buffer), trailing bits
    expect(hex(config.sps)).toBe("6742c01e95a05067e784000003000400000300f23c2211a8");
    // 68: PPS | ce: pps_id 1, sps_id 1, CAVLC 0, bottom_field 0, slice groups 1, l0/l1 refs 1,1 ...
    expect(hex(config.pps)).toBe("68ce3880");
    expect(config.codecString).toBe("avc1.42c01e");
    expect(parseAvcSps(config.sps)).toMatchObject({ profileIdc: 66, levelIdc: 30, width: 320, height: 180 });
    const avcC = parseAvcDecoderConfigurationRecord(config.avcC);
    expect(avcC).toMatchObject({ profile: 66, level: 30, nalLengthSize: 4 });
    // P picture: 41 (ref_idc 2, type 1), then first_mb 0, slice_type P(5), pps 0, frame_num 1,
    // no override, no reordering, sliding window, qp delta 0, mb_skip_run 240, trailing bits.
    expect(hex(syntheticPSlice(config, 1))).toBe("419a02203c60");
    // IDR: 65, then one byte per macroblock (I_16x16 DC, no residual) after the header.
    const idr = syntheticIdrSlice(config, 0);
    expect(idr[0]).toBe(0x65);
    expect(idr.byteLength).toBeGreaterThan(240);
    expect(idr.byteLength).toBeLessThan(250);
  });

  it("crops odd macroblock rows and columns and picks a level from the frame size", () => {
    for (const [width, height] of [
      [16, 16],
      [34, 18],
      [1280, 720],
      [1920, 1080],
    ] as const) {
      const config = syntheticH264Config({ width, height });
      expect(parseAvcSps(config.sps)).toMatchObject({ width, height });
    }
    expect(syntheticH264Config({ width: 1920, height: 1080 }).sps[3]).toBe(40);
  });

  it("rejects sizes and rates it cannot encode", () => {
    for (const options of [{ width: 15 }, { width: 321 }, { height: 0 }, { fps: 0 }, { fps: 1.5 }]) {
      let error: unknown;
      try {
        syntheticH264Config(options);
      } catch (e) {
        error = e;
      }
      expect(isTestUtilsError(error, "TEST_UTILS_INVALID_OPTION")).toBe(true);
    }
  });
});

describe("synthetic AAC", () => {
  it("writes silent raw_data_blocks and a matching AudioSpecificConfig", () => {
    // SCE(000) tag 0(0000), global_gain 100, ics_info (long window, max_sfb 0), no pulse/TNS/gain, END(111)
    expect(hex(silentAacFrame(1))).toBe("00c80007");
    // CPE(001) tag 0, common_window 0, two empty channel streams, END
    expect(hex(silentAacFrame(2))).toBe("2064000190000e");
    const config = syntheticAacConfig({ sampleRate: 44100, channels: 1 });
    expect(parseAudioSpecificConfig(config.audioSpecificConfig)).toMatchObject({
      objectType: 2,
      sampleRate: 44100,
      channels: 1,
    });
    expect(config.frameDurationMs).toBeCloseTo(1024 / 44.1, 9);
    expect(() => syntheticAacConfig({ sampleRate: 12345 })).toThrow(/not an AAC sampling frequency/);
  });
});

describe("synthetic sources", () => {
  it("interleave video and audio by timestamp and loop seamlessly", () => {
    const source = syntheticSource();
    expect(source.description).toBe("synthetic H.264 320x180@30 + AAC 48 kHz stereo");
    expect(source.summary).toMatchObject({ videoFrames: 64, audioFrames: 100, keyframes: 2 });
    expect(source.loopDurationMs).toBeCloseTo(64000 / 30, 9);
    const times = source.media.map((t) => t.timestamp);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    const videoOnly = syntheticSource({ audio: false, gopFrames: 10, gops: 3, fps: 25 });
    expect(videoOnly.summary).toMatchObject({ videoFrames: 30, audioFrames: 0, keyframes: 3 });
    expect(syntheticSource({ video: false }).summary).toMatchObject({ videoFrames: 0, audioFrames: 100 });
    expect(() => syntheticSource({ video: false, audio: false })).toThrow(/needs video, audio or both/);
  });

  it("decode in ffmpeg: grey frames, silent audio, the expected frame counts", async () => {
    const file = writeFlvFile(syntheticSource(), 2);
    await withFile("synthetic.flv", file, async (path) => {
      const result = await probe(path, { args: ["-count_frames"], extension: ".flv" });
      if (result.status !== "ok") throw new Error(`ffprobe: ${JSON.stringify(result)}`);
      const video = result.streams.find((s) => s.codecType === "video")!;
      const audio = result.streams.find((s) => s.codecType === "audio")!;
      expect(video).toMatchObject({
        codecName: "h264",
        profile: "Constrained Baseline",
        width: 320,
        height: 180,
      });
      expect(video.raw["nb_read_frames"]).toBe("128");
      expect(audio).toMatchObject({ codecName: "aac", sampleRate: 48000, channels: 2 });
      expect(audio.raw["nb_read_frames"]).toBe("200");

      const decode = ffmpeg(["-i", path, "-f", "null", "-"]);
      expect(decode.stderr).toBe("");
      expect(decode.status).toBe(0);
      const pcm = ffmpeg(["-i", path, "-map", "0:a", "-f", "s16le", "-"]).stdout;
      expect(pcm.byteLength).toBe(200 * 1024 * 2 * 2);
      expect(pcm.every((b) => b === 0)).toBe(true);
      const luma = ffmpeg([
        "-i",
        path,
        "-map",
        "0:v",
        "-frames:v",
        "3",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-",
      ]).stdout;
      expect(luma.byteLength).toBe(3 * 320 * 180);
      expect(new Set(luma).size).toBe(1); // one flat grey
    });
  });
});

describe("FLV files", () => {
  it("write and read back tag for tag, with continuous timestamps across loops", async () => {
    const source = await fixtureSource();
    const tags = parseFlvFile(writeFlvFile(source, 2));
    expect(tags[0]!.type).toBe(18);
    const media = tags.filter((t) => t.type !== 18).slice(source.headers.length);
    expect(media).toHaveLength(2 * source.media.length + source.trailer.length);
    const shift = Math.round(source.loopDurationMs);
    expect(media[source.media.length]!.timestamp).toBe(source.media[0]!.timestamp + shift);
    expect(hex(media[5]!.body)).toBe(hex(source.media[5]!.body));
    // Extended timestamps (above 2^24 ms) survive.
    const late = parseFlvFile(
      writeFlvFile([{ type: 8, timestamp: 0x1234567, body: Uint8Array.of(0xaf, 1, 0) }]),
    );
    expect(late[0]!.timestamp).toBe(0x1234567);
  });

  it("reject anything that is not FLV with one typed error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          flvSourceFromFile(bytes);
        } catch (error) {
          expect(isTestUtilsError(error)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    // An FLV header with a truncated tag, and a file with no media at all.
    const truncated = Uint8Array.of(0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0, 9, 0, 0, 50);
    expect(() => flvSourceFromFile(truncated)).toThrow(/cannot be read/);
    expect(() => flvSourceFromTags([])).toThrow(/no audio or video frames/);
  });
});

describe("hand-made tag sources", () => {
  it("build from the re-exported tag builders, as the README shows", async () => {
    const { buildAvcNaluTag, buildAvcSequenceHeaderTag } = await import("../src/index.ts");
    const h264 = syntheticH264Config({ width: 64, height: 64 });
    const source = flvSourceFromTags([
      { type: 9, timestamp: 0, body: buildAvcSequenceHeaderTag(h264.avcC) },
      {
        type: 9,
        timestamp: 0,
        body: buildAvcNaluTag({ keyframe: true, nalus: [syntheticIdrSlice(h264, 0)] }),
      },
      {
        type: 9,
        timestamp: 33,
        body: buildAvcNaluTag({ keyframe: false, nalus: [syntheticPSlice(h264, 1)] }),
      },
    ]);
    expect(source.headers).toHaveLength(1);
    expect(source.summary).toMatchObject({ videoFrames: 2, keyframes: 1, lastTimestampMs: 33 });
    expect(source.loopDurationMs).toBe(66);
  });
});
