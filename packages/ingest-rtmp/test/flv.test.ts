import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { metadataCodecProblem } from "../src/flv.ts";
import {
  buildAacRawTag,
  buildAacSequenceHeaderTag,
  buildAvcEndOfSequenceTag,
  buildAvcNaluTag,
  buildAvcSequenceHeaderTag,
  buildEnhancedVideoTag,
  isRtmpError,
  parseAudioTag,
  parseFlvFile,
  parseVideoTag,
  RtmpError,
  VideoPacketType,
} from "../src/index.ts";
import { concat, hex, toHex } from "./helpers/hex.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isRtmpError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return "ok";
}

describe("legacy FLV video and audio tags", () => {
  it("parses AVC sequence header, NALU with negative composition time, and end of sequence", () => {
    expect(parseVideoTag(hex("17 00 000000 01 42c00d"))).toMatchObject({
      type: "sequence-start",
      codec: "h264",
    });
    const nalu = parseVideoTag(hex("27 01 ffffbe 00000002 4101"));
    expect(nalu).toMatchObject({ type: "frame", codec: "h264", keyframe: false, compositionTime: -66 });
    expect(toHex((nalu as { data: Uint8Array }).data)).toBe("000000024101");
    expect(parseVideoTag(hex("17 02 000000"))).toEqual({ type: "sequence-end", codec: "h264" });
    expect(parseVideoTag(hex("52 00"))).toMatchObject({ type: "ignore" });
  });

  it("parses AAC config and raw frames", () => {
    expect(parseAudioTag(hex("af 00 1190"))).toMatchObject({ type: "sequence-start", codec: "aac" });
    expect(toHex((parseAudioTag(hex("af 01 2110")) as { data: Uint8Array }).data)).toBe("2110");
  });

  it("names unsupported codecs in the error", () => {
    expect(code(() => parseVideoTag(hex("24 00")))).toBe(
      "RTMP_UNSUPPORTED_CODEC: video codec id 4 (On2 VP6) is not supported; publish H.264 (codec id 7), or H.265/AV1 with Enhanced RTMP",
    );
    expect(code(() => parseAudioTag(hex("2f 00")))).toMatch(
      /^RTMP_UNSUPPORTED_CODEC: audio format 2 \(MP3\)/,
    );
    expect(code(() => parseVideoTag(hex("17 05 000000")))).toMatch(/^FLV_INVALID: AVC packet type 5/);
    expect(code(() => parseVideoTag(hex("17 01")))).toMatch(/^FLV_INVALID: FLV video tag is truncated/);
  });

  it("builders produce what the parsers read", () => {
    const nalus = [hex("65 8888"), hex("06 05")];
    const tag = buildAvcNaluTag({ keyframe: true, compositionTimeMs: 66, nalus });
    expect(toHex(tag)).toBe(toHex(hex("17 01 000042 00000003 658888 00000002 0605")));
    expect(parseVideoTag(tag)).toMatchObject({ keyframe: true, compositionTime: 66 });
    expect(toHex(buildAvcSequenceHeaderTag(hex("01 42")))).toBe("17000000000142");
    expect(toHex(buildAvcEndOfSequenceTag())).toBe("1702000000");
    expect(toHex(buildAacSequenceHeaderTag(hex("1190")))).toBe("af001190");
    expect(toHex(buildAacRawTag(hex("21")))).toBe("af0121");
  });
});

describe("Enhanced RTMP", () => {
  it("parses hvc1 sequence start, coded frames with composition time, and CodedFramesX", () => {
    expect(parseVideoTag(hex("90 68766331 01020304"))).toMatchObject({
      type: "sequence-start",
      codec: "h265",
    });
    const frame = parseVideoTag(hex("a1 68766331 000021 00000001 02"));
    expect(frame).toMatchObject({ type: "frame", codec: "h265", keyframe: false, compositionTime: 33 });
    expect(toHex((frame as { data: Uint8Array }).data)).toBe("0000000102");
    expect(parseVideoTag(hex("93 68766331 00000001 26"))).toMatchObject({
      type: "frame",
      keyframe: true,
      compositionTime: 0,
    });
    expect(parseVideoTag(hex("92 68766331"))).toEqual({ type: "sequence-end", codec: "h265" });
  });

  it("parses av01 coded frames (no composition time) and avc1", () => {
    const frame = parseVideoTag(hex("91 61763031 12000a0b"));
    expect(frame).toMatchObject({ type: "frame", codec: "av1", keyframe: true, compositionTime: 0 });
    expect(toHex((frame as { data: Uint8Array }).data)).toBe("12000a0b");
    expect(parseVideoTag(hex("91 61766331 000010 00000001 65"))).toMatchObject({
      codec: "h264",
      compositionTime: 16,
    });
  });

  it("unwraps ModEx packets (e.g. a nanosecond timestamp offset)", () => {
    // ModEx: size-1 = 2 (3 bytes of data), then modExType 0 | packetType CodedFrames.
    const tag = hex("97 02 0001f4 01 68766331 000000 00000001 26");
    expect(parseVideoTag(tag)).toMatchObject({ type: "frame", codec: "h265", keyframe: true });
  });

  it("ignores metadata and command frames, refuses multitrack and unknown FourCCs", () => {
    expect(parseVideoTag(hex("94 68766331 02"))).toMatchObject({ type: "ignore" });
    expect(parseVideoTag(hex("d1 68766331 00"))).toMatchObject({ type: "ignore" });
    expect(code(() => parseVideoTag(hex("96 00 68766331")))).toMatch(
      /^RTMP_UNSUPPORTED_CODEC: Enhanced RTMP multitrack/,
    );
    expect(code(() => parseVideoTag(hex("90 76703039 00")))).toMatch(
      /^RTMP_UNSUPPORTED_CODEC: Enhanced RTMP video FourCC 'vp09'/,
    );
    expect(code(() => parseVideoTag(hex("98 68766331")))).toMatch(
      /^FLV_INVALID: Enhanced RTMP video packet type 8 is reserved/,
    );
  });

  it("parses Enhanced audio mp4a and refuses other audio FourCCs", () => {
    expect(parseAudioTag(hex("90 6d703461 1190"))).toMatchObject({ type: "sequence-start", codec: "aac" });
    expect(parseAudioTag(hex("91 6d703461 21"))).toMatchObject({ type: "frame", codec: "aac" });
    expect(code(() => parseAudioTag(hex("91 4f707573 00")))).toMatch(
      /^RTMP_UNSUPPORTED_CODEC: Enhanced RTMP audio FourCC 'Opus'/,
    );
  });

  it("builds enhanced tags", () => {
    expect(
      toHex(
        buildEnhancedVideoTag({
          fourCc: "hvc1",
          packetType: VideoPacketType.CodedFrames,
          keyframe: true,
          compositionTimeMs: 2,
          data: hex("aa"),
        }),
      ),
    ).toBe("916876633100000" + "2aa");
    expect(
      toHex(
        buildEnhancedVideoTag({
          fourCc: "av01",
          packetType: VideoPacketType.SequenceStart,
          keyframe: true,
          data: hex("81"),
        }),
      ),
    ).toBe("906176303181");
  });
});

describe("onMetaData codec checks", () => {
  it("accepts what the ingest carries", () => {
    expect(metadataCodecProblem({ videocodecid: 7, audiocodecid: 10 })).toBeUndefined();
    expect(metadataCodecProblem({ videocodecid: 0x68766331, audiocodecid: 0x6d703461 })).toBeUndefined();
    expect(metadataCodecProblem({ videocodecid: "avc1", audiocodecid: "mp4a" })).toBeUndefined();
    expect(metadataCodecProblem({ width: 320 })).toBeUndefined();
  });

  it("names what it cannot carry", () => {
    expect(metadataCodecProblem({ videocodecid: 4 })).toBe(
      "onMetaData declares video codec 4 (On2 VP6); this server accepts H.264, H.265 and AV1",
    );
    expect(metadataCodecProblem({ videocodecid: 0x76703039 })).toMatch(/'vp09'/);
    expect(metadataCodecProblem({ audiocodecid: 2 })).toMatch(/audio codec 2 \(MP3\)/);
  });
});

describe("FLV files", () => {
  it("reads tags with extended timestamps", () => {
    const file = concat(
      hex("464c56 01 05 00000009"),
      hex("00000000"),
      hex("09 000005 123456 01 000000 1700000000"), // video tag at 0x01123456 ms
      hex("00000010"),
      hex("08 000002 000000 00 000000 af01"),
      hex("0000000d"),
    );
    const tags = parseFlvFile(file);
    expect(tags.map((t) => [t.type, t.timestamp, toHex(t.body)])).toEqual([
      [9, 0x01123456, "1700000000"],
      [8, 0, "af01"],
    ]);
    expect(() => parseFlvFile(hex("000000"))).toThrow(/not an FLV file/);
  });
});

describe("tag parsers on hostile input", () => {
  it("random bytes throw only RtmpError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const parse of [parseVideoTag, parseAudioTag, parseFlvFile]) {
          try {
            parse(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(RtmpError);
          }
        }
      }),
      { numRuns: 20_000 },
    );
  });
});
