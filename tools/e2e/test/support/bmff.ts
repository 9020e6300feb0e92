/**
 * Just enough ISO-BMFF reading to check what a viewer receives: box walking with bounds checks,
 * the media timescale of an init segment and the decode time of a fragment. Anything malformed
 * throws; these readers only look at bytes our own server produced.
 */

/** A box header and its payload as a zero-copy view. */
export interface Box {
  readonly type: string;
  readonly payload: Uint8Array;
}

/** The boxes at the top level of `data`, in order. */
export function childBoxes(data: Uint8Array): Box[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Box[] = [];
  let offset = 0;
  while (offset + 8 <= data.byteLength) {
    let size = view.getUint32(offset);
    const type = String.fromCharCode(...data.subarray(offset + 4, offset + 8));
    let header = 8;
    if (size === 1) {
      if (offset + 16 > data.byteLength) throw new Error(`truncated large-size ${type} box`);
      size = Number(view.getBigUint64(offset + 8));
      header = 16;
    } else if (size === 0) {
      size = data.byteLength - offset;
    }
    if (size < header || offset + size > data.byteLength) {
      throw new Error(`${type} box of ${size} bytes overruns its ${data.byteLength - offset} byte parent`);
    }
    out.push({ type, payload: data.subarray(offset + header, offset + size) });
    offset += size;
  }
  if (offset !== data.byteLength)
    throw new Error(`${data.byteLength - offset} trailing bytes after the last box`);
  return out;
}

/** The payload of the first box along `path` (e.g. `["moov", "trak", "mdia", "mdhd"]`). */
export function findBox(data: Uint8Array, path: readonly string[]): Uint8Array | undefined {
  let current: Uint8Array = data;
  for (const type of path) {
    const box = childBoxes(current).find((candidate) => candidate.type === type);
    if (!box) return undefined;
    current = box.payload;
  }
  return current;
}

/** The timescale in the first track's `mdhd` of an init segment. */
export function initTimescale(init: Uint8Array): number {
  const mdhd = findBox(init, ["moov", "trak", "mdia", "mdhd"]);
  if (!mdhd) throw new Error("init segment has no moov/trak/mdia/mdhd");
  const view = new DataView(mdhd.buffer, mdhd.byteOffset, mdhd.byteLength);
  // version 1: 8-byte creation and modification times; version 0: 4-byte ones.
  return mdhd[0] === 1 ? view.getUint32(20) : view.getUint32(12);
}

/** `baseMediaDecodeTime` of the first `traf` of a `moof` + `mdat` fragment, in timescale units. */
export function fragmentDecodeTime(fragment: Uint8Array): number {
  const tfdt = findBox(fragment, ["moof", "traf", "tfdt"]);
  if (!tfdt) throw new Error("fragment has no moof/traf/tfdt");
  const view = new DataView(tfdt.buffer, tfdt.byteOffset, tfdt.byteLength);
  return tfdt[0] === 1 ? Number(view.getBigUint64(4)) : view.getUint32(4);
}

/** The type of the first box of `data` (`"ftyp"`, `"moof"`, ...). */
export function firstBoxType(data: Uint8Array): string {
  if (data.byteLength < 8) return "";
  return String.fromCharCode(...data.subarray(4, 8));
}
