import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  isPackagerError,
  PackagerError,
  parseAudioSpecificConfig,
  parseAv1CodecConfig,
  parseAvcDecoderConfig,
  parseHevcDecoderConfig,
  resolveTrackConfig,
} from "../src/index.ts";
import { HEVC_FIXTURE, loadFixture } from "./support/feed-fixture.ts";

const hex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));

function expectPackagerError(run: () => unknown, code?: string): void {
  try {
    run();
  } catch (err) {
    expect(isPackagerError(err)).toBe(true);
    if (code) expect((err as PackagerError).code).toBe(code);
    return;
  }
  throw new Error("expected a PackagerError");
}

/** An hvcC record with the given general_* fields and one VPS/SPS/PPS array of dummy units. */
function hvcc(profileByte: number, compatibility: number, constraints: number[], level: number): Uint8Array {
  const out = [
    0x01, // configurationVersion
    profileByte, // profile_space(2) tier(1) profile_idc(5)
    (compatibility >>> 24) & 0xff,
    (compatibility >>> 16) & 0xff,
    (compatibility >>> 8) & 0xff,
    compatibility & 0xff,
    ...constraints, // 6 constraint indicator bytes
    level, // general_level_idc
    0xf0,
    0x00, // reserved '1111' + min_spatial_segmentation_idc 0
    0xfc, // reserved + parallelismType 0
    0xfd, // reserved + chroma_format_idc 1
    0xf8, // reserved + bit_depth_luma_minus8 0
    0xf8, // reserved + bit_depth_chroma_minus8 0
    0x00,
    0x00, // avgFrameRate 0
    0x0f, // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, lengthSizeMinusOne 3
    0x01, // numOfArrays
    0xa0, // array_completeness 1, NAL_unit_type 32 (VPS)
    0x00,
    0x01, // numNalus 1
    0x00,
    0x02, // nalUnitLength 2
    0x40,
    0x01, // VPS NAL header
  ];
  return new Uint8Array(out);
}

describe("avcC", () => {
  test("the fixture's record gives the codec string ffmpeg and mp4box report", () => {
    const fixture = loadFixture();
    const config = parseAvcDecoderConfig(fixture.video!.description);
    expect(config.codecString).toBe("avc1.64001e");
    expect(config.codecString).toBe(fixture.video!.codecString); // mp4box's getCodec()
    expect(config.nalLengthSize).toBe(4);
    expect(config.sps).toHaveLength(1);
    expect(config.pps).toHaveLength(1);
  });

  test("a Baseline record with 2-byte NAL lengths keeps its length size", () => {
    const record = hex(
      "01 42 e0 1f" + // version 1, Baseline, constraint_set0/1/2, level 3.1
        "fd" + // reserved 111111 + lengthSizeMinusOne 1
        "e1 0004 67420a1f" + // one SPS of 4 bytes
        "01 0002 68ce", // one PPS of 2 bytes
    );
    const config = parseAvcDecoderConfig(record);
    expect(config.codecString).toBe("avc1.42e01f");
    expect(config.nalLengthSize).toBe(2);
    expect([...config.sps[0]!]).toEqual([0x67, 0x42, 0x0a, 0x1f]);
  });

  test("bad records are rejected with PACKAGER_INVALID_CONFIG or PACKAGER_MALFORMED_BOX", () => {
    expectPackagerError(
      () => parseAvcDecoderConfig(hex("02 42 e0 1f ff e1 0001 67 01 0001 68")),
      "PACKAGER_INVALID_CONFIG",
    );
    expectPackagerError(
      () => parseAvcDecoderConfig(hex("01 42 e0 1f fe e1 0001 67 01 0001 68")),
      "PACKAGER_INVALID_CONFIG",
    );
    expectPackagerError(
      () => parseAvcDecoderConfig(hex("01 42 e0 1f ff e0 01 0001 68")),
      "PACKAGER_INVALID_CONFIG",
    );
    expectPackagerError(
      () => parseAvcDecoderConfig(hex("01 42 e0 1f ff e1 0009 67")),
      "PACKAGER_MALFORMED_BOX",
    );
    expectPackagerError(() => parseAvcDecoderConfig(new Uint8Array()), "PACKAGER_MALFORMED_BOX");
  });
});

describe("hvcC", () => {
  test("Annex E codec strings", () => {
    // Main, level 3.1: compatibility flags 1 and 2 (0x60000000) reverse to 0x6.
    expect(parseHevcDecoderConfig(hvcc(0x01, 0x60000000, [0xb0, 0, 0, 0, 0, 0], 93)).codecString).toBe(
      "hvc1.1.6.L93.B0",
    );
    // Main 10, High tier, level 5.1: flag 2 (0x20000000) reverses to 0x4.
    expect(parseHevcDecoderConfig(hvcc(0x22, 0x20000000, [0xb0, 0, 0, 0, 0, 0], 153)).codecString).toBe(
      "hvc1.2.4.H153.B0",
    );
    // profile_space 1 (A), idc 4, flags reversing to 0x41, two constraint bytes.
    expect(parseHevcDecoderConfig(hvcc(0x64, 0x82000000, [0xb0, 0x23, 0, 0, 0, 0], 120)).codecString).toBe(
      "hvc1.A4.41.H120.B0.23",
    );
    // All constraint bytes zero: none listed.
    expect(parseHevcDecoderConfig(hvcc(0x01, 0x60000000, [0, 0, 0, 0, 0, 0], 90)).codecString).toBe(
      "hvc1.1.6.L90",
    );
  });

  test("the x265 fixture's record matches mp4box's codec string", () => {
    const fixture = loadFixture(HEVC_FIXTURE);
    const config = parseHevcDecoderConfig(fixture.video!.description);
    expect(config.codecString).toBe(fixture.video!.codecString);
    expect(config.codecString).toMatch(/^hvc1\.1\.6\.L\d+/);
    // VPS, SPS, PPS (x265 adds a prefix SEI array after them).
    expect(config.arrays.map((array) => array.nalUnitType).slice(0, 3)).toEqual([32, 33, 34]);
    expect(config.nalLengthSize).toBe(4);
  });

  test("truncated or hostile records fail with PackagerError", () => {
    const good = hvcc(0x01, 0x60000000, [0xb0, 0, 0, 0, 0, 0], 93);
    for (let cut = 0; cut < good.length; cut++)
      expectPackagerError(() => parseHevcDecoderConfig(good.subarray(0, cut)));
    const huge = good.slice();
    huge[good.length - 5] = 0xff; // numNalus 0xff01 with 4 bytes left
    expectPackagerError(() => parseHevcDecoderConfig(huge), "PACKAGER_MALFORMED_BOX");
  });
});

describe("av1C", () => {
  test("codec strings", () => {
    expect(parseAv1CodecConfig(hex("81 08 0c 00")).codecString).toBe("av01.0.08M.08");
    expect(parseAv1CodecConfig(hex("81 0d c0 00")).codecString).toBe("av01.0.13H.10");
    expect(parseAv1CodecConfig(hex("81 28 e0 00")).codecString).toBe("av01.1.08H.12");
    expectPackagerError(() => parseAv1CodecConfig(hex("01 08 0c 00")), "PACKAGER_INVALID_CONFIG");
    expectPackagerError(() => parseAv1CodecConfig(hex("81 08")), "PACKAGER_MALFORMED_BOX");
  });
});

describe("AudioSpecificConfig", () => {
  test.each([
    [
      "11 90",
      { objectType: 2, sampleRate: 48000, channels: 2, samplesPerFrame: 1024, codecString: "mp4a.40.2" },
    ],
    [
      "12 10",
      { objectType: 2, sampleRate: 44100, channels: 2, samplesPerFrame: 1024, codecString: "mp4a.40.2" },
    ],
    [
      "11 94",
      { objectType: 2, sampleRate: 48000, channels: 2, samplesPerFrame: 960, codecString: "mp4a.40.2" },
    ],
    // HE-AAC with explicit SBR: core 24 kHz LC, extension 48 kHz; the core rate is the timescale.
    [
      "2b 11 88 00",
      { objectType: 5, coreObjectType: 2, sampleRate: 24000, channels: 2, codecString: "mp4a.40.5" },
    ],
    // HE-AACv2: mono core decodes to stereo.
    [
      "eb 09 88 00",
      { objectType: 29, coreObjectType: 2, sampleRate: 24000, channels: 2, codecString: "mp4a.40.29" },
    ],
    // Escaped sampling frequency (40000 Hz, not in the table).
    ["17 80 4e 20 10", { objectType: 2, sampleRate: 40000, channels: 2 }],
    // Escaped object type 42 (USAC).
    ["f9 46 40", { objectType: 42, sampleRate: 48000, channels: 2, codecString: "mp4a.40.42" }],
    // Channel configuration 0: a program config element defines the layout.
    ["11 80", { objectType: 2, channels: 0 }],
    // The fixture's 5-byte ASC with the backward-compatible SBR sync extension.
    ["11 90 56 e5 00", { objectType: 2, sampleRate: 48000, channels: 2, codecString: "mp4a.40.2" }],
  ])("%s", (bytes, expected) => {
    expect(parseAudioSpecificConfig(hex(bytes))).toMatchObject(expected);
  });

  test("bad configs are rejected", () => {
    expectPackagerError(() => parseAudioSpecificConfig(hex("11")), "PACKAGER_INVALID_CONFIG");
    expectPackagerError(() => parseAudioSpecificConfig(hex("16 90")), "PACKAGER_INVALID_CONFIG"); // sfi 13 is reserved
    expectPackagerError(() => parseAudioSpecificConfig(hex("01 90")), "PACKAGER_INVALID_CONFIG"); // object type 0
    expectPackagerError(() => parseAudioSpecificConfig(new Uint8Array()), "PACKAGER_INVALID_CONFIG");
  });

  test("resolveTrackConfig takes rate and channels from the ASC, and the config's channels for a PCE", () => {
    const lying = resolveTrackConfig({
      codec: "aac",
      codecString: "mp4a.40.2",
      description: hex("11 90"),
      sampleRate: 44100,
      channels: 1,
    });
    expect(lying).toMatchObject({ sampleRate: 48000, timescale: 48000, channels: 2, samplesPerFrame: 1024 });
    const pce = resolveTrackConfig({
      codec: "aac",
      codecString: "mp4a.40.2",
      description: hex("11 80"),
      sampleRate: 48000,
      channels: 6,
    });
    expect(pce).toMatchObject({ channels: 6 });
  });
});

describe("hostile bytes", () => {
  test("config parsers throw nothing but PackagerError", () => {
    const parsers = [
      parseAvcDecoderConfig,
      parseHevcDecoderConfig,
      parseAv1CodecConfig,
      parseAudioSpecificConfig,
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 3 }), (bytes, which) => {
        try {
          parsers[which]!(bytes);
        } catch (err) {
          if (!(err instanceof PackagerError)) throw err;
        }
      }),
      { numRuns: 4000 },
    );
  });
});
