import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { createFile, MP4BoxBuffer } from "mp4box";
import { afterAll, describe, expect, test } from "vitest";
import { box, fullBox, u32, u64, writeBoxes, zeros } from "../src/cmaf/box-writer.ts";
import {
  buildFragment,
  buildInitSegment,
  type FragmentSample,
  isPackagerError,
  PackagerError,
  parseFragment,
  parseInitSegment,
} from "../src/index.ts";
import { HEVC_FIXTURE, loadFixture } from "./support/feed-fixture.ts";
import { loadHangContainer } from "./support/load-hang.ts";

const hex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));

function expectPackagerError(run: () => unknown, code?: string): void {
  try {
    run();
  } catch (err) {
    if (!isPackagerError(err)) throw err;
    if (code) expect(err.code).toBe(code);
    return;
  }
  throw new Error("expected a PackagerError");
}

/** Splits a buffer into its top-level boxes. */
function topLevelBoxes(bytes: Uint8Array): { type: string; bytes: Uint8Array }[] {
  const out: { type: string; bytes: Uint8Array }[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < bytes.byteLength; ) {
    const size = view.getUint32(at);
    out.push({
      type: Buffer.from(bytes.subarray(at + 4, at + 8)).toString("latin1"),
      bytes: bytes.subarray(at, at + size),
    });
    at += size;
  }
  return out;
}

const fixture = loadFixture();
const videoInit = buildInitSegment(fixture.video!);
const audioInit = buildInitSegment(fixture.audio!);

describe("parseInitSegment", () => {
  test("reads back what buildInitSegment wrote (H.264, AAC, HEVC, AV1)", () => {
    expect(parseInitSegment(videoInit)).toMatchObject({
      trackId: 1,
      timescale: 90000,
      kind: "video",
      sampleEntry: "avc1",
      codecString: "avc1.64001e",
      width: 640,
      height: 360,
      description: fixture.video!.description,
      defaults: { sampleDescriptionIndex: 1, sampleDuration: 0, sampleSize: 0, sampleFlags: 0 },
    });
    expect(parseInitSegment(audioInit)).toMatchObject({
      trackId: 1,
      timescale: 48000,
      kind: "audio",
      sampleEntry: "mp4a",
      codecString: "mp4a.40.2",
      sampleRate: 48000,
      channels: 2,
      description: fixture.audio!.description,
    });
    const hevc = loadFixture(HEVC_FIXTURE).video!;
    expect(parseInitSegment(buildInitSegment(hevc, { trackId: 3 }))).toMatchObject({
      trackId: 3,
      sampleEntry: "hvc1",
      codecString: "hvc1.1.6.L60.90",
      width: 320,
      height: 180,
    });
    const av1 = buildInitSegment({
      codec: "av1",
      codecString: "",
      description: hex("81 08 0c 00"),
      width: 64,
      height: 48,
    });
    expect(parseInitSegment(av1)).toMatchObject({
      sampleEntry: "av01",
      codecString: "av01.0.08M.08",
      width: 64,
    });
  });

  test("mp4box (the project's MP4 library) reads our init segments the same way", () => {
    for (const [init, codec, timescale] of [
      [videoInit, "avc1.64001e", 90000],
      [audioInit, "mp4a.40.2", 48000],
    ] as const) {
      const file = createFile();
      let info: { tracks: { codec: string; timescale: number; id: number }[] } | undefined;
      file.onReady = (movie) => {
        info = movie as never;
      };
      file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(init.slice().buffer, 0));
      file.flush();
      expect(info?.tracks).toHaveLength(1);
      expect(info!.tracks[0]).toMatchObject({ codec, timescale, id: 1 });
    }
  });

  test("the official @moq/hang CMAF decoder reads our init segments", async () => {
    const { Cmaf } = await loadHangContainer();
    const video = Cmaf.decodeInitSegment(videoInit);
    expect(video.timescale).toBe(90000);
    expect(video.trackId).toBe(1);
    expect([...video.description!]).toEqual([...fixture.video!.description]);
    const audio = Cmaf.decodeInitSegment(audioInit);
    expect(audio.timescale).toBe(48000);
    expect([...audio.description!]).toEqual([...fixture.audio!.description]);
  });

  test("hostile and truncated inputs fail with a PackagerError", () => {
    expectPackagerError(() => parseInitSegment(new Uint8Array()), "PACKAGER_MISSING_BOX");
    expectPackagerError(() => parseInitSegment(hex("00000008 66726565")), "PACKAGER_MISSING_BOX"); // only a free box
    expectPackagerError(() => parseInitSegment(hex("00000004 6d6f6f76")), "PACKAGER_MALFORMED_BOX"); // size < header
    expectPackagerError(() => parseInitSegment(hex("00000100 6d6f6f76")), "PACKAGER_MALFORMED_BOX"); // size > buffer
    for (let cut = 1; cut < videoInit.length; cut += 7)
      expectPackagerError(() => parseInitSegment(videoInit.subarray(0, cut)));
  });

  test("random bytes and mutated init segments never raise anything but PackagerError", () => {
    const inits = [videoInit, audioInit, buildInitSegment(loadFixture(HEVC_FIXTURE).video!)];
    const attempt = (bytes: Uint8Array) => {
      try {
        parseInitSegment(bytes);
      } catch (err) {
        if (!(err instanceof PackagerError)) throw err;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), attempt), { numRuns: 2000 });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: inits.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (which, edits, cut) => {
          const init = inits[which]!;
          const bytes = init.slice(0, Math.max(1, cut % (init.length + 1)));
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          attempt(bytes);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe("parseFragment", () => {
  test("round-trips buildFragment for arbitrary samples", () => {
    const sample = fc.record({
      duration: fc.integer({ min: 0, max: 0xffffffff }),
      data: fc.uint8Array({ maxLength: 40 }),
      keyframe: fc.boolean(),
      compositionOffset: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.maxSafeNat(),
        fc.array(sample, { minLength: 1, maxLength: 20 }),
        (sequenceNumber, trackId, baseMediaDecodeTime, samples: FragmentSample[]) => {
          const bytes = buildFragment({ sequenceNumber, trackId, baseMediaDecodeTime, samples });
          const info = parseFragment(bytes);
          expect(info.sequenceNumber).toBe(sequenceNumber);
          expect(info.trackId).toBe(trackId);
          expect(info.baseMediaDecodeTime).toBe(baseMediaDecodeTime);
          expect(info.duration).toBe(samples.reduce((sum, s) => sum + s.duration, 0));
          const payloadStart = bytes.length - samples.reduce((sum, s) => sum + s.data.length, 0);
          let at = payloadStart;
          info.samples.forEach((parsed, i) => {
            const written = samples[i]!;
            expect(parsed).toMatchObject({
              duration: written.duration,
              size: written.data.length,
              keyframe: written.keyframe,
              compositionOffset: written.compositionOffset,
              dataOffset: at,
            });
            expect([...bytes.subarray(at, at + parsed.size)]).toEqual([...written.data]);
            at += parsed.size;
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  test("hand-framed: tfhd defaults, two truns, implied data offset, tfdt v0, first_sample_flags", () => {
    // moof(mfhd, traf(tfhd with default duration/size/flags, tfdt v0, trun A, trun B)), mdat.
    const bytes = hex(
      golden(
        "00000078 6d6f6f66", //                 moof, 120 bytes
        "00000010 6d666864 00000000 0000002a", // mfhd sequence_number 42
        "00000060 74726166", //                   traf, 96 bytes
        "0000001c 74666864 00020038", //            tfhd: default-base-is-moof | default duration, size, flags
        "00000009", //                                track_ID 9
        "00000400 00000002 01010000", //              default duration 1024, size 2, flags non-sync
        "00000010 74666474 00000000 00001000", //   tfdt v0: 4096
        "00000018 7472756e 00000005", //            trun A, 24 bytes: data-offset | first-sample-flags
        "00000002 00000080 02000000", //              2 samples at offset 128 (moof + 8), first one is sync
        "00000014 7472756e 00000100", //            trun B, 20 bytes: per-sample duration, no data offset
        "00000001 00000800", //                       1 sample lasting 2048, data follows trun A's
        "0000000e 6d646174 1111 2222 3333", //  mdat: three 2-byte samples
      ),
    );
    const info = parseFragment(bytes);
    expect(info).toMatchObject({
      sequenceNumber: 42,
      trackId: 9,
      baseMediaDecodeTime: 4096,
      duration: 1024 * 2 + 2048,
    });
    expect(info.samples).toEqual([
      { duration: 1024, size: 2, keyframe: true, compositionOffset: 0, flags: 0x02000000, dataOffset: 128 },
      { duration: 1024, size: 2, keyframe: false, compositionOffset: 0, flags: 0x01010000, dataOffset: 130 },
      { duration: 2048, size: 2, keyframe: false, compositionOffset: 0, flags: 0x01010000, dataOffset: 132 },
    ]);
  });

  test("trex defaults apply when tfhd and trun carry nothing; a styp prefix is skipped", () => {
    const fragment = writeBoxes(
      box("styp", u32(0x6d736468), u32(0)), // brand msdh
      box(
        "moof",
        fullBox("mfhd", 0, 0, u32(5)),
        box(
          "traf",
          fullBox("tfhd", 0, 0x020000, u32(1)),
          fullBox("tfdt", 1, 0, u64(2 ** 40)),
          fullBox("trun", 0, 0x000001, u32(3), u32(8 + 16 + 8 + 16 + 20 + 20 + 8)),
        ),
      ),
      box("mdat", zeros(3 * 5)),
    );
    const defaults = { sampleDescriptionIndex: 1, sampleDuration: 960, sampleSize: 5, sampleFlags: 0 };
    const info = parseFragment(fragment, { defaults });
    expect(info.baseMediaDecodeTime).toBe(2 ** 40);
    expect(info.samples.map((s) => [s.duration, s.size, s.keyframe])).toEqual([
      [960, 5, true],
      [960, 5, true],
      [960, 5, true],
    ]);
    // styp (16 bytes), then the trun's data_offset from the moof start.
    expect(info.samples[0]!.dataOffset).toBe(16 + 8 + 16 + 8 + 16 + 20 + 20 + 8);
  });

  test("a multi-track moof: the first traf by default, or the one asked for", () => {
    const traf = (trackId: number, size: number) =>
      box("traf", fullBox("tfhd", 0, 0x000010, u32(trackId), u32(size)), fullBox("trun", 0, 0, u32(1)));
    const fragment = writeBoxes(
      box("moof", fullBox("mfhd", 0, 0, u32(1)), traf(1, 4), traf(2, 6)),
      box("mdat", zeros(10)),
    );
    // No data offsets: the first traf's data starts at the moof, the second's right after it.
    expect(parseFragment(fragment).samples[0]).toMatchObject({ size: 4, dataOffset: 0 });
    expect(parseFragment(fragment, { trackId: 2 }).samples[0]).toMatchObject({ size: 6, dataOffset: 4 });
    expectPackagerError(() => parseFragment(fragment, { trackId: 3 }), "PACKAGER_MISSING_BOX");
  });

  test("the official @moq/hang decoder reads our fragments: timestamps, keyframes, payload", async () => {
    const { Cmaf } = await loadHangContainer();
    const init = Cmaf.decodeInitSegment(videoInit);
    const data = new Uint8Array([0, 0, 0, 2, 0x65, 0x88]);
    const fragment = buildFragment({
      sequenceNumber: 3,
      trackId: 1,
      baseMediaDecodeTime: 180000,
      samples: [{ duration: 3000, data, keyframe: false, compositionOffset: 6000 }],
    });
    const [sample] = Cmaf.decodeDataSegment(fragment, init);
    expect(sample!.timestamp).toBe(Math.round(((180000 + 6000) * 1e6) / 90000));
    expect(sample!.keyframe).toBe(false);
    expect(sample!.duration).toBe(Math.round((3000 * 1e6) / 90000));
    expect([...sample!.data]).toEqual([...data]);
  });

  test("hostile and malformed fragments fail with the right PackagerError", () => {
    const good = buildFragment({
      sequenceNumber: 1,
      trackId: 1,
      baseMediaDecodeTime: 0,
      samples: [{ duration: 1, data: new Uint8Array(4), keyframe: true }],
    });
    expectPackagerError(() => parseFragment(good.subarray(0, good.length - 1)), "PACKAGER_MALFORMED_BOX");
    expectPackagerError(() => parseFragment(good.subarray(0, 104)), "PACKAGER_MISSING_BOX"); // no mdat
    // A sample_count of 2^32 - 1 with no room for the records.
    const count = good.slice();
    new DataView(count.buffer).setUint32(8 + 16 + 8 + 16 + 20 + 12, 0xffffffff);
    expectPackagerError(() => parseFragment(count), "PACKAGER_LIMIT_EXCEEDED");
    // A sample size pointing past the end of the buffer.
    const size = good.slice();
    new DataView(size.buffer).setUint32(8 + 16 + 8 + 16 + 20 + 20 + 4, 1000);
    expectPackagerError(() => parseFragment(size), "PACKAGER_MALFORMED_BOX");
    // A 64-bit tfdt above 2^53.
    const tfdt = good.slice();
    new DataView(tfdt.buffer).setUint32(8 + 16 + 8 + 16 + 12, 0xffffffff);
    expectPackagerError(() => parseFragment(tfdt), "PACKAGER_LIMIT_EXCEEDED");
    // A largesize box header claiming more than the buffer.
    expectPackagerError(
      () => parseFragment(hex("00000001 6d6f6f66 00000001 00000000")),
      "PACKAGER_MALFORMED_BOX",
    );
  });

  test("random bytes and mutated fragments never raise anything but PackagerError", () => {
    const valid = buildFragment({
      sequenceNumber: 9,
      trackId: 1,
      baseMediaDecodeTime: 123456,
      samples: [
        { duration: 3000, data: new Uint8Array(10).fill(7), keyframe: true, compositionOffset: 3000 },
        { duration: 3000, data: new Uint8Array(3).fill(8), keyframe: false, compositionOffset: -3000 },
      ],
    });
    const attempt = (bytes: Uint8Array) => {
      try {
        parseFragment(bytes);
      } catch (err) {
        if (!(err instanceof PackagerError)) throw err;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), attempt), { numRuns: 3000 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.nat(valid.length),
        (edits, cut) => {
          const bytes = valid.slice(0, Math.max(cut, 1));
          for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
          attempt(bytes);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe("parseInitSegment and parseFragment on ffmpeg's fragmented MP4 (a real peer)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lvqr-cmaf-parse-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    ["video", ["-map", "0:v", "-c", "copy"], 192, 90000],
    ["audio", ["-map", "0:a", "-c", "copy"], 301, 48000],
  ] as const)("%s", (kind, args, sampleCount, timescale) => {
    const output = path.join(dir, `${kind}.mp4`);
    execFileSync(
      "ffmpeg",
      [
        ...["-v", "error", "-y", "-i", fixtureFile()],
        ...args,
        ...["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000"],
        ...(kind === "video" ? ["-video_track_timescale", String(timescale)] : []),
        output,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const boxes = topLevelBoxes(new Uint8Array(readFileSync(output)));
    const initEnd = boxes.findIndex((b) => b.type === "moof");
    const init = parseInitSegment(Buffer.concat(boxes.slice(0, initEnd).map((b) => b.bytes)));
    expect(init.kind).toBe(kind);
    expect(init.timescale).toBe(timescale);
    expect(init.codecString).toBe(kind === "video" ? "avc1.64001e" : "mp4a.40.2");
    let samples = 0;
    let keyframes = 0;
    let expectedTime: number | undefined;
    for (let i = initEnd; i < boxes.length; i++) {
      if (boxes[i]!.type !== "moof") continue;
      const fragment = parseFragment(Buffer.concat([boxes[i]!.bytes, boxes[i + 1]!.bytes]), {
        defaults: init.defaults!,
      });
      if (expectedTime !== undefined) expect(fragment.baseMediaDecodeTime).toBe(expectedTime);
      expectedTime = fragment.baseMediaDecodeTime + fragment.duration;
      samples += fragment.samples.length;
      for (const sample of fragment.samples) {
        expect(sample.duration).toBeGreaterThan(0);
        if (sample.keyframe) keyframes++;
      }
    }
    expect(samples).toBe(sampleCount);
    // Video: one IDR per 30-frame GOP; audio: every sample is a sync sample.
    expect(keyframes).toBe(kind === "video" ? 7 : sampleCount);
  });
});

function fixtureFile(): string {
  return path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "av.mp4");
}

function golden(...lines: string[]): string {
  return lines.join("");
}
