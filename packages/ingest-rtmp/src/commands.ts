/**
 * RTMP commands (type 20, or 17 with the AMF3 format byte) and data messages (type 18 / 15):
 * decoding into name, transaction id, command object and arguments, and the status objects the
 * server answers with.
 */
import { type AmfDecodeOptions, type AmfObject, type AmfValue, decodeAmf0, encodeAmf0 } from "./amf0.ts";
import { RtmpError } from "./errors.ts";

/** A decoded command message. */
export interface RtmpCommand {
  readonly name: string;
  readonly transactionId: number;
  /** The command object (null for most NetStream commands). */
  readonly object: AmfValue;
  readonly args: AmfValue[];
}

// Type 17/15 payloads start with a format byte (0 = the rest is AMF0, with 0x11 switching to AMF3).
function amfBody(payload: Uint8Array, amf3: boolean): Uint8Array {
  return amf3 && payload.byteLength > 0 && payload[0] === 0 ? payload.subarray(1) : payload;
}

/** Decodes a command message payload. */
export function parseCommand(payload: Uint8Array, amf3: boolean, options?: AmfDecodeOptions): RtmpCommand {
  const values = decodeAmf0(amfBody(payload, amf3), options);
  const [name, transactionId, object, ...args] = values;
  if (typeof name !== "string")
    throw new RtmpError("RTMP_COMMAND_INVALID", "RTMP command does not start with a command name string");
  return {
    name,
    transactionId: typeof transactionId === "number" && Number.isFinite(transactionId) ? transactionId : 0,
    object: object ?? null,
    args,
  };
}

/** Decodes a data message payload (e.g. `@setDataFrame`, `onMetaData`, {...}). */
export function parseDataMessage(payload: Uint8Array, amf3: boolean, options?: AmfDecodeOptions): AmfValue[] {
  return decodeAmf0(amfBody(payload, amf3), options);
}

/** Encodes a command: name, transaction id, command object, then arguments. */
export function encodeCommand(
  name: string,
  transactionId: number,
  object: AmfValue,
  ...args: AmfValue[]
): Uint8Array {
  return encodeAmf0([name, transactionId, object, ...args]);
}

/** `onStatus` info object fields. */
export interface StatusInfo extends AmfObject {
  level: "status" | "error" | "warning";
  code: string;
  description: string;
}

/** Builds an `onStatus` info object. */
export function statusInfo(
  level: StatusInfo["level"],
  code: string,
  description: string,
  extra?: AmfObject,
): StatusInfo {
  return { level, code, description, ...extra };
}

/** True when a value is a non-null, non-array object (an AMF object or ECMA array). */
export function isAmfObject(value: AmfValue): value is AmfObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Status codes this package sends or understands. */
export const NetStatus = {
  ConnectSuccess: "NetConnection.Connect.Success",
  ConnectRejected: "NetConnection.Connect.Rejected",
  CallFailed: "NetConnection.Call.Failed",
  PublishStart: "NetStream.Publish.Start",
  PublishBadName: "NetStream.Publish.BadName",
  PublishUnauthorized: "NetStream.Publish.Unauthorized",
  PublishRejected: "NetStream.Publish.Rejected",
  UnpublishSuccess: "NetStream.Unpublish.Success",
  PlayFailed: "NetStream.Play.Failed",
} as const;
