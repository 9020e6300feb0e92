/**
 * GOAWAY (lite-04, stream type 0x05): the server asks the client to reconnect elsewhere.
 */
import { ByteReader, ByteWriter, bytesFieldSize, utf8 } from "./bytes.ts";
import { requireVersion } from "./message.ts";
import { type Version, Version as Versions } from "./version.ts";

/** Longest GOAWAY URI accepted, in bytes. */
export const MAX_GOAWAY_URI_BYTES = 8192;

/** GOAWAY: where to reconnect (may be empty: just go away). */
export interface Goaway {
  readonly uri: string;
}

const lite04Plus = (version: Version) => version === Versions.Lite04;

/** GOAWAY, size-prefixed (lite-04 only). */
export function encodeGoaway(msg: Goaway, version: Version): Uint8Array {
  requireVersion("GOAWAY", version, lite04Plus, false);
  const uri = utf8(msg.uri);
  return ByteWriter.message(bytesFieldSize(uri)).lengthPrefixed(uri).finish();
}

/** Decodes a GOAWAY body. */
export function decodeGoaway(body: Uint8Array, version: Version): Goaway {
  requireVersion("GOAWAY", version, lite04Plus, true);
  const reader = new ByteReader(body, "GOAWAY");
  const uri = reader.string("uri", MAX_GOAWAY_URI_BYTES);
  reader.finish();
  return { uri };
}
