/**
 * PROBE (lite-03+, stream type 0x04): the subscriber side opens the stream; the publisher side
 * reports its estimated send bitrate (and on lite-04 the RTT, where 0 means unknown).
 */
import { ByteReader, ByteWriter } from "./bytes.ts";
import { lite03Plus, requireVersion } from "./message.ts";
import { varintSize } from "./varint.ts";
import { type Version, Version as Versions } from "./version.ts";

/** PROBE: the sender's bandwidth estimate. */
export interface Probe {
  readonly bitrate: number;
  /** lite-04: round-trip time in ms; undefined = unknown. */
  readonly rttMs?: number;
}

/** PROBE, size-prefixed. */
export function encodeProbe(msg: Probe, version: Version): Uint8Array {
  requireVersion("PROBE", version, lite03Plus, false);
  // lite-04 reserves 0 for "unknown", so a measured 0 ms goes out as 1.
  const rtt = msg.rttMs === undefined ? 0 : Math.max(1, msg.rttMs);
  let size = varintSize(msg.bitrate);
  if (version === Versions.Lite04) size += varintSize(rtt);
  const writer = ByteWriter.message(size).varint(msg.bitrate);
  if (version === Versions.Lite04) writer.varint(rtt);
  return writer.finish();
}

/** Decodes a PROBE body. */
export function decodeProbe(body: Uint8Array, version: Version): Probe {
  requireVersion("PROBE", version, lite03Plus, true);
  const reader = new ByteReader(body, "PROBE");
  const bitrate = reader.varint("bitrate");
  let rttMs: number | undefined;
  switch (version) {
    case Versions.Lite03:
      break;
    default: {
      const rtt = reader.varint("rtt");
      rttMs = rtt === 0 ? undefined : rtt;
      break;
    }
  }
  reader.finish();
  return rttMs === undefined ? { bitrate } : { bitrate, rttMs };
}
