/**
 * moq-transport session setup. Drafts 14 to 16 exchange CLIENT_SETUP (0x20) and SERVER_SETUP
 * (0x21) on the client's first bidirectional stream, which then stays open as the control
 * stream: draft-14 carries the offered versions and the selected one (the same layout as the
 * moq-lite-01/02 SETUP, which is how one CLIENT_SETUP can offer both families); drafts 15 and
 * 16 carry only Setup Parameters (16 with delta-encoded types). Draft-17 replaces both with one
 * SETUP message (0x2F00) that each side sends first on a unidirectional stream of its own.
 */
import { ProtocolViolationError } from "../error.ts";
import { utf8 } from "../wire/bytes.ts";
import { decodeClientSetup, decodeServerSetup, encodeClientSetup, encodeServerSetup } from "../wire/setup.ts";
import {
  encodeControlMessage,
  IetfReader,
  type KeyValuePairs,
  readKeyValuePairs,
  writeKeyValuePairs,
} from "./codec.ts";
import { IetfVersion } from "./version.ts";

/** Setup option (Setup Parameter) types; the same numbers in every draft. */
export const IetfSetupOption: {
  readonly Path: 0x01;
  readonly MaxRequestId: 0x02;
  readonly AuthorizationToken: 0x03;
  readonly MaxAuthTokenCacheSize: 0x04;
  readonly Authority: 0x05;
  readonly Implementation: 0x07;
  /** The MoQ Solicit extension (@moq/net): 1 = advertisements to the sender must be solicited. */
  readonly Solicit: 0x40b5a;
} = {
  Path: 0x01,
  MaxRequestId: 0x02,
  AuthorizationToken: 0x03,
  MaxAuthTokenCacheSize: 0x04,
  Authority: 0x05,
  Implementation: 0x07,
  Solicit: 0x40b5a,
};

/** Message types of the setup messages. */
export const IetfSetupMessageType: {
  readonly ClientSetup: 0x20;
  readonly ServerSetup: 0x21;
  readonly Setup: 0x2f00;
} = {
  ClientSetup: 0x20,
  ServerSetup: 0x21,
  Setup: 0x2f00,
};

/** CLIENT_SETUP: the offered versions (draft-14 only; empty otherwise) and the client's options. */
export interface IetfClientSetup {
  readonly versions: readonly number[];
  readonly options: KeyValuePairs;
}

/** SERVER_SETUP: the selected version (draft-14 only) and the server's options. */
export interface IetfServerSetup {
  readonly version?: number;
  readonly options: KeyValuePairs;
}

// Types whose repetition is a violation; everything else may repeat (unknown types, tokens).
const knownOnce = (type: number): boolean =>
  type !== IetfSetupOption.AuthorizationToken && type <= IetfSetupOption.Implementation;

/** Options a session sends: its implementation name and, for drafts 14 to 16, MAX_REQUEST_ID. */
export function setupOptions(
  version: IetfVersion,
  maxRequestId: number | undefined,
  implementation: string,
): KeyValuePairs {
  const options = new Map<number, bigint | Uint8Array>();
  if (maxRequestId !== undefined && version !== IetfVersion.Draft17) {
    options.set(IetfSetupOption.MaxRequestId, BigInt(maxRequestId));
  }
  options.set(IetfSetupOption.Implementation, utf8(implementation));
  return options;
}

/** CLIENT_SETUP with its type and u16 length (drafts 14 to 16). */
export function encodeIetfClientSetup(msg: IetfClientSetup, version: IetfVersion): Uint8Array {
  if (version === IetfVersion.Draft17) throw new RangeError("draft-17 uses SETUP (0x2F00), not CLIENT_SETUP");
  if (version === IetfVersion.Draft14)
    return encodeClientSetup({ versions: msg.versions, parameters: msg.options });
  return encodeControlMessage(IetfSetupMessageType.ClientSetup, version, (sink) =>
    writeKeyValuePairs(sink, version, msg.options),
  );
}

/** Decodes a CLIENT_SETUP body (drafts 14 to 16). */
export function decodeIetfClientSetup(body: Uint8Array, version: IetfVersion): IetfClientSetup {
  if (version === IetfVersion.Draft17) throw new ProtocolViolationError("draft-17 has no CLIENT_SETUP");
  if (version === IetfVersion.Draft14) {
    const setup = decodeClientSetup(body);
    return { versions: setup.versions, options: setup.parameters };
  }
  const reader = new IetfReader(body, "CLIENT_SETUP", version);
  const count = reader.varint("parameter count");
  const options = readKeyValuePairs(reader, "CLIENT_SETUP parameter", count, knownOnce);
  reader.finish();
  return { versions: [version], options };
}

/** SERVER_SETUP with its type and u16 length (drafts 14 to 16). */
export function encodeIetfServerSetup(msg: IetfServerSetup, version: IetfVersion): Uint8Array {
  if (version === IetfVersion.Draft17) throw new RangeError("draft-17 uses SETUP (0x2F00), not SERVER_SETUP");
  if (version === IetfVersion.Draft14) {
    return encodeServerSetup({ version: msg.version ?? IetfVersion.Draft14, parameters: msg.options });
  }
  return encodeControlMessage(IetfSetupMessageType.ServerSetup, version, (sink) =>
    writeKeyValuePairs(sink, version, msg.options),
  );
}

/** Decodes a SERVER_SETUP body (drafts 14 to 16). */
export function decodeIetfServerSetup(body: Uint8Array, version: IetfVersion): IetfServerSetup {
  if (version === IetfVersion.Draft17) throw new ProtocolViolationError("draft-17 has no SERVER_SETUP");
  if (version === IetfVersion.Draft14) {
    const setup = decodeServerSetup(body);
    return { version: setup.version, options: setup.parameters };
  }
  const reader = new IetfReader(body, "SERVER_SETUP", version);
  const count = reader.varint("parameter count");
  const options = readKeyValuePairs(reader, "SERVER_SETUP parameter", count, knownOnce);
  reader.finish();
  return { options };
}

/** Draft-17 SETUP with its type (0x2F00, a leading-ones varint) and u16 length. */
export function encodeIetfSetup(options: KeyValuePairs): Uint8Array {
  return encodeControlMessage(IetfSetupMessageType.Setup, IetfVersion.Draft17, (sink) =>
    writeKeyValuePairs(sink, IetfVersion.Draft17, options, false),
  );
}

/** Decodes a draft-17 SETUP body: Setup Options to the end of the message. */
export function decodeIetfSetup(body: Uint8Array): KeyValuePairs {
  const reader = new IetfReader(body, "SETUP", IetfVersion.Draft17);
  const options = readKeyValuePairs(reader, "SETUP option", undefined, knownOnce);
  reader.finish();
  return options;
}

/** The peer's MAX_REQUEST_ID option (0 when absent: it accepts no requests until it sends MAX_REQUEST_ID). */
export function maxRequestIdOption(options: KeyValuePairs): number {
  const value = options.get(IetfSetupOption.MaxRequestId);
  if (typeof value !== "bigint") return 0;
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** The peer's implementation name, if it sent one. */
export function implementationOption(options: KeyValuePairs): string | undefined {
  const value = options.get(IetfSetupOption.Implementation);
  return value instanceof Uint8Array ? new TextDecoder().decode(value) : undefined;
}
