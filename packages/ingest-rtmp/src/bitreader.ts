import { RtmpError, type RtmpErrorCode } from "./errors.ts";

/**
 * An MSB-first bit reader with exp-Golomb codes, for H.264/H.265 SPS and the AV1 sequence header.
 * Reads past the end throw one {@link RtmpError}; exp-Golomb prefixes are capped at 32 zero bits
 * so a run of zeros cannot make a value larger than the syntax allows.
 */
export class BitReader {
  readonly #bytes: Uint8Array;
  #bit = 0;
  readonly #totalBits: number;
  readonly #code: RtmpErrorCode;
  readonly #subject: string;

  constructor(bytes: Uint8Array, subject: string, code: RtmpErrorCode = "CODEC_CONFIG_INVALID") {
    this.#bytes = bytes;
    this.#totalBits = bytes.byteLength * 8;
    this.#subject = subject;
    this.#code = code;
  }

  /** Bits left to read. */
  get bitsLeft(): number {
    return this.#totalBits - this.#bit;
  }

  /** Position in bits from the start. */
  get position(): number {
    return this.#bit;
  }

  /** Reads `n` (0..32) bits as an unsigned number. */
  bits(n: number): number {
    if (n > this.#totalBits - this.#bit) {
      throw new RtmpError(
        this.#code,
        `${this.#subject} is truncated: needs ${n} bits at bit ${this.#bit} of ${this.#totalBits}`,
      );
    }
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#bytes[this.#bit >>> 3]!;
      v = v * 2 + ((byte >>> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return v;
  }

  /** Reads one bit as a boolean. */
  flag(): boolean {
    return this.bits(1) === 1;
  }

  skip(n: number): void {
    if (n > this.#totalBits - this.#bit) {
      throw new RtmpError(
        this.#code,
        `${this.#subject} is truncated: cannot skip ${n} bits at bit ${this.#bit}`,
      );
    }
    this.#bit += n;
  }

  /** Unsigned exp-Golomb ue(v). */
  ue(): number {
    let zeros = 0;
    while (this.bits(1) === 0) {
      zeros++;
      if (zeros > 31)
        throw new RtmpError(this.#code, `${this.#subject} has an exp-Golomb code longer than 32 bits`);
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.bits(zeros);
  }

  /** Signed exp-Golomb se(v). */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }

  /** AV1 uvlc(). */
  uvlc(): number {
    let zeros = 0;
    while (this.bits(1) === 0) {
      zeros++;
      if (zeros >= 32) return 2 ** 32 - 1;
    }
    return zeros === 0 ? 0 : this.bits(zeros) + 2 ** zeros - 1;
  }
}
