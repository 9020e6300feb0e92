import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findAv1SequenceHeader, parseAv1SequenceHeader } from "../src/codec/av1.ts";
import {
  av1CodecString,
  avcCodecString,
  buildAudioSpecificConfig,
  buildAvcDecoderConfigurationRecord,
  hevcCodecString,
  parseAudioSpecificConfig,
  parseAv1CodecConfigurationRecord,
  parseAvcDecoderConfigurationRecord,
  parseAvcSps,
  parseHevcDecoderConfigurationRecord,
  parseHevcSps,
  RtmpError,
} from "../src/index.ts";
import { audioConfigFromRecord, videoConfigFromRecord } from "../src/session.ts";
import { bits, expected, fixture } from "./helpers/fixtures.ts";
import { hex, toHex } from "./helpers/hex.ts";

describe("avcC and H.264 SPS (real x264 output)", () => {
  it("parses the baseline avcC field by field", () => {
    const avcC = fixture("avc-baseline-320x240.avcC");
    expect(toHex(avcC.subarray(0, 9))).toBe(
      toHex(
        hex(`
          01       # configurationVersion
          42       # AVCProfileIndication 66 (Baseline)
          c0       # profile_compatibility (constraint_set0/1: Constrained Baseline)
          0d       # AVCLevelIndication 13 (1.3)
          ff       # 111111 + lengthSizeMinusOne 3
          e1       # 111 + numOfSequenceParameterSets 1
          0016     # SPS length 22
          67       # SPS NAL header (type 7)
        `),
      ),
    );
    const cfg = parseAvcDecoderConfigurationRecord(avcC);
    expect(cfg).toMatchObject({ profile: 66, compatibility: 0xc0, level: 13, nalLengthSize: 4 });
    expect(cfg.sps).toHaveLength(1);
    expect(cfg.pps).toHaveLength(1);
    expect(cfg.sps[0]!.byteLength).toBe(22);
    expect(toHex(cfg.pps[0]!)).toBe("68ce0fc8");
  });

  const cases = [
    ["avc-baseline-320x240", 66, "avc1.42c00d"],
    ["avc-high-1920x1080", 100, "avc1.640028"],
    ["avc-high444-176x144", 244, "avc1.f4000b"],
  ] as const;
  for (const [name, profile, codecString] of cases) {
    it(`${name}: size, profile, level and codec string match ffprobe`, () => {
      const avcC = fixture(`${name}.avcC`);
      const cfg = parseAvcDecoderConfigurationRecord(avcC);
      const sps = parseAvcSps(cfg.sps[0]!);
      const probe = expected[name]!;
      expect([sps.width, sps.height]).toEqual([probe.width, probe.height]);
      expect(sps.profileIdc).toBe(profile);
      expect(sps.levelIdc).toBe(probe.level);
      expect(avcCodecString(cfg.profile, cfg.compatibility, cfg.level)).toBe(codecString);
      const config = videoConfigFromRecord("h264", avcC);
      expect(config).toMatchObject({
        kind: "video",
        codec: "h264",
        codecString,
        width: probe.width,
        height: probe.height,
        nalLengthSize: 4,
      });
      expect(config.description).toBe(avcC);
    });
  }

  it("applies frame cropping (1920x1080 is coded as 1920x1088)", () => {
    const sps = parseAvcSps(parseAvcDecoderConfigurationRecord(fixture("avc-high-1920x1080.avcC")).sps[0]!);
    expect(sps.height).toBe(1080);
    expect(sps.frameMbsOnly).toBe(true);
  });

  it("parses 4:4:4 with its chroma format", () => {
    const sps = parseAvcSps(parseAvcDecoderConfigurationRecord(fixture("avc-high444-176x144.avcC")).sps[0]!);
    expect(sps.chromaFormatIdc).toBe(3);
  });

  it("rebuilds the same avcC from its parameter sets", () => {
    const avcC = fixture("avc-baseline-320x240.avcC");
    const cfg = parseAvcDecoderConfigurationRecord(avcC);
    expect(toHex(buildAvcDecoderConfigurationRecord(cfg.sps, cfg.pps))).toBe(toHex(avcC));
  });

  it("refuses broken records with CODEC_CONFIG_INVALID", () => {
    const avcC = fixture("avc-baseline-320x240.avcC");
    for (let n = 0; n < avcC.byteLength; n++) {
      expect(() => parseAvcDecoderConfigurationRecord(avcC.subarray(0, n))).toThrow(RtmpError);
    }
    expect(() => parseAvcDecoderConfigurationRecord(hex("02 42c00d ff e0 00"))).toThrow(
      /configurationVersion/,
    );
    expect(() => parseAvcDecoderConfigurationRecord(hex("01 42c00d ff e0 00"))).toThrow(/no SPS/);
    expect(() => parseAvcSps(hex("68 42 c0 0d"))).toThrow(/NAL type 8/);
  });
});

describe("hvcC and H.265 SPS (real x265 output)", () => {
  it("parses size, codec string and parameter sets", () => {
    const hvcC = fixture("hevc-main-640x360.hvcC");
    const cfg = parseHevcDecoderConfigurationRecord(hvcC);
    expect(cfg).toMatchObject({
      profileSpace: 0,
      tierFlag: false,
      profileIdc: 1,
      profileCompatibility: 0x60000000,
      levelIdc: 63,
      nalLengthSize: 4,
      chromaFormat: 1,
    });
    expect(cfg.arrays.map((a) => a.nalType)).toEqual(expect.arrayContaining([32, 33, 34]));
    expect(hevcCodecString(cfg)).toBe("hvc1.1.6.L63.90");
    const sps = parseHevcSps(cfg.arrays.find((a) => a.nalType === 33)!.nalus[0]!);
    const probe = expected["hevc-main-640x360"]!;
    expect([sps.width, sps.height]).toEqual([probe.width, probe.height]);
    expect(probe.level).toBe(cfg.levelIdc);
    expect(videoConfigFromRecord("h265", hvcC)).toMatchObject({
      codec: "h265",
      codecString: "hvc1.1.6.L63.90",
      width: 640,
      height: 360,
      nalLengthSize: 4,
    });
  });

  it("writes profile space, high tier and all-zero constraints per ISO/IEC 14496-15 E.3", () => {
    const cfg = parseHevcDecoderConfigurationRecord(fixture("hevc-main-640x360.hvcC"));
    expect(
      hevcCodecString({
        ...cfg,
        profileSpace: 1,
        tierFlag: true,
        profileIdc: 2,
        profileCompatibility: 0x20000000,
        constraintIndicator: new Uint8Array(6),
        levelIdc: 120,
      }),
    ).toBe("hvc1.A2.4.H120");
  });
});

describe("av1C (real libaom output)", () => {
  it("parses the record and the sequence header size", () => {
    const av1C = fixture("av1-main-320x240.av1C");
    const cfg = parseAv1CodecConfigurationRecord(av1C);
    expect(cfg).toMatchObject({
      seqProfile: 0,
      seqLevelIdx0: 0,
      seqTier0: 0,
      bitDepth: 8,
      chromaSubsamplingX: true,
      chromaSubsamplingY: true,
    });
    expect(av1CodecString(cfg)).toBe("av01.0.00M.08");
    const header = parseAv1SequenceHeader(findAv1SequenceHeader(cfg.configObus)!);
    const probe = expected["av1-main-320x240"]!;
    expect([header.width, header.height]).toEqual([probe.width, probe.height]);
    expect(videoConfigFromRecord("av1", av1C)).toMatchObject({
      codec: "av1",
      codecString: "av01.0.00M.08",
      width: 320,
      height: 240,
    });
  });
});

describe("AudioSpecificConfig", () => {
  for (const name of ["aac-lc-44100-mono", "aac-lc-48000-stereo"]) {
    it(`${name} (real ffmpeg AAC) matches ffprobe`, () => {
      const asc = fixture(`${name}.asc`);
      const probe = expected[name]!;
      const config = audioConfigFromRecord(asc);
      expect(config).toMatchObject({
        kind: "audio",
        codec: "aac",
        codecString: "mp4a.40.2",
        objectType: 2,
        sampleRate: Number(probe.sample_rate),
        channels: probe.channels,
        samplesPerFrame: 1024,
      });
      expect(config.description).toBe(asc);
    });
  }

  it("parses explicit HE-AAC signalling (object type 5 over AAC-LC)", () => {
    // AOT 5, 24 kHz core (index 6), stereo, SBR at 48 kHz (index 3), core AOT 2, GASpecificConfig.
    const asc = parseAudioSpecificConfig(bits("00101 0110 0010 0011 00010 0 0 0"));
    expect(asc).toMatchObject({
      objectType: 5,
      sampleRate: 24000,
      channels: 2,
      extensionSampleRate: 48000,
      coreObjectType: 2,
    });
  });

  it("parses an escaped object type, an explicit frequency and the 960-sample frame length", () => {
    const asc = parseAudioSpecificConfig(
      bits(`11111 000001 1111 ${(22222).toString(2).padStart(24, "0")} 0001 0`),
    );
    expect(asc).toMatchObject({ objectType: 33, sampleRate: 22222, channels: 1 });
    const lc960 = parseAudioSpecificConfig(bits("00010 0011 0010 1 0 0"));
    expect(lc960.samplesPerFrame).toBe(960);
  });

  it("counts channels from a program config element (channel configuration 0)", () => {
    // PCE: tag 0, object type 1, index 3; 1 front CPE + 1 front SCE, 0 side, 1 back CPE, 1 LFE.
    const pce = "0000 01 0011 0010 0000 0001 01 000 0000 0 0 0  1 0000  0 0001  1 0010  0000 ";
    const asc = parseAudioSpecificConfig(bits(`00010 0011 0000 0 0 0 ${pce}`));
    expect(asc.channels).toBe(6);
  });

  it("builds what it parses", () => {
    const asc = buildAudioSpecificConfig({ sampleRate: 48000, channels: 2 });
    expect(toHex(asc)).toBe("1190");
    expect(parseAudioSpecificConfig(asc)).toMatchObject({ objectType: 2, sampleRate: 48000, channels: 2 });
  });

  it("refuses reserved indexes and missing channels", () => {
    expect(() => parseAudioSpecificConfig(bits("00010 1101 0010 000"))).toThrow(/reserved/);
    expect(() => parseAudioSpecificConfig(hex("12"))).toThrow(/too short/);
  });
});

describe("codec parsers on hostile input", () => {
  const parsers: [string, (b: Uint8Array) => unknown][] = [
    ["avcC", parseAvcDecoderConfigurationRecord],
    ["H.264 SPS", parseAvcSps],
    ["hvcC", parseHevcDecoderConfigurationRecord],
    ["H.265 SPS", parseHevcSps],
    ["av1C", (b) => videoConfigFromRecord("av1", b)],
    ["AV1 sequence header", parseAv1SequenceHeader],
    ["ASC", parseAudioSpecificConfig],
  ];
  const sps = parseAvcDecoderConfigurationRecord(fixture("avc-high-1920x1080.avcC")).sps[0]!;
  for (const [name, parse] of parsers) {
    it(`${name}: random bytes and mutated SPS bytes throw only RtmpError`, () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 96 }),
            fc
              .tuple(fc.nat(sps.byteLength), fc.uint8Array({ maxLength: 40 }))
              .map(([n, tail]) => Uint8Array.of(...sps.subarray(0, n), ...tail)),
          ),
          (bytes) => {
            try {
              parse(bytes);
            } catch (err) {
              expect(err).toBeInstanceOf(RtmpError);
            }
          },
        ),
        { numRuns: 10_000 },
      );
    });
  }
});
