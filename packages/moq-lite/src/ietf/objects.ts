/**
 * moq-transport data streams. A unidirectional stream starts with a varint type: a
 * SUBGROUP_HEADER (0x10..0x1D, and 0x30..0x3D from draft-15 where the publisher priority byte is
 * left out), a FETCH_HEADER (0x05), or, in draft-17, the peer's SETUP control stream (0x2F00).
 *
 * The moq-lite mapping uses sub-group 0 for every object: this package sends each group on one
 * stream of type 0x18 (sub-group 0, no properties, end of group, priority byte present) whose
 * objects are the group's frames in order, and ends it with FIN. Objects received in any other
 * sub-group are dropped with their stream.
 */
import { ProtocolViolationError } from "../error.ts";
import type { StreamReader } from "../wire/stream-reader.ts";
import { encodeFields } from "./codec.ts";
import { type IetfVersion, usesLeadingOnes, IetfVersion as Versions } from "./version.ts";

/** Unidirectional stream types other than SUBGROUP_HEADER. */
export const IetfStreamType: { readonly FetchHeader: 0x05; readonly Setup: 0x2f00 } = {
  FetchHeader: 0x05,
  Setup: 0x2f00,
};

/** The SUBGROUP_HEADER type this package sends: sub-group 0, no properties, end of group, priority present. */
export const SUBGROUP_TYPE_SENT = 0x18;

/** Object status values that can stand in for a payload. */
export const IetfObjectStatus: {
  readonly Normal: 0x0;
  readonly DoesNotExist: 0x1;
  readonly EndOfGroup: 0x3;
  readonly EndOfTrack: 0x4;
} = { Normal: 0x0, DoesNotExist: 0x1, EndOfGroup: 0x3, EndOfTrack: 0x4 };

/** A decoded SUBGROUP_HEADER. */
export interface SubgroupHeader {
  readonly type: number;
  readonly trackAlias: number;
  readonly group: number;
  /** The sub-group id, or "first-object" when it is the id of the first object (mode 0b01). */
  readonly subgroup: number | "first-object";
  /** Absent when the header inherits the subscription's publisher priority. */
  readonly priority?: number;
  /** Every object carries a properties (extensions) block. */
  readonly properties: boolean;
  /** The last object before FIN is the last object of the group. */
  readonly endOfGroup: boolean;
}

/** True when `type` is a SUBGROUP_HEADER type that `version` defines. */
export function isSubgroupType(type: number, version: IetfVersion): boolean {
  const base = type & ~0x20;
  if (base < 0x10 || base > 0x1d) return false;
  if ((type & 0x06) === 0x06) return false;
  if (type >= 0x30 && version === Versions.Draft14) return false;
  return type <= 0x1d || (type >= 0x30 && type <= 0x3d);
}

/** Reads a varint in the draft's flavour from a stream. */
export function readStreamVarint(
  reader: StreamReader,
  version: IetfVersion,
  field: string,
  max?: number,
): Promise<number> {
  return usesLeadingOnes(version) ? reader.leadingOnes(field, max) : reader.varint(field, max);
}

/** Reads the rest of a SUBGROUP_HEADER whose `type` was already read. */
export async function readSubgroupHeader(
  reader: StreamReader,
  type: number,
  version: IetfVersion,
): Promise<SubgroupHeader> {
  if (!isSubgroupType(type, version)) {
    throw new ProtocolViolationError(`SUBGROUP_HEADER: type 0x${type.toString(16)} is not defined`);
  }
  const trackAlias = await readStreamVarint(reader, version, "track alias");
  const group = await readStreamVarint(reader, version, "group id");
  const mode = (type & 0x06) >> 1;
  const subgroup =
    mode === 0 ? 0 : mode === 1 ? "first-object" : await readStreamVarint(reader, version, "subgroup id");
  const priority = type & 0x20 ? undefined : await reader.u8("publisher priority");
  return {
    type,
    trackAlias,
    group,
    subgroup,
    ...(priority !== undefined ? { priority } : {}),
    properties: (type & 0x01) !== 0,
    endOfGroup: (type & 0x08) !== 0,
  };
}

/** The SUBGROUP_HEADER this package sends (type included), for sub-group 0 of `group`. */
export function encodeSubgroupHeader(
  header: { readonly trackAlias: number; readonly group: number; readonly priority: number },
  version: IetfVersion,
): Uint8Array {
  return encodeFields(version, (sink) =>
    sink.varint(SUBGROUP_TYPE_SENT).varint(header.trackAlias).varint(header.group).u8(header.priority),
  );
}

/**
 * The fields before an object's payload in a header-type-0x18 stream: Object ID delta 0 and the
 * payload length, plus the Normal status when the payload is empty.
 */
export function encodeObjectHeader(size: number, version: IetfVersion): Uint8Array {
  return encodeFields(version, (sink) => {
    sink.varint(0).varint(size);
    if (size === 0) sink.varint(IetfObjectStatus.Normal);
  });
}

/** A FETCH_HEADER stream start (type included). */
export function encodeFetchHeader(requestId: number, version: IetfVersion): Uint8Array {
  return encodeFields(version, (sink) => sink.varint(IetfStreamType.FetchHeader).varint(requestId));
}
