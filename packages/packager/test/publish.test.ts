import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BroadcastConsumer, OriginProducer, type TrackConsumer } from "@lvqr/moq-lite";
import { describe, expect, test } from "vitest";
import {
  type AudioTrackConfig,
  BroadcastPublisher,
  demuxMp4,
  type HangCatalog,
  isPackagerError,
  parseFragment,
  parseHangCatalog,
  parseInitSegment,
  selectCmafRendition,
  TRACK_NAMES,
  type VideoTrackConfig,
} from "../src/index.ts";
import { feedFixture, HEVC_FIXTURE, loadFixture } from "./support/feed-fixture.ts";
import { loadHangCatalog, loadHangContainer } from "./support/load-hang.ts";

interface ReadFrame {
  readonly bytes: Uint8Array;
  readonly ingestTimeMs: number | undefined;
}
interface ReadGroup {
  readonly sequence: number;
  readonly frames: ReadFrame[];
}

/** Reads a track to its end (call it before the data is written so no group is missed). */
async function drain(track: TrackConsumer): Promise<ReadGroup[]> {
  const groups: ReadGroup[] = [];
  for (;;) {
    const group = await track.nextGroup();
    if (!group) return groups;
    const frames: ReadFrame[] = [];
    for (;;) {
      const frame = await group.nextFrame();
      if (!frame) break;
      frames.push({ bytes: await frame.readAll(), ingestTimeMs: frame.meta?.ingestTimeMs });
    }
    groups.push({ sequence: group.sequence, frames });
  }
}

function drainAll(broadcast: BroadcastConsumer, names: string[]): Record<string, Promise<ReadGroup[]>> {
  return Object.fromEntries(names.map((name) => [name, drain(broadcast.subscribeTrack(name))]));
}

const decodeJson = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
const fixture = loadFixture();
const videoConfig: VideoTrackConfig = fixture.video!;
const audioConfig: AudioTrackConfig = fixture.audio!;
const AAC_FRAME = new Uint8Array([0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]);
const nal = (type: number, size = 8) => {
  const out = new Uint8Array(4 + size);
  new DataView(out.buffer).setUint32(0, size);
  out[4] = type;
  return out;
};

function tfdts(groups: ReadGroup[], skipFirstFrame = false): number[] {
  return groups.flatMap((g) =>
    g.frames.slice(skipFirstFrame ? 1 : 0).map((f) => parseFragment(f.bytes).baseMediaDecodeTime),
  );
}

describe("BroadcastPublisher with the fixture", () => {
  test("writes every track of the layout", async () => {
    const origin = new OriginProducer();
    const feed = feedFixture(origin, "live/fixture");
    const broadcast = origin.consume().consume("live/fixture")!;
    const names = [
      TRACK_NAMES.catalog,
      TRACK_NAMES.video,
      TRACK_NAMES.audio,
      TRACK_NAMES.referenceCatalog,
      TRACK_NAMES.referenceVideo,
      TRACK_NAMES.referenceAudio,
      TRACK_NAMES.timing,
    ];
    expect(broadcast.trackNames().sort()).toEqual([...names].sort());
    const reads = drainAll(broadcast, names);
    await feed.done;
    const tracks = Object.fromEntries(
      await Promise.all(names.map(async (n) => [n, await reads[n]!] as const)),
    );
    const stats = feed.publisher.stats();
    expect(stats).toMatchObject({
      videoFrames: 192,
      audioFrames: 300,
      droppedVideoFrames: 0,
      droppedAudioFrames: 0,
    });
    expect(origin.consume().consume("live/fixture")).toBeUndefined(); // closed at the end: unannounced

    // video: one group per 1 s GOP, each opening with a keyframe fragment.
    const video = tracks[TRACK_NAMES.video]!;
    expect(video).toHaveLength(7);
    expect(video.map((g) => g.frames.length)).toEqual([30, 30, 30, 30, 30, 30, 12]);
    for (const group of video) {
      expect(parseFragment(group.frames[0]!.bytes).samples[0]!.keyframe).toBe(true);
      for (const frame of group.frames.slice(1))
        expect(parseFragment(frame.bytes).samples[0]!.keyframe).toBe(false);
      for (const frame of group.frames) expect(frame.ingestTimeMs).toBeTypeOf("number");
    }
    const videoTimes = tfdts(video);
    for (let i = 1; i < videoTimes.length; i++) {
      // 30 fps from whole-ms timestamps: 33 or 34 ms apart, never backwards.
      expect(videoTimes[i]! - videoTimes[i - 1]!).toBeGreaterThanOrEqual(2970);
      expect(videoTimes[i]! - videoTimes[i - 1]!).toBeLessThanOrEqual(3060);
    }
    const sequences = video.flatMap((g) => g.frames.map((f) => parseFragment(f.bytes).sequenceNumber));
    expect(sequences).toEqual(Array.from({ length: 192 }, (_, i) => i + 1));

    // 0.mp4: the same fragments, with the init segment as frame 0 of every group.
    const legacyVideo = tracks[TRACK_NAMES.referenceVideo]!;
    expect(legacyVideo.map((g) => g.sequence)).toEqual(video.map((g) => g.sequence));
    legacyVideo.forEach((group, i) => {
      expect(group.frames[0]!.bytes).toEqual(feed.publisher.videoInit);
      expect(group.frames.slice(1).map((f) => f.bytes)).toEqual(video[i]!.frames.map((f) => f.bytes));
    });

    // audio: exact 1024-sample steps from a running count, despite whole-ms timestamps.
    const audio = tracks[TRACK_NAMES.audio]!;
    const audioTimes = tfdts(audio);
    expect(audioTimes).toHaveLength(300);
    for (let i = 1; i < audioTimes.length; i++) expect(audioTimes[i]! - audioTimes[i - 1]!).toBe(1024);
    expect(audio.length).toBeGreaterThanOrEqual(7);
    expect(audio.length).toBeLessThanOrEqual(14);

    // 1.mp4: one group per AAC frame, [init, fragment], fragment identical to the audio track's.
    const legacyAudio = tracks[TRACK_NAMES.referenceAudio]!;
    expect(legacyAudio).toHaveLength(300);
    const audioFrames = audio.flatMap((g) => g.frames.map((f) => f.bytes));
    legacyAudio.forEach((group, i) => {
      expect(group.frames).toHaveLength(2);
      expect(group.frames[0]!.bytes).toEqual(feed.publisher.audioInit);
      expect(group.frames[1]!.bytes).toEqual(audioFrames[i]);
    });

    // 0.timing: one 16-byte anchor per keyframe: u64 LE 0.mp4 group sequence, u64 LE ingest ms.
    const timing = tracks[TRACK_NAMES.timing]!;
    expect(timing).toHaveLength(7);
    timing.forEach((group, i) => {
      expect(group.frames).toHaveLength(1);
      const anchor = new DataView(group.frames[0]!.bytes.buffer, group.frames[0]!.bytes.byteOffset, 16);
      expect(group.frames[0]!.bytes.byteLength).toBe(16);
      expect(Number(anchor.getBigUint64(0, true))).toBe(legacyVideo[i]!.sequence);
      expect(Number(anchor.getBigUint64(8, true))).toBe(Math.round(video[i]!.frames[0]!.ingestTimeMs!));
    });

    // .catalog: the reference JSON, written once both configs were known.
    const referenceCatalog = tracks[TRACK_NAMES.referenceCatalog]!.map((g) => decodeJson(g.frames[0]!.bytes));
    expect(referenceCatalog.at(-1)).toEqual({
      version: 1,
      tracks: [
        { name: "0.mp4", packaging: "cmaf", renderGroup: 0, codec: "avc1.64001E", mimeType: "video/mp4" },
        {
          name: "1.mp4",
          packaging: "cmaf",
          renderGroup: 1,
          codec: "mp4a.40.2",
          mimeType: "audio/mp4",
          samplerate: 48000,
          channelCount: 2,
        },
      ],
    });

    // catalog.json: the version after measurement carries bitrate, frame rate and B-frame jitter.
    const catalogs = tracks[TRACK_NAMES.catalog]!.map((g) => {
      expect(g.frames).toHaveLength(1);
      return parseHangCatalog(g.frames[0]!.bytes);
    });
    const last = catalogs.at(-1)!;
    const rendition = last.video!.renditions["video"]!;
    // jitter: the largest pts - dts, 4 frames (133.3 ms) with the fixture's B-pyramid.
    expect(rendition).toMatchObject({
      codec: "avc1.64001e",
      codedWidth: 640,
      codedHeight: 360,
      framerate: 30,
      jitter: 134,
    });
    expect(rendition.bitrate).toBeGreaterThan(200_000);
    expect(rendition.bitrate).toBeLessThan(400_000);
    expect(last.audio!.renditions["audio"]!.bitrate).toBeGreaterThan(50_000);
    expect(last.audio!.renditions["audio"]!.bitrate).toBeLessThan(80_000);
    // Versions: video config, audio config, measured values. The reader joined at the second.
    expect(stats.catalogVersions).toBe(3);
    expect(catalogs).toHaveLength(2);
    expect(catalogs[0]!.video!.renditions["video"]!.bitrate).toBeUndefined();
    const { RootSchema } = await loadHangCatalog();
    for (const catalog of catalogs)
      expect(RootSchema.safeParse(JSON.parse(JSON.stringify(catalog))).success).toBe(true);
  });

  test("the official @moq/hang decoder decodes every frame with the catalog's init", async () => {
    const origin = new OriginProducer();
    const feed = feedFixture(origin, "live/hang", { keepOpen: true });
    const broadcast = origin.consume().consume("live/hang")!;
    const reads = drainAll(broadcast, ["video", "audio"]);
    await feed.done;
    const catalog = feed.publisher.catalog as HangCatalog;
    feed.publisher.close();
    const { Cmaf } = await loadHangContainer();
    for (const kind of ["video", "audio"] as const) {
      const rendition = selectCmafRendition(catalog, kind as "video")!;
      const init = Cmaf.decodeInitSegment(rendition.init);
      const samples = (await reads[kind]!).flatMap((group) =>
        group.frames.map((frame, i) => ({
          first: i === 0,
          sample: Cmaf.decodeDataSegment(frame.bytes, init)[0]!,
        })),
      );
      expect(samples).toHaveLength(kind === "video" ? 192 : 300);
      for (const { first, sample } of samples) {
        if (first) expect(sample.keyframe).toBe(true); // every group starts decodable
        expect(sample.data.byteLength).toBeGreaterThan(0);
        expect(sample.duration).toBeGreaterThan(0);
      }
      // Presentation order: the fixture's frames, 33.3 ms (video) or 21.3 ms (audio) apart.
      const pts = samples.map((s) => s.sample.timestamp).sort((a, b) => a - b);
      const step = kind === "video" ? 1e6 / 30 : (1024 * 1e6) / 48000;
      for (let i = 1; i < pts.length; i++) expect(Math.abs(pts[i]! - pts[i - 1]! - step)).toBeLessThan(1200);
    }
  });

  test("ffprobe plays what was published: catalog init + track, and any 0.mp4 group alone", async () => {
    const origin = new OriginProducer();
    const feed = feedFixture(origin, "live/probe", { keepOpen: true });
    const reads = drainAll(origin.consume().consume("live/probe")!, ["video", "audio", "0.mp4", "1.mp4"]);
    await feed.done;
    const catalog = feed.publisher.catalog!;
    feed.publisher.close();
    const dir = mkdtempSync(path.join(os.tmpdir(), "lvqr-publish-probe-"));
    const probe = (name: string, parts: Uint8Array[]) => {
      const file = path.join(dir, name);
      writeFileSync(file, Buffer.concat(parts));
      const out = execFileSync(
        "ffprobe",
        [
          "-v",
          "error",
          "-count_frames",
          "-of",
          "json",
          "-show_entries",
          "stream=codec_name,width,height,sample_rate,channels,nb_read_frames",
          file,
        ],
        { encoding: "utf8" },
      );
      return JSON.parse(out).streams[0];
    };
    try {
      const video = (await reads["video"]!).flatMap((g) => g.frames.map((f) => f.bytes));
      expect(probe("video.mp4", [selectCmafRendition(catalog, "video")!.init, ...video])).toMatchObject({
        codec_name: "h264",
        width: 640,
        height: 360,
        nb_read_frames: "192",
      });
      const audio = (await reads["audio"]!).flatMap((g) => g.frames.map((f) => f.bytes));
      expect(probe("audio.mp4", [selectCmafRendition(catalog, "audio")!.init, ...audio])).toMatchObject({
        codec_name: "aac",
        sample_rate: "48000",
        channels: 2,
        nb_read_frames: "300",
      });
      const gop = (await reads["0.mp4"]!)[3]!;
      expect(
        probe(
          "gop.mp4",
          gop.frames.map((f) => f.bytes),
        ),
      ).toMatchObject({ codec_name: "h264", nb_read_frames: "30" });
      const aacGroup = (await reads["1.mp4"]!)[100]!;
      expect(
        probe(
          "aac.mp4",
          aacGroup.frames.map((f) => f.bytes),
        ),
      ).toMatchObject({ codec_name: "aac", nb_read_frames: "1" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an HEVC broadcast is described as hvc1 in both catalogs", async () => {
    const origin = new OriginProducer();
    const feed = feedFixture(origin, "live/hevc", { file: HEVC_FIXTURE, keepOpen: true });
    await feed.done;
    expect(feed.publisher.catalog!.video!.renditions["video"]!.codec).toBe("hvc1.1.6.L60.90");
    expect(feed.publisher.catalog!.audio).toBeUndefined();
    expect(parseInitSegment(feed.publisher.videoInit!).sampleEntry).toBe("hvc1");
    const reference = await origin.consume().consume("live/hevc")!.subscribeTrack(".catalog").nextGroup();
    expect(decodeJson((await reference!.readFrame())!).tracks[0].codec).toBe("hvc1.1.6.L60.90");
    await feed.stop();
  });

  test("a looped feed keeps timestamps continuous across the loop point", async () => {
    const origin = new OriginProducer();
    const feed = feedFixture(origin, "live/loop", { loop: true, durationMs: 12_800 });
    const broadcast = origin.consume().consume("live/loop")!;
    const reads = drainAll(broadcast, ["video", "audio"]);
    await feed.done;
    const video = tfdts(await reads["video"]!);
    const audio = tfdts(await reads["audio"]!);
    // durationMs bounds decode time: two loops, plus the next loop's frames decoded before 12.8 s.
    const expected = (kind: string) =>
      [0, 1, 2].flatMap((loop) =>
        fixture.samples.filter((s) => s.kind === kind && s.dtsMs + loop * 6400 < 12_800),
      ).length;
    expect(video).toHaveLength(expected("video"));
    expect(audio).toHaveLength(expected("audio"));
    expect(audio).toHaveLength(600);
    for (let i = 1; i < audio.length; i++) expect(audio[i]! - audio[i - 1]!).toBe(1024);
    for (let i = 1; i < video.length; i++) expect(video[i]! - video[i - 1]!).toBeLessThanOrEqual(3060);
    expect(feed.publisher.stats().videoGroups).toBe(14 + 1);
  });
});

describe("publishing a file", () => {
  test("real-time pacing follows decode time, with wall-clock ingest times", async () => {
    const origin = new OriginProducer();
    const started = Date.now();
    const feed = feedFixture(origin, "live/realtime", { realtime: true, durationMs: 1000 });
    const video = drain(origin.consume().consume("live/realtime")!.subscribeTrack("video"));
    await feed.done;
    const elapsed = Date.now() - started;
    // Samples with decode times in [-67 ms, 1000 ms) span about 1.03 s of wall time.
    expect(elapsed).toBeGreaterThan(900);
    expect(elapsed).toBeLessThan(3000);
    const frames = (await video).flatMap((g) => g.frames);
    expect(frames.length).toBe(fixture.samples.filter((s) => s.kind === "video" && s.dtsMs < 1000).length);
    const ingest = frames.map((f) => f.ingestTimeMs!);
    expect(ingest[0]! - started).toBeLessThan(200);
    expect(ingest.at(-1)! - ingest[0]!).toBeGreaterThan(800);
  });

  test("demuxMp4 refuses bytes that are not an MP4 with media it can carry", () => {
    for (const bytes of [
      new Uint8Array(0),
      new Uint8Array(64).fill(0x41),
      new Uint8Array(Buffer.from("000000086d6f6f76", "hex")),
    ]) {
      let error: unknown;
      try {
        demuxMp4(bytes);
      } catch (err) {
        error = err;
      }
      expect(isPackagerError(error, "PACKAGER_UNSUPPORTED")).toBe(true);
    }
  });
});

describe("BroadcastPublisher rules", () => {
  function publisherWithTracks(options?: ConstructorParameters<typeof BroadcastPublisher>[2]) {
    const origin = new OriginProducer();
    const publisher = new BroadcastPublisher(origin, "live/unit", {
      now: () => 1_700_000_000_000,
      ...options,
    });
    return { origin, publisher };
  }

  test("samples before a configuration, and delta frames before the first keyframe, are dropped", async () => {
    const { origin, publisher } = publisherWithTracks();
    expect(publisher.pushVideo({ dts: 0, pts: 0, keyframe: true, data: nal(5) })).toBe(false);
    expect(publisher.pushAudio({ dts: 0, pts: 0, keyframe: true, data: AAC_FRAME })).toBe(false);
    publisher.setVideoConfig(videoConfig);
    const video = drain(origin.consume().consume("live/unit")!.subscribeTrack("video"));
    expect(publisher.pushVideo({ dts: 33, pts: 33, keyframe: false, data: nal(1) })).toBe(false);
    expect(publisher.pushVideo({ dts: 67, pts: 67, keyframe: true, data: nal(5) })).toBe(true);
    expect(publisher.pushVideo({ dts: 100, pts: 100, keyframe: false, data: nal(1) })).toBe(true);
    publisher.close();
    const groups = await video;
    expect(groups).toHaveLength(1);
    expect(groups[0]!.frames).toHaveLength(2);
    expect(groups[0]!.frames[0]!.ingestTimeMs).toBe(1_700_000_000_000); // the clock, when the sample has none
    expect(publisher.stats()).toMatchObject({ droppedVideoFrames: 2, droppedAudioFrames: 1, videoFrames: 2 });
  });

  test("a one-off gap in video timestamps never becomes a frame duration; a sustained rate change does", async () => {
    const { origin, publisher } = publisherWithTracks();
    publisher.setVideoConfig(videoConfig);
    const video = drain(origin.consume().consume("live/unit")!.subscribeTrack("video"));
    // 30 fps, then 533 ms of frames lost (e.g. dropped while waiting for a keyframe), then 30 fps
    // again, then a sustained drop to 10 fps.
    const dts = [0, 33, 67, 100, 633, 667, 700, 733, 833, 933, 1033];
    for (const [i, t] of dts.entries()) {
      const keyframe = i === 0 || i === 4;
      publisher.pushVideo({ dts: t, pts: t, keyframe, data: nal(keyframe ? 5 : 1) });
    }
    publisher.close();
    const durations = (await video).flatMap((g) =>
      g.frames.map((f) => parseFragment(f.bytes).samples[0]!.duration),
    );
    // No estimate ever equals the 533 ms gap (47970 ticks): a delta more than twice the one before
    // waits for confirmation.
    expect(Math.max(...durations)).toBeLessThanOrEqual(9000);
    expect(durations[4]).toBe(2970); // the frame after the gap keeps the 30 fps estimate
    expect(durations[8]).toBe(2970); // first 100 ms delta: not yet adopted
    expect(durations[9]).toBe(9000); // sustained: adopted
  });

  test("audio decode times: jitter absorbed, a gap jumps forward, a source running ahead loses a frame", async () => {
    const { origin, publisher } = publisherWithTracks();
    publisher.setAudioConfig(audioConfig);
    const audio = drain(origin.consume().consume("live/unit")!.subscribeTrack("audio"));
    // 48 kHz: a frame is 21.333 ms. Whole-ms timestamps with ±1 ms of extra jitter.
    const jitter = [0, 1, -1, 0, 1, 1, -1, 0];
    let ms = 1000;
    for (let i = 0; i < 40; i++) {
      publisher.pushAudio({
        dts: Math.round(ms) + jitter[i % jitter.length]!,
        pts: 0,
        keyframe: true,
        data: AAC_FRAME,
      });
      ms += 1024 / 48;
    }
    // 10 frames lost upstream: the next timestamp is 11 frames later.
    ms += (10 * 1024) / 48;
    publisher.pushAudio({ dts: Math.round(ms), pts: 0, keyframe: true, data: AAC_FRAME });
    // A source running 3 frames ahead of its clock (timestamps stall): frames beyond 2 are dropped.
    let accepted = 0;
    for (let i = 0; i < 4; i++) {
      if (publisher.pushAudio({ dts: Math.round(ms), pts: 0, keyframe: true, data: AAC_FRAME })) accepted++;
    }
    publisher.close();
    const times = tfdts(await audio);
    const start = 48000;
    expect(times.slice(0, 40)).toEqual(Array.from({ length: 40 }, (_, i) => start + i * 1024));
    // Resynchronised to the (whole-ms) timestamp of the frame after the gap.
    const resync = Math.round(ms) * 48;
    expect(times[40]).toBe(resync);
    expect(Math.abs(resync - (start + 50 * 1024))).toBeLessThan(48);
    // Two more frames fit within the two-frame tolerance; the rest are dropped.
    expect(accepted).toBe(2);
    expect(times.slice(41)).toEqual([resync + 1024, resync + 2048]);
    expect(publisher.stats().droppedAudioFrames).toBe(2);
  });

  test("decode times never go backwards; a discontinuity rebases both tracks and bumps the catalog", async () => {
    const { origin, publisher } = publisherWithTracks();
    publisher.setVideoConfig(videoConfig);
    publisher.setAudioConfig(audioConfig);
    const broadcast = origin.consume().consume("live/unit")!;
    const reads = drainAll(broadcast, ["video", "audio", "catalog.json"]);
    const push = (kind: "v" | "a", dts: number, keyframe = false, discontinuity = false) =>
      kind === "v"
        ? publisher.pushVideo({ dts, pts: dts, keyframe, data: nal(keyframe ? 5 : 1), discontinuity })
        : publisher.pushAudio({ dts, pts: dts, keyframe: true, data: AAC_FRAME, discontinuity });
    push("v", 1000, true);
    push("a", 1000);
    push("v", 1033);
    push("v", 1033); // duplicate timestamp: nudged one tick
    push("v", 1030); // small step back: nudged one tick
    push("a", 1021);
    push("v", 1067);
    // The source restarts its clock at 0 (e.g. an encoder restart): flagged on both tracks.
    push("v", 0, true, true);
    push("a", 0, true, true);
    push("v", 33);
    push("a", 21);
    // An unflagged jump back of 5 s is treated the same way.
    push("v", -4967 + 5000 - 5000, true);
    push("a", 42 - 5000);
    publisher.close();
    const video = tfdts(await reads["video"]!);
    const audio = tfdts(await reads["audio"]!);
    expect(video.slice(0, 5)).toEqual([90000, 92970, 92971, 92972, 96030]);
    for (let i = 1; i < video.length; i++) expect(video[i]!).toBeGreaterThan(video[i - 1]!);
    for (let i = 1; i < audio.length; i++) expect(audio[i]! - audio[i - 1]!).toBeGreaterThanOrEqual(1024);
    // After the rebase video continues where the furthest track ended: the last video frame
    // (96030) plus its estimated duration (its last real delta, 3058 ticks; the nudged duplicates
    // do not count), later than audio's end (1042.67 ms).
    const rebasedVideoMs = video[5]! / 90;
    const lastAudioEndMs = (audio[1]! + 1024) / 48;
    expect(rebasedVideoMs).toBeCloseTo(Math.max(lastAudioEndMs, (96030 + 3058) / 90), 0);
    // Audio joined the same rebase (its flag was the same event), so A/V stay aligned.
    expect(Math.abs(audio[2]! / 48 - rebasedVideoMs)).toBeLessThan(22);
    const videoGroups = await reads["video"]!;
    expect(videoGroups).toHaveLength(3); // keyframes at 1000, the restart, and the jump back
    const catalogs = await reads["catalog.json"]!;
    expect(catalogs.length).toBe(1 + 2); // subscribed at the A+V version, then one per rebase
  });

  test("a configuration change writes a new init and catalog version and waits for a keyframe", async () => {
    const { origin, publisher } = publisherWithTracks();
    publisher.setVideoConfig(videoConfig);
    const broadcast = origin.consume().consume("live/unit")!;
    const reads = drainAll(broadcast, ["video", "0.mp4", "catalog.json"]);
    publisher.pushVideo({ dts: 0, pts: 0, keyframe: true, data: nal(5) });
    publisher.setVideoConfig({ ...videoConfig, description: videoConfig.description.slice() }); // same bytes: no-op
    publisher.pushVideo({ dts: 33, pts: 33, keyframe: false, data: nal(1) });
    const baseline = new Uint8Array(Buffer.from("0142e01effe100046742001e01000268ce", "hex"));
    publisher.setVideoConfig({
      codec: "h264",
      codecString: "avc1.42e01e",
      description: baseline,
      width: 320,
      height: 240,
    });
    expect(publisher.pushVideo({ dts: 67, pts: 67, keyframe: false, data: nal(1) })).toBe(false);
    publisher.pushVideo({ dts: 100, pts: 100, keyframe: true, data: nal(5) });
    publisher.close();
    const legacy = await reads["0.mp4"]!;
    expect(legacy).toHaveLength(2);
    expect(parseInitSegment(legacy[0]!.frames[0]!.bytes)).toMatchObject({
      codecString: "avc1.64001e",
      width: 640,
    });
    expect(parseInitSegment(legacy[1]!.frames[0]!.bytes)).toMatchObject({
      codecString: "avc1.42e01e",
      width: 320,
    });
    const catalogs = (await reads["catalog.json"]!).map((g) => parseHangCatalog(g.frames[0]!.bytes));
    expect(catalogs.map((c) => c.video!.renditions["video"]!.codec)).toEqual(["avc1.64001e", "avc1.42e01e"]);
    expect(tfdts(await reads["video"]!)).toEqual([0, 2970, 9000]);
  });

  test("invalid configurations and samples raise PackagerError; the broadcast survives", () => {
    const { publisher } = publisherWithTracks();
    expect(() => publisher.setVideoConfig({ ...videoConfig, description: new Uint8Array([1, 2]) })).toThrow(
      expect.objectContaining({ code: "PACKAGER_MALFORMED_BOX" }),
    );
    expect(() =>
      publisher.setAudioConfig({ ...audioConfig, description: new Uint8Array([0x16, 0x90]) }),
    ).toThrow(expect.objectContaining({ code: "PACKAGER_INVALID_CONFIG" }));
    publisher.setVideoConfig(videoConfig);
    expect(() => publisher.pushVideo({ dts: Number.NaN, pts: 0, keyframe: true, data: nal(5) })).toThrow(
      expect.objectContaining({ code: "PACKAGER_INVALID_SAMPLE" }),
    );
    expect(publisher.pushVideo({ dts: 0, pts: 0, keyframe: true, data: nal(5) })).toBe(true);
  });

  test("close() ends every track and unannounces; it is idempotent; a republish takes over", async () => {
    const { origin, publisher } = publisherWithTracks();
    const watcher = origin.consume().announced("live");
    expect((await watcher.next())!.active).toBe(true);
    publisher.setVideoConfig(videoConfig);
    publisher.setAudioConfig(audioConfig);
    const broadcast = origin.consume().consume("live/unit")!;
    const video = broadcast.subscribeTrack("video");
    publisher.pushVideo({ dts: 0, pts: 0, keyframe: true, data: nal(5) });
    publisher.close();
    publisher.close();
    expect(publisher.closed).toBe(true);
    expect(publisher.pushVideo({ dts: 33, pts: 33, keyframe: true, data: nal(5) })).toBe(false);
    publisher.setAudioConfig({ ...audioConfig, channels: 1 }); // ignored after close
    expect(await video.closed).toBeUndefined(); // ended normally
    expect(await (await video.nextGroup())?.readFrame()).toBeDefined();
    expect(await video.nextGroup()).toBeUndefined();
    expect(await watcher.next()).toMatchObject({ path: "live/unit", active: false });
    const again = new BroadcastPublisher(origin, "live/unit");
    expect(await watcher.next()).toMatchObject({ path: "live/unit", active: true });
    again.close();
    watcher.close();
  });

  test("without the reference layout only catalog.json, video and audio exist", () => {
    const { origin, publisher } = publisherWithTracks({ referenceLayout: false });
    publisher.setVideoConfig(videoConfig);
    publisher.setAudioConfig(audioConfig);
    expect(origin.consume().consume("live/unit")!.trackNames().sort()).toEqual([
      "audio",
      "catalog.json",
      "video",
    ]);
    publisher.close();
  });
});
