/**
 * The size-prefixed message framing shared by every moq-lite message: `varint size` then exactly
 * `size` bytes of body. Stream readers strip the prefix as they buffer; this helper does the same
 * for a message that is already contiguous in memory (tests, datagram-like uses).
 */
import { MoqError, ProtocolViolationError } from "../error.ts";
import { ByteReader } from "./bytes.ts";
import { isSetupEra, type Version, versionName } from "./version.ts";

/** Default bound on one control message body (ANNOUNCE_INIT of a large origin is the biggest). */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 256 * 1024;

/** The body of the single size-prefixed message that makes up all of `bytes`. */
export function unframeMessage(
  bytes: Uint8Array,
  what: string,
  maxSize: number = DEFAULT_MAX_MESSAGE_BYTES,
): Uint8Array {
  const reader = new ByteReader(bytes, what);
  const body = reader.lengthPrefixed("message", maxSize);
  reader.finish();
  return body;
}

/** Throws when `version` lacks a message: encoding it is a bug, decoding it a peer violation. */
export function requireVersion(
  what: string,
  version: Version,
  supported: (version: Version) => boolean,
  decoding: boolean,
): void {
  if (supported(version)) return;
  const message = `${what} does not exist in ${versionName(version)}`;
  if (decoding) throw new ProtocolViolationError(message);
  throw new MoqError("MOQ_UNSUPPORTED", message);
}

/** lite-01 and lite-02. */
export const setupEraOnly: (version: Version) => boolean = isSetupEra;

/** lite-03 and later. */
export function lite03Plus(version: Version): boolean {
  return !isSetupEra(version);
}

/** Validates a u8 priority before encoding it. */
export function checkPriority(priority: number): number {
  if (!Number.isInteger(priority) || priority < 0 || priority > 255) {
    throw new RangeError(`priority ${priority} is invalid (must be 0..255)`);
  }
  return priority;
}

/** Encodes an optional group sequence for lite-03+: 0 = none, otherwise sequence + 1. */
export function optionalGroupWire(sequence: number | undefined): number {
  return sequence === undefined ? 0 : sequence + 1;
}

/** Decodes an optional group sequence written by {@link optionalGroupWire}. */
export function optionalGroupValue(wire: number): number | undefined {
  return wire === 0 ? undefined : wire - 1;
}
