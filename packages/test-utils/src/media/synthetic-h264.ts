/**
 * A tiny H.264 encoder that real decoders accept: Constrained Baseline, CAVLC, one slice per
 * picture. Keyframes are IDR pictures whose every macroblock is `I_16x16` with DC prediction and
 * no residual (a flat mid-grey picture, one byte per macroblock); other frames are P pictures in
 * which every macroblock is skipped. The stream is therefore a few bytes per frame yet decodes
 * cleanly in ffmpeg and browsers, so a test can publish "video" with no encoder and no fixture,
 * and still hand the result to ffprobe or a player.
 *
 * The bitstream follows ITU-T H.264 (7.3 syntax, 9.1 Exp-Golomb codes, 9.2 CAVLC); nothing here
 * depends on another encoder.
 */
import { buildAvcDecoderConfigurationRecord } from "@lvqr/ingest-rtmp";
import { TestUtilsError } from "../errors.ts";

/** Picture and timing parameters of the synthetic stream. */
export interface SyntheticH264Options {
  /** Picture width in pixels, 16..4096 and even (default 320). */
  readonly width?: number;
  /** Picture height in pixels, 16..2304 and even (default 180). */
  readonly height?: number;
  /** Frames per second written into the SPS timing information (default 30, 1..240). */
  readonly fps?: number;
}

/** Parameter sets of a synthetic stream, ready for an FLV sequence header or an MP4 init. */
export interface SyntheticH264Config {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /** SPS NAL unit with its header byte. */
  readonly sps: Uint8Array;
  /** PPS NAL unit with its header byte. */
  readonly pps: Uint8Array;
  /** AVCDecoderConfigurationRecord (avcC) with 4-byte NAL lengths. */
  readonly avcC: Uint8Array;
  /** RFC 6381 codec string, `avc1.42c01f` style. */
  readonly codecString: string;
}

// log2(MaxFrameNum): frame_num counts P pictures since the last IDR and wraps at 2^8.
const LOG2_MAX_FRAME_NUM = 8;
const PROFILE_BASELINE = 66;
// constraint_set0 and constraint_set1: Constrained Baseline, decodable by every profile.
const CONSTRAINT_FLAGS = 0xc0;

/** Writes bits most-significant first into a growing byte array (RBSP, before emulation prevention). */
class RbspWriter {
  #bytes: number[] = [];
  #current = 0;
  #bitCount = 0;

  /** Writes the low `bits` bits of `value` (bits <= 32). */
  u(bits: number, value: number): void {
    for (let i = bits - 1; i >= 0; i--) this.#bit(Math.floor(value / 2 ** i) % 2);
  }

  /** Unsigned Exp-Golomb (9.1). */
  ue(value: number): void {
    const codeNum = value + 1;
    const length = Math.floor(Math.log2(codeNum));
    this.u(length, 0);
    this.u(length + 1, codeNum);
  }

  /** Signed Exp-Golomb (9.1.1): k > 0 maps to 2k - 1, k <= 0 to -2k. */
  se(value: number): void {
    this.ue(value > 0 ? 2 * value - 1 : -2 * value);
  }

  /** rbsp_trailing_bits: a stop bit, then zeros to the byte boundary. */
  trailingBits(): void {
    this.#bit(1);
    while (this.#bitCount !== 0) this.#bit(0);
  }

  bytes(): Uint8Array {
    if (this.#bitCount !== 0) throw new Error("RBSP is not byte aligned");
    return Uint8Array.from(this.#bytes);
  }

  #bit(bit: number): void {
    this.#current = (this.#current << 1) | bit;
    this.#bitCount++;
    if (this.#bitCount === 8) {
      this.#bytes.push(this.#current);
      this.#current = 0;
      this.#bitCount = 0;
    }
  }
}

/** Wraps an RBSP into a NAL unit: the header byte, then emulation prevention (7.4.1). */
function nalUnit(nalRefIdc: number, nalUnitType: number, rbsp: Uint8Array): Uint8Array {
  let zeros = 0;
  const out: number[] = [(nalRefIdc << 5) | nalUnitType];
  for (const byte of rbsp) {
    if (zeros >= 2 && byte <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

function resolve(options: SyntheticH264Options): { width: number; height: number; fps: number } {
  const width = options.width ?? 320;
  const height = options.height ?? 180;
  const fps = options.fps ?? 30;
  const even = (name: string, value: number, max: number) => {
    if (!Number.isInteger(value) || value < 16 || value > max || value % 2 !== 0) {
      throw new TestUtilsError(
        "TEST_UTILS_INVALID_OPTION",
        `synthetic H.264 ${name} ${value} must be an even integer in 16..${max}`,
      );
    }
  };
  even("width", width, 4096);
  even("height", height, 2304);
  if (!Number.isInteger(fps) || fps < 1 || fps > 240) {
    throw new TestUtilsError(
      "TEST_UTILS_INVALID_OPTION",
      `synthetic H.264 fps ${fps} must be an integer in 1..240`,
    );
  }
  return { width, height, fps };
}

function macroblocks(width: number, height: number): { wide: number; high: number } {
  return { wide: Math.ceil(width / 16), high: Math.ceil(height / 16) };
}

/** The SPS (7.3.2.1.1): Constrained Baseline, POC type 2 (output order = decode order), VUI timing. */
function buildSps(width: number, height: number, fps: number): Uint8Array {
  const { wide, high } = macroblocks(width, height);
  // Level: the smallest whose frame size (in macroblocks) fits, from Table A-1.
  const frameMbs = wide * high;
  const level = frameMbs <= 1620 ? 30 : frameMbs <= 3600 ? 31 : frameMbs <= 8192 ? 40 : 51;
  const w = new RbspWriter();
  w.u(8, PROFILE_BASELINE);
  w.u(8, CONSTRAINT_FLAGS);
  w.u(8, level);
  w.ue(0); // seq_parameter_set_id
  w.ue(LOG2_MAX_FRAME_NUM - 4);
  w.ue(2); // pic_order_cnt_type 2: no B-frames, POC follows frame_num
  w.ue(1); // max_num_ref_frames
  w.u(1, 0); // gaps_in_frame_num_value_allowed_flag
  w.ue(wide - 1);
  w.ue(high - 1);
  w.u(1, 1); // frame_mbs_only_flag
  w.u(1, 1); // direct_8x8_inference_flag
  const cropRight = (wide * 16 - width) / 2; // 4:2:0 crops in units of 2 luma samples
  const cropBottom = (high * 16 - height) / 2;
  const crop = cropRight > 0 || cropBottom > 0;
  w.u(1, crop ? 1 : 0);
  if (crop) {
    w.ue(0);
    w.ue(cropRight);
    w.ue(0);
    w.ue(cropBottom);
  }
  w.u(1, 1); // vui_parameters_present_flag
  w.u(1, 0); // aspect_ratio_info_present_flag
  w.u(1, 0); // overscan_info_present_flag
  w.u(1, 0); // video_signal_type_present_flag
  w.u(1, 0); // chroma_loc_info_present_flag
  w.u(1, 1); // timing_info_present_flag
  w.u(32, 1); // num_units_in_tick
  w.u(32, 2 * fps); // time_scale: two ticks per frame
  w.u(1, 1); // fixed_frame_rate_flag
  w.u(1, 0); // nal_hrd_parameters_present_flag
  w.u(1, 0); // vcl_hrd_parameters_present_flag
  w.u(1, 0); // pic_struct_present_flag
  w.u(1, 1); // bitstream_restriction_flag: lets decoders output each frame at once
  w.u(1, 1); // motion_vectors_over_pic_boundaries_flag
  w.ue(0); // max_bytes_per_pic_denom
  w.ue(0); // max_bits_per_mb_denom
  w.ue(16); // log2_max_mv_length_horizontal
  w.ue(16); // log2_max_mv_length_vertical
  w.ue(0); // max_num_reorder_frames
  w.ue(1); // max_dec_frame_buffering
  w.trailingBits();
  return nalUnit(3, 7, w.bytes());
}

/** The PPS (7.3.2.2): CAVLC, one slice group, QP 26, default deblocking. */
function buildPps(): Uint8Array {
  const w = new RbspWriter();
  w.ue(0); // pic_parameter_set_id
  w.ue(0); // seq_parameter_set_id
  w.u(1, 0); // entropy_coding_mode_flag: CAVLC
  w.u(1, 0); // bottom_field_pic_order_in_frame_present_flag
  w.ue(0); // num_slice_groups_minus1
  w.ue(0); // num_ref_idx_l0_default_active_minus1
  w.ue(0); // num_ref_idx_l1_default_active_minus1
  w.u(1, 0); // weighted_pred_flag
  w.u(2, 0); // weighted_bipred_idc
  w.se(0); // pic_init_qp_minus26
  w.se(0); // pic_init_qs_minus26
  w.se(0); // chroma_qp_index_offset
  w.u(1, 0); // deblocking_filter_control_present_flag
  w.u(1, 0); // constrained_intra_pred_flag
  w.u(1, 0); // redundant_pic_cnt_present_flag
  w.trailingBits();
  return nalUnit(3, 8, w.bytes());
}

/** Builds the SPS, PPS and avcC of a synthetic stream. */
export function syntheticH264Config(options: SyntheticH264Options = {}): SyntheticH264Config {
  const { width, height, fps } = resolve(options);
  const sps = buildSps(width, height, fps);
  const pps = buildPps();
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return {
    width,
    height,
    fps,
    sps,
    pps,
    avcC: buildAvcDecoderConfigurationRecord([sps], [pps]),
    codecString: `avc1.${hex(sps[1]!)}${hex(sps[2]!)}${hex(sps[3]!)}`,
  };
}

/**
 * An IDR picture (nal_unit_type 5): every macroblock is I_16x16 with DC prediction, chroma DC
 * prediction, no QP change and an empty luma DC block, which decodes to flat grey (128).
 * `idrPicId` must differ between consecutive IDR pictures (7.4.3).
 */
export function syntheticIdrSlice(config: SyntheticH264Config, idrPicId: number): Uint8Array {
  const { wide, high } = macroblocks(config.width, config.height);
  const w = new RbspWriter();
  w.ue(0); // first_mb_in_slice
  w.ue(7); // slice_type: I, and every slice of the picture is I
  w.ue(0); // pic_parameter_set_id
  w.u(LOG2_MAX_FRAME_NUM, 0); // frame_num
  w.ue(idrPicId % 65536);
  w.u(1, 0); // no_output_of_prior_pics_flag
  w.u(1, 0); // long_term_reference_flag
  w.se(0); // slice_qp_delta
  for (let i = 0; i < wide * high; i++) {
    w.ue(3); // mb_type I_16x16_2_0_0: prediction mode 2 (DC), no coded chroma or luma AC
    w.ue(0); // intra_chroma_pred_mode: DC
    w.se(0); // mb_qp_delta
    w.u(1, 1); // Intra16x16DCLevel coeff_token: TotalCoeff 0 (nC 0..1 table)
  }
  w.trailingBits();
  return nalUnit(3, 5, w.bytes());
}

/**
 * A P picture (nal_unit_type 1) whose every macroblock is skipped: it repeats the reference.
 * `frameNum` is the picture's position after the last IDR (1 for the first P picture).
 */
export function syntheticPSlice(config: SyntheticH264Config, frameNum: number): Uint8Array {
  const { wide, high } = macroblocks(config.width, config.height);
  const w = new RbspWriter();
  w.ue(0); // first_mb_in_slice
  w.ue(5); // slice_type: P, and every slice of the picture is P
  w.ue(0); // pic_parameter_set_id
  w.u(LOG2_MAX_FRAME_NUM, frameNum % 2 ** LOG2_MAX_FRAME_NUM);
  w.u(1, 0); // num_ref_idx_active_override_flag
  w.u(1, 0); // ref_pic_list_modification_flag_l0
  w.u(1, 0); // adaptive_ref_pic_marking_mode_flag: sliding window
  w.se(0); // slice_qp_delta
  w.ue(wide * high); // mb_skip_run covering the whole picture
  w.trailingBits();
  return nalUnit(2, 1, w.bytes());
}
