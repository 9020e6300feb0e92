/**
 * Golden bytes for the CMAF writers, annotated field by field (ISO/IEC 14496-12 and 14496-14).
 * Any change to the layout has to be made here on purpose.
 */
import { describe, expect, test } from "vitest";
import { buildFragment, buildInitSegment } from "../src/index.ts";

/** Joins annotated hex lines (whitespace ignored). */
function golden(...lines: string[]): string {
  return lines.join("").replace(/\s+/g, "");
}

const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("golden bytes", () => {
  test("fragment: one keyframe sample, 64-bit decode time, positive composition offset", () => {
    const fragment = buildFragment({
      sequenceNumber: 7,
      trackId: 1,
      baseMediaDecodeTime: 0x1_0000_0002,
      samples: [
        { duration: 3000, data: new Uint8Array([0xaa, 0xbb, 0xcc]), keyframe: true, compositionOffset: 6000 },
      ],
    });
    expect(toHex(fragment)).toBe(
      golden(
        "00000068 6d6f6f66", //                     moof, 104 bytes
        "00000010 6d666864", //                       mfhd, 16 bytes
        "00000000", //                                  version 0, flags 0
        "00000007", //                                  sequence_number 7
        "00000050 74726166", //                       traf, 80 bytes
        "00000010 74666864", //                         tfhd, 16 bytes
        "00020000", //                                    version 0, flags default-base-is-moof
        "00000001", //                                    track_ID 1
        "00000014 74666474", //                         tfdt, 20 bytes
        "01000000", //                                    version 1 (64-bit), flags 0
        "00000001 00000002", //                           baseMediaDecodeTime 2^32 + 2
        "00000024 7472756e", //                         trun, 36 bytes
        "00000f01", //                                    version 0; flags data-offset | duration | size | flags | cto
        "00000001", //                                    sample_count 1
        "00000070", //                                    data_offset 112 = moof 104 + mdat header 8
        "00000bb8", //                                    sample_duration 3000
        "00000003", //                                    sample_size 3
        "02000000", //                                    sample_flags: depends_on 2 (sync)
        "00001770", //                                    sample_composition_time_offset 6000
        "0000000b 6d646174", //                     mdat, 11 bytes
        "aabbcc", //                                  sample data, first byte of the payload
      ),
    );
  });

  test("fragment: a delta sample with a negative composition offset uses trun version 1", () => {
    const fragment = buildFragment({
      sequenceNumber: 1,
      trackId: 2,
      baseMediaDecodeTime: 90000,
      samples: [
        { duration: 1500, data: new Uint8Array([1]), keyframe: false, compositionOffset: -3000 },
        { duration: 1500, data: new Uint8Array([2, 3]), keyframe: false },
      ],
    });
    expect(toHex(fragment)).toBe(
      golden(
        "00000078 6d6f6f66", //                     moof, 120 bytes
        "00000010 6d666864 00000000 00000001", //     mfhd: sequence_number 1
        "00000060 74726166", //                       traf, 96 bytes
        "00000010 74666864 00020000 00000002", //       tfhd: default-base-is-moof, track_ID 2
        "00000014 74666474 01000000 00000000 00015f90", // tfdt v1: 90000
        "00000034 7472756e", //                         trun, 52 bytes
        "01000f01", //                                    version 1 (signed offsets), same flags
        "00000002", //                                    sample_count 2
        "00000080", //                                    data_offset 128 = 120 + 8
        "000005dc 00000001 01010000 fffff448", //         1500, 1 byte, non-sync (depends_on 1), cto -3000
        "000005dc 00000002 01010000 00000000", //         1500, 2 bytes, non-sync, cto 0
        "0000000b 6d646174 01 0203", //             mdat: the two samples back to back
      ),
    );
  });

  test("AAC-LC 48 kHz stereo init segment", () => {
    const init = buildInitSegment({
      codec: "aac",
      codecString: "mp4a.40.2",
      description: new Uint8Array([0x11, 0x90]),
      sampleRate: 48000,
      channels: 2,
    });
    const matrix = "00010000 00000000 00000000 00000000 00010000 00000000 00000000 00000000 40000000";
    expect(toHex(init)).toBe(
      golden(
        "00000020 66747970", //                     ftyp, 32 bytes
        "69736f36 00000000", //                       major brand iso6, minor version 0
        "69736f36 636d6663 69736f6d 6d703431", //     compatible: iso6 cmfc isom mp41
        "00000236 6d6f6f76", //                     moov, 566 bytes
        "0000006c 6d766864 00000000", //              mvhd, 108 bytes, version 0
        "00000000 00000000", //                         creation / modification time 0
        "0000bb80 00000000", //                         timescale 48000, duration 0 (fragmented)
        "00010000 0100 0000 00000000 00000000", //      rate 1.0, volume 1.0, reserved
        matrix, //                                      unity matrix
        "00000000 00000000 00000000 00000000 00000000 00000000", // pre_defined
        "00000002", //                                  next_track_ID 2
        "0000019a 7472616b", //                       trak, 410 bytes
        "0000005c 746b6864 00000003", //                tkhd, 92 bytes, flags enabled | in_movie
        "00000000 00000000", //                           creation / modification time
        "00000001 00000000 00000000", //                  track_ID 1, reserved, duration 0
        "00000000 00000000", //                           reserved
        "0000 0000 0100 0000", //                         layer 0, alternate_group 0, volume 1.0, reserved
        matrix, //                                        unity matrix
        "00000000 00000000", //                           width 0, height 0 (audio)
        "00000136 6d646961", //                         mdia, 310 bytes
        "00000020 6d646864 00000000", //                  mdhd, 32 bytes, version 0
        "00000000 00000000 0000bb80 00000000", //           times, timescale 48000, duration 0
        "55c4 0000", //                                     language "und", pre_defined
        "0000002b 68646c72 00000000", //                  hdlr, 43 bytes
        "00000000 736f756e", //                             pre_defined, handler_type soun
        "00000000 00000000 00000000", //                    reserved
        "4c56515220417564696f00", //                        name "LVQR Audio\0"
        "000000e3 6d696e66", //                           minf, 227 bytes
        "00000010 736d6864 00000000 0000 0000", //          smhd: balance 0, reserved
        "00000024 64696e66", //                             dinf
        "0000001c 64726566 00000000 00000001", //             dref, entry_count 1
        "0000000c 75726c20 00000001", //                        url, flags self-contained
        "000000a7 7374626c", //                             stbl, 167 bytes
        "0000005b 73747364 00000000 00000001", //             stsd, entry_count 1
        "0000004b 6d703461", //                                 mp4a, 75 bytes
        "000000000000 0001", //                                   reserved, data_reference_index 1
        "00000000 00000000", //                                   reserved
        "0002 0010 0000 0000", //                                 channelcount 2, samplesize 16
        "bb800000", //                                            samplerate 48000 (16.16)
        "00000027 65736473 00000000", //                          esds, 39 bytes, version 0
        "03 19 0000 00", //                                         ES_Descriptor, 25 bytes, ES_ID 0, no flags
        "04 11 40 15 000000 00000000 00000000", //                    DecoderConfig, 17 bytes: MPEG-4 Audio,
        //                                                            audio stream, buffer/max/avg bitrate 0
        "05 02 1190", //                                                DecoderSpecificInfo: the ASC
        "06 01 02", //                                                SLConfig: predefined 2
        "00000010 73747473 00000000 00000000", //             stts, no entries
        "00000010 73747363 00000000 00000000", //             stsc, no entries
        "00000014 7374737a 00000000 00000000 00000000", //    stsz, sample_size 0, count 0
        "00000010 7374636f 00000000 00000000", //             stco, no entries
        "00000028 6d766578", //                       mvex
        "00000020 74726578 00000000", //                trex, version 0
        "00000001 00000001", //                           track_ID 1, default_sample_description_index 1
        "00000000 00000000 00000000", //                  default duration / size / flags 0
      ),
    );
  });

  test("H.264 video: tkhd and the avc1 sample entry", () => {
    const avcc = new Uint8Array(Buffer.from("0142e01fffe100046742001f01000268ce", "hex"));
    const init = buildInitSegment({
      codec: "h264",
      codecString: "avc1.42e01f",
      description: avcc,
      width: 1280,
      height: 720,
    });
    const hex = toHex(init);
    const tkhdAt = hex.indexOf("746b6864") - 8;
    expect(hex.slice(tkhdAt, tkhdAt + 92 * 2)).toBe(
      golden(
        "0000005c 746b6864 00000003", //            tkhd, 92 bytes, enabled | in_movie
        "00000000 00000000 00000001 00000000 00000000", // times, track_ID 1, reserved, duration 0
        "00000000 00000000", //                       reserved
        "0000 0000 0000 0000", //                     layer, alternate_group, volume 0 (video), reserved
        "00010000 00000000 00000000 00000000 00010000 00000000 00000000 00000000 40000000",
        "05000000 02d00000", //                       width 1280.0, height 720.0 (16.16)
      ),
    );
    const stsdAt = hex.indexOf("73747364") - 8;
    expect(hex.slice(stsdAt, stsdAt + 0x7f * 2)).toBe(
      golden(
        "0000007f 73747364 00000000 00000001", //   stsd, 127 bytes, entry_count 1
        "0000006f 61766331", //                       avc1, 111 bytes = 8 + 78 + avcC
        "000000000000 0001", //                         reserved, data_reference_index 1
        "0000 0000 00000000 00000000 00000000", //      pre_defined, reserved, pre_defined
        "0500 02d0", //                                 width 1280, height 720
        "00480000 00480000", //                         72 dpi horizontal / vertical
        "00000000 0001", //                             reserved, frame_count 1
        "00".repeat(32), //                             compressorname (empty)
        "0018 ffff", //                                 depth 24, pre_defined -1
        "00000019 61766343", //                         avcC, 25 bytes: the record, unchanged
        "0142e01fffe100046742001f01000268ce",
      ),
    );
  });
});
