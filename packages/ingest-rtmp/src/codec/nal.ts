/** NAL unit helpers shared by H.264 and H.265: RBSP unescaping and length-prefix checks. */

/**
 * Removes emulation-prevention bytes (the 0x03 in 0x000003) so the bits can be parsed. Returns the
 * input itself when there are none.
 */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
  let zeros = 0;
  let first = -1;
  for (let i = 0; i < nal.byteLength; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      first = i;
      break;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (first < 0) return nal;
  const out = new Uint8Array(nal.byteLength);
  out.set(nal.subarray(0, first));
  let n = first;
  zeros = 0;
  for (let i = first + 1; i < nal.byteLength; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}

/** True when `data` is a sequence of NAL units each prefixed by a `lengthSize`-byte length. */
export function isLengthPrefixed(data: Uint8Array, lengthSize: number): boolean {
  let o = 0;
  const end = data.byteLength;
  while (o < end) {
    if (end - o < lengthSize) return false;
    let len = 0;
    for (let i = 0; i < lengthSize; i++) len = len * 256 + data[o + i]!;
    o += lengthSize;
    if (len === 0 || len > end - o) return false;
    o += len;
  }
  return true;
}

/** Splits Annex B (start-code delimited) data into NAL unit views. */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let start = -1;
  let i = 0;
  const end = data.byteLength;
  while (i + 2 < end) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) {
        let stop = i;
        while (stop > start && data[stop - 1] === 0) stop--;
        if (stop > start) nals.push(data.subarray(start, stop));
      }
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < end) nals.push(data.subarray(start, end));
  return nals;
}

/** True when `data` begins with an Annex B start code (00 00 01 or 00 00 00 01). */
export function looksLikeAnnexB(data: Uint8Array): boolean {
  if (data.byteLength < 4 || data[0] !== 0 || data[1] !== 0) return false;
  return data[2] === 1 || (data[2] === 0 && data[3] === 1);
}

/**
 * Converts Annex B data to length-prefixed NAL units, or returns undefined when a NAL unit does
 * not fit the length field.
 */
export function annexBToLengthPrefixed(data: Uint8Array, lengthSize: number): Uint8Array | undefined {
  const nals = splitAnnexB(data);
  if (nals.length === 0) return undefined;
  const max = lengthSize === 4 ? 0xffffffff : 2 ** (8 * lengthSize) - 1;
  let size = 0;
  for (const nal of nals) {
    if (nal.byteLength > max) return undefined;
    size += lengthSize + nal.byteLength;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const nal of nals) {
    let len = nal.byteLength;
    for (let i = lengthSize - 1; i >= 0; i--) {
      out[o + i] = len & 0xff;
      len = Math.floor(len / 256);
    }
    o += lengthSize;
    out.set(nal, o);
    o += nal.byteLength;
  }
  return out;
}

/** Joins NAL units into length-prefixed form (AVCC/HVCC sample data). */
export function lengthPrefixNalUnits(nals: readonly Uint8Array[], lengthSize = 4): Uint8Array {
  let size = 0;
  for (const nal of nals) size += lengthSize + nal.byteLength;
  const out = new Uint8Array(size);
  let o = 0;
  for (const nal of nals) {
    let len = nal.byteLength;
    for (let i = lengthSize - 1; i >= 0; i--) {
      out[o + i] = len & 0xff;
      len = Math.floor(len / 256);
    }
    o += lengthSize;
    out.set(nal, o);
    o += nal.byteLength;
  }
  return out;
}
