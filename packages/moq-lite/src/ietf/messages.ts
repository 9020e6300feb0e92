/**
 * moq-transport control messages, drafts 14 to 17, as one discriminated union
 * ({@link IetfMessage}) with an encoder and a decoder that switch on the draft. Each message is
 * `varint type`, u16 length, payload; payloads are decoded with an exact-consumption check and a
 * bound on every length, and anything that breaks the draft is a `ProtocolViolationError`.
 *
 * The drafts differ mostly in where fields live: draft-14 has per-request error messages and
 * carries priority, group order, forward and filter as fields; draft-15 folds errors into
 * REQUEST_ERROR/REQUEST_OK and moves those fields into Message Parameters; draft-16
 * delta-encodes parameter types, keys PUBLISH_NAMESPACE_DONE/CANCEL by Request ID and adds
 * NAMESPACE/NAMESPACE_DONE; draft-17 moves every request onto its own stream, so responses lose
 * their Request ID and requests gain a Required Request ID Delta.
 */
import { ProtocolViolationError } from "../error.ts";
import { utf8 } from "../wire/bytes.ts";
import {
  encodeControlMessage,
  encodeNamespace,
  type IetfLocation,
  IetfReader,
  type IetfSink,
  readKeyValuePairs,
  writeNamespace,
  writeReason,
} from "./codec.ts";
import {
  IetfGroupOrder,
  type MessageParameters,
  type ParameterLayout,
  readFilter,
  readMessageParameters,
  type SubscriptionFilter,
  writeFilter,
  writeMessageParameters,
} from "./parameters.ts";
import { type IetfVersion, isDraft14, usesNamespaceKeys, IetfVersion as Versions } from "./version.ts";

/** Control message types. Some numbers mean different messages in different drafts. */
export const IetfMessageType: {
  readonly RequestUpdate: 0x02;
  readonly Subscribe: 0x03;
  readonly SubscribeOk: 0x04;
  /** SUBSCRIBE_ERROR in draft-14, REQUEST_ERROR from draft-15. */
  readonly RequestError: 0x05;
  readonly PublishNamespace: 0x06;
  /** PUBLISH_NAMESPACE_OK in draft-14, REQUEST_OK from draft-15. */
  readonly RequestOk: 0x07;
  /** PUBLISH_NAMESPACE_ERROR in draft-14, NAMESPACE from draft-16. */
  readonly Namespace: 0x08;
  readonly PublishNamespaceDone: 0x09;
  readonly Unsubscribe: 0x0a;
  readonly PublishDone: 0x0b;
  readonly PublishNamespaceCancel: 0x0c;
  readonly TrackStatus: 0x0d;
  /** TRACK_STATUS_OK in draft-14, NAMESPACE_DONE from draft-16. */
  readonly NamespaceDone: 0x0e;
  /** TRACK_STATUS_ERROR in draft-14, PUBLISH_BLOCKED in draft-17. */
  readonly PublishBlocked: 0x0f;
  readonly Goaway: 0x10;
  readonly SubscribeNamespace: 0x11;
  readonly SubscribeNamespaceOk: 0x12;
  readonly SubscribeNamespaceError: 0x13;
  readonly UnsubscribeNamespace: 0x14;
  readonly MaxRequestId: 0x15;
  readonly Fetch: 0x16;
  readonly FetchCancel: 0x17;
  readonly FetchOk: 0x18;
  readonly FetchError: 0x19;
  readonly RequestsBlocked: 0x1a;
  readonly Publish: 0x1d;
  readonly PublishOk: 0x1e;
  readonly PublishError: 0x1f;
} = {
  RequestUpdate: 0x02,
  Subscribe: 0x03,
  SubscribeOk: 0x04,
  RequestError: 0x05,
  PublishNamespace: 0x06,
  RequestOk: 0x07,
  Namespace: 0x08,
  PublishNamespaceDone: 0x09,
  Unsubscribe: 0x0a,
  PublishDone: 0x0b,
  PublishNamespaceCancel: 0x0c,
  TrackStatus: 0x0d,
  NamespaceDone: 0x0e,
  PublishBlocked: 0x0f,
  Goaway: 0x10,
  SubscribeNamespace: 0x11,
  SubscribeNamespaceOk: 0x12,
  SubscribeNamespaceError: 0x13,
  UnsubscribeNamespace: 0x14,
  MaxRequestId: 0x15,
  Fetch: 0x16,
  FetchCancel: 0x17,
  FetchOk: 0x18,
  FetchError: 0x19,
  RequestsBlocked: 0x1a,
  Publish: 0x1d,
  PublishOk: 0x1e,
  PublishError: 0x1f,
};

/** The requests a REQUEST_OK / REQUEST_ERROR can answer (draft-14 has a message type per request). */
export type RequestKind =
  | "subscribe"
  | "publish_namespace"
  | "subscribe_namespace"
  | "fetch"
  | "track_status"
  | "publish"
  | "request_update";

/** SUBSCRIBE (and TRACK_STATUS, which has the same layout). */
export interface SubscribeMessage {
  readonly kind: "subscribe" | "track_status";
  readonly requestId: number;
  /** draft-17 only. */
  readonly requiredRequestIdDelta?: number;
  readonly namespace: readonly string[];
  readonly track: string;
  /** Subscriber priority, lower is more important (default 128). */
  readonly priority: number;
  /** 0 = publisher's order, 1 ascending, 2 descending. */
  readonly groupOrder: number;
  readonly forward: boolean;
  /** undefined = unfiltered (draft-15+ without the parameter). */
  readonly filter?: SubscriptionFilter;
}

/** SUBSCRIBE_OK (and draft-14 TRACK_STATUS_OK). */
export interface SubscribeOkMessage {
  readonly kind: "subscribe_ok" | "track_status_ok";
  /** drafts 14 to 16. */
  readonly requestId?: number;
  readonly trackAlias: number;
  /** Milliseconds until the subscription expires, 0 = unknown. */
  readonly expires: number;
  readonly groupOrder: number;
  /** The largest object published so far, if any. */
  readonly largest?: IetfLocation;
}

/** REQUEST_ERROR, or in draft-14 the error message of the request kind. */
export interface RequestErrorMessage {
  readonly kind: "request_error";
  /**
   * The kind of request answered. Needed to encode draft-14 (one error message per request
   * kind); decoded only from draft-14, where the message type tells it.
   */
  readonly answers?: RequestKind;
  readonly requestId?: number;
  readonly code: number;
  /** Milliseconds before retrying, plus one; 0 = do not retry (draft-16+). */
  readonly retryInterval: number;
  readonly reason: string;
}

/** REQUEST_OK, or in draft-14 PUBLISH_NAMESPACE_OK / SUBSCRIBE_NAMESPACE_OK. */
export interface RequestOkMessage {
  readonly kind: "request_ok";
  /** As for {@link RequestErrorMessage.answers}. */
  readonly answers?: RequestKind;
  readonly requestId?: number;
  readonly parameters: MessageParameters;
}

/** SUBSCRIBE_UPDATE (draft-14, 15) / REQUEST_UPDATE (16, 17). */
export interface RequestUpdateMessage {
  readonly kind: "request_update";
  readonly requestId: number;
  /** The request being updated (drafts 14 to 16; draft-17 sends it on the request's stream). */
  readonly existingRequestId?: number;
  readonly requiredRequestIdDelta?: number;
  /** draft-14 fields. */
  readonly start?: IetfLocation;
  /** draft-14: end group + 1, 0 = open ended. */
  readonly endGroupPlusOne?: number;
  readonly priority?: number;
  readonly forward?: boolean;
  readonly filter?: SubscriptionFilter;
}

/** UNSUBSCRIBE (drafts 14 to 16). */
export interface UnsubscribeMessage {
  readonly kind: "unsubscribe";
  readonly requestId: number;
}

/** PUBLISH_DONE: the publisher ended a subscription. */
export interface PublishDoneMessage {
  readonly kind: "publish_done";
  readonly requestId?: number;
  readonly status: number;
  /** Data streams opened for the subscription; 2^62-1 when unknown. */
  readonly streamCount: bigint;
  readonly reason: string;
}

/** PUBLISH_NAMESPACE: the sender has tracks under a namespace. */
export interface PublishNamespaceMessage {
  readonly kind: "publish_namespace";
  readonly requestId: number;
  readonly requiredRequestIdDelta?: number;
  readonly namespace: readonly string[];
}

/** PUBLISH_NAMESPACE_DONE: by namespace (drafts 14, 15) or Request ID (16). */
export interface PublishNamespaceDoneMessage {
  readonly kind: "publish_namespace_done";
  readonly namespace?: readonly string[];
  readonly requestId?: number;
}

/** PUBLISH_NAMESPACE_CANCEL: the receiver revokes a PUBLISH_NAMESPACE (drafts 14 to 16). */
export interface PublishNamespaceCancelMessage {
  readonly kind: "publish_namespace_cancel";
  readonly namespace?: readonly string[];
  readonly requestId?: number;
  readonly code: number;
  readonly reason: string;
}

/** NAMESPACE / NAMESPACE_DONE on a SUBSCRIBE_NAMESPACE stream (draft-16+). */
export interface NamespaceEntryMessage {
  readonly kind: "namespace" | "namespace_done";
  readonly suffix: readonly string[];
}

/** PUBLISH_BLOCKED on a SUBSCRIBE_NAMESPACE stream (draft-17). */
export interface PublishBlockedMessage {
  readonly kind: "publish_blocked";
  readonly suffix: readonly string[];
  readonly track: string;
}

/** SUBSCRIBE_NAMESPACE: announce everything under a prefix. */
export interface SubscribeNamespaceMessage {
  readonly kind: "subscribe_namespace";
  readonly requestId: number;
  readonly requiredRequestIdDelta?: number;
  readonly prefix: readonly string[];
  /** draft-16+: 0 PUBLISH, 1 NAMESPACE, 2 both. */
  readonly options: number;
}

/** UNSUBSCRIBE_NAMESPACE (drafts 14, 15), by Request ID as the official clients send it. */
export interface UnsubscribeNamespaceMessage {
  readonly kind: "unsubscribe_namespace";
  readonly requestId: number;
}

/** FETCH: standalone (type 1) or joining an existing subscription (2 relative, 3 absolute). */
export interface FetchMessage {
  readonly kind: "fetch";
  readonly requestId: number;
  readonly requiredRequestIdDelta?: number;
  readonly priority: number;
  readonly groupOrder: number;
  readonly fetch:
    | {
        readonly type: 1;
        readonly namespace: readonly string[];
        readonly track: string;
        readonly start: IetfLocation;
        readonly end: IetfLocation;
      }
    | { readonly type: 2 | 3; readonly joiningRequestId: number; readonly joiningStart: number };
}

/** FETCH_OK. */
export interface FetchOkMessage {
  readonly kind: "fetch_ok";
  readonly requestId?: number;
  /** draft-14 field. */
  readonly groupOrder: number;
  readonly endOfTrack: boolean;
  readonly end: IetfLocation;
}

/** FETCH_CANCEL (drafts 14 to 16). */
export interface FetchCancelMessage {
  readonly kind: "fetch_cancel";
  readonly requestId: number;
}

/** PUBLISH: the publisher starts a subscription itself. */
export interface PublishMessage {
  readonly kind: "publish";
  readonly requestId: number;
  readonly requiredRequestIdDelta?: number;
  readonly namespace: readonly string[];
  readonly track: string;
  readonly trackAlias: number;
  readonly groupOrder: number;
  readonly largest?: IetfLocation;
  readonly forward: boolean;
}

/** GOAWAY: the sender will close the session; a server may name a new URI. */
export interface GoawayMessage {
  readonly kind: "goaway";
  readonly uri: string;
  /** draft-17: milliseconds before the sender closes the session. */
  readonly timeoutMs: number;
}

/** MAX_REQUEST_ID (drafts 14 to 16): the peer may use Request IDs below this value. */
export interface MaxRequestIdMessage {
  readonly kind: "max_request_id";
  readonly maxRequestId: number;
}

/** REQUESTS_BLOCKED (drafts 14 to 16). */
export interface RequestsBlockedMessage {
  readonly kind: "requests_blocked";
  readonly maxRequestId: number;
}

/** Every control message this package encodes and decodes. */
export type IetfMessage =
  | SubscribeMessage
  | SubscribeOkMessage
  | RequestErrorMessage
  | RequestOkMessage
  | RequestUpdateMessage
  | UnsubscribeMessage
  | PublishDoneMessage
  | PublishNamespaceMessage
  | PublishNamespaceDoneMessage
  | PublishNamespaceCancelMessage
  | NamespaceEntryMessage
  | PublishBlockedMessage
  | SubscribeNamespaceMessage
  | UnsubscribeNamespaceMessage
  | FetchMessage
  | FetchOkMessage
  | FetchCancelMessage
  | PublishMessage
  | GoawayMessage
  | MaxRequestIdMessage
  | RequestsBlockedMessage;

/** Longest GOAWAY URI. */
export const MAX_IETF_GOAWAY_URI_BYTES = 8192;

const DRAFT14_ERROR_TYPES: Readonly<Record<RequestKind, number | undefined>> = {
  subscribe: IetfMessageType.RequestError,
  publish_namespace: IetfMessageType.Namespace,
  subscribe_namespace: IetfMessageType.SubscribeNamespaceError,
  fetch: IetfMessageType.FetchError,
  track_status: IetfMessageType.PublishBlocked,
  publish: IetfMessageType.PublishError,
  request_update: undefined,
};

/** The message type `msg` is sent with in `version`. */
export function messageTypeOf(msg: IetfMessage, version: IetfVersion): number {
  const d14 = isDraft14(version);
  switch (msg.kind) {
    case "subscribe":
      return IetfMessageType.Subscribe;
    case "track_status":
      return IetfMessageType.TrackStatus;
    case "subscribe_ok":
      return IetfMessageType.SubscribeOk;
    case "track_status_ok":
      return IetfMessageType.NamespaceDone;
    case "request_error": {
      if (!d14) return IetfMessageType.RequestError;
      const type = msg.answers === undefined ? undefined : DRAFT14_ERROR_TYPES[msg.answers];
      if (type === undefined) throw new RangeError(`draft-14 has no error message for ${msg.answers}`);
      return type;
    }
    case "request_ok":
      if (!d14) return IetfMessageType.RequestOk;
      if (msg.answers === "publish_namespace") return IetfMessageType.RequestOk;
      if (msg.answers === "subscribe_namespace") return IetfMessageType.SubscribeNamespaceOk;
      throw new RangeError(`draft-14 has no OK message for ${msg.answers}`);
    case "request_update":
      return IetfMessageType.RequestUpdate;
    case "unsubscribe":
      return IetfMessageType.Unsubscribe;
    case "publish_done":
      return IetfMessageType.PublishDone;
    case "publish_namespace":
      return IetfMessageType.PublishNamespace;
    case "publish_namespace_done":
      return IetfMessageType.PublishNamespaceDone;
    case "publish_namespace_cancel":
      return IetfMessageType.PublishNamespaceCancel;
    case "namespace":
      return IetfMessageType.Namespace;
    case "namespace_done":
      return IetfMessageType.NamespaceDone;
    case "publish_blocked":
      return IetfMessageType.PublishBlocked;
    case "subscribe_namespace":
      return IetfMessageType.SubscribeNamespace;
    case "unsubscribe_namespace":
      return IetfMessageType.UnsubscribeNamespace;
    case "fetch":
      return IetfMessageType.Fetch;
    case "fetch_ok":
      return IetfMessageType.FetchOk;
    case "fetch_cancel":
      return IetfMessageType.FetchCancel;
    case "publish":
      return IetfMessageType.Publish;
    case "goaway":
      return IetfMessageType.Goaway;
    case "max_request_id":
      return IetfMessageType.MaxRequestId;
    case "requests_blocked":
      return IetfMessageType.RequestsBlocked;
  }
}

function unsupported(what: string, version: IetfVersion): never {
  throw new RangeError(`${what} does not exist in draft-${version - 0xff000000}`);
}

const has17 = (version: IetfVersion): boolean => version === Versions.Draft17;
const upTo16 = (version: IetfVersion): boolean => version !== Versions.Draft17;

// ---- encoders ----

function writeRequestHeader(
  sink: IetfSink,
  requestId: number,
  delta: number | undefined,
  version: IetfVersion,
): void {
  sink.varint(requestId);
  if (has17(version)) sink.varint(delta ?? 0);
}

function writeResponseId(
  sink: IetfSink,
  requestId: number | undefined,
  version: IetfVersion,
  what: string,
): void {
  if (has17(version)) return;
  if (requestId === undefined) throw new RangeError(`${what} needs a Request ID in drafts 14 to 16`);
  sink.varint(requestId);
}

function subscribeParameters(msg: SubscribeMessage): MessageParameters {
  const params: MessageParameters = {
    subscriberPriority: msg.priority,
    forward: msg.forward,
    ...(msg.groupOrder !== IetfGroupOrder.Publisher ? { groupOrder: msg.groupOrder } : {}),
    ...(msg.filter ? { filter: msg.filter } : {}),
  };
  return params;
}

function writeBody(sink: IetfSink, msg: IetfMessage, version: IetfVersion, encoded: Encoded): void {
  const d14 = isDraft14(version);
  switch (msg.kind) {
    case "subscribe":
    case "track_status":
      writeRequestHeader(sink, msg.requestId, msg.requiredRequestIdDelta, version);
      writeNamespace(sink, encoded.namespace!);
      sink.lengthPrefixed(encoded.text!);
      if (d14) {
        sink
          .u8(msg.priority)
          .u8(msg.groupOrder)
          .u8(msg.forward ? 1 : 0);
        writeFilter(sink, msg.filter ?? { type: 2 }, version);
        sink.varint(0);
      } else {
        writeMessageParameters(sink, subscribeParameters(msg), version);
      }
      return;
    case "subscribe_ok":
    case "track_status_ok":
      writeResponseId(sink, msg.requestId, version, "SUBSCRIBE_OK");
      sink.varint(msg.trackAlias);
      if (d14) {
        sink
          .varint(msg.expires)
          .u8(msg.groupOrder)
          .u8(msg.largest ? 1 : 0);
        if (msg.largest) sink.varint(msg.largest.group).varint(msg.largest.object);
        sink.varint(0);
      } else {
        writeMessageParameters(
          sink,
          {
            ...(msg.expires ? { expires: msg.expires } : {}),
            ...(msg.largest ? { largest: msg.largest } : {}),
            ...(version === Versions.Draft15 && msg.groupOrder ? { groupOrder: msg.groupOrder } : {}),
          },
          version,
        );
      }
      return;
    case "request_error":
      writeResponseId(sink, msg.requestId, version, "REQUEST_ERROR");
      sink.varint(msg.code);
      if (version === Versions.Draft16 || has17(version)) sink.varint(msg.retryInterval);
      writeReason(sink, msg.reason);
      return;
    case "request_ok":
      writeResponseId(sink, msg.requestId, version, "REQUEST_OK");
      if (!d14) writeMessageParameters(sink, msg.parameters, version);
      return;
    case "request_update":
      if (d14) {
        sink
          .varint(msg.requestId)
          .varint(msg.existingRequestId ?? unsupported("SUBSCRIBE_UPDATE without a subscription", version));
        sink.varint(msg.start?.group ?? 0).varint(msg.start?.object ?? 0);
        sink
          .varint(msg.endGroupPlusOne ?? 0)
          .u8(msg.priority ?? 128)
          .u8(msg.forward === false ? 0 : 1);
        sink.varint(0);
      } else {
        if (has17(version)) writeRequestHeader(sink, msg.requestId, msg.requiredRequestIdDelta, version);
        else
          sink
            .varint(msg.requestId)
            .varint(msg.existingRequestId ?? unsupported("REQUEST_UPDATE without a request", version));
        writeMessageParameters(
          sink,
          {
            ...(msg.priority !== undefined ? { subscriberPriority: msg.priority } : {}),
            ...(msg.forward !== undefined ? { forward: msg.forward } : {}),
            ...(msg.filter ? { filter: msg.filter } : {}),
          },
          version,
        );
      }
      return;
    case "unsubscribe":
    case "fetch_cancel":
    case "unsubscribe_namespace":
      sink.varint(msg.requestId);
      return;
    case "publish_done":
      writeResponseId(sink, msg.requestId, version, "PUBLISH_DONE");
      sink.varint(msg.status).varintBig(msg.streamCount);
      writeReason(sink, msg.reason);
      return;
    case "publish_namespace":
      writeRequestHeader(sink, msg.requestId, msg.requiredRequestIdDelta, version);
      writeNamespace(sink, encoded.namespace!);
      sink.varint(0);
      return;
    case "publish_namespace_done":
      if (usesNamespaceKeys(version)) writeNamespace(sink, encoded.namespace!);
      else sink.varint(msg.requestId ?? unsupported("PUBLISH_NAMESPACE_DONE without a Request ID", version));
      return;
    case "publish_namespace_cancel":
      if (usesNamespaceKeys(version)) writeNamespace(sink, encoded.namespace!);
      else
        sink.varint(msg.requestId ?? unsupported("PUBLISH_NAMESPACE_CANCEL without a Request ID", version));
      sink.varint(msg.code);
      writeReason(sink, msg.reason);
      return;
    case "namespace":
    case "namespace_done":
      writeNamespace(sink, encoded.namespace!);
      return;
    case "publish_blocked":
      writeNamespace(sink, encoded.namespace!);
      sink.lengthPrefixed(encoded.text!);
      return;
    case "subscribe_namespace":
      writeRequestHeader(sink, msg.requestId, msg.requiredRequestIdDelta, version);
      writeNamespace(sink, encoded.namespace!);
      if (version === Versions.Draft16 || has17(version)) sink.varint(msg.options);
      sink.varint(0);
      return;
    case "fetch": {
      writeRequestHeader(sink, msg.requestId, msg.requiredRequestIdDelta, version);
      if (d14) sink.u8(msg.priority).u8(msg.groupOrder);
      const fetch = msg.fetch;
      sink.varint(fetch.type);
      if (fetch.type === 1) {
        writeNamespace(sink, encoded.namespace!);
        sink.lengthPrefixed(encoded.text!);
        sink.varint(fetch.start.group).varint(fetch.start.object);
        sink.varint(fetch.end.group).varint(fetch.end.object);
      } else {
        sink.varint(fetch.joiningRequestId).varint(fetch.joiningStart);
      }
      if (d14) sink.varint(0);
      else
        writeMessageParameters(
          sink,
          {
            subscriberPriority: msg.priority,
            ...(msg.groupOrder !== IetfGroupOrder.Publisher ? { groupOrder: msg.groupOrder } : {}),
          },
          version,
        );
      return;
    }
    case "fetch_ok":
      writeResponseId(sink, msg.requestId, version, "FETCH_OK");
      if (d14) sink.u8(msg.groupOrder);
      sink
        .u8(msg.endOfTrack ? 1 : 0)
        .varint(msg.end.group)
        .varint(msg.end.object);
      sink.varint(0);
      return;
    case "publish":
      writeRequestHeader(sink, msg.requestId, msg.requiredRequestIdDelta, version);
      writeNamespace(sink, encoded.namespace!);
      sink.lengthPrefixed(encoded.text!);
      sink.varint(msg.trackAlias);
      if (d14) {
        sink.u8(msg.groupOrder).u8(msg.largest ? 1 : 0);
        if (msg.largest) sink.varint(msg.largest.group).varint(msg.largest.object);
        sink.u8(msg.forward ? 1 : 0).varint(0);
      } else {
        writeMessageParameters(
          sink,
          {
            forward: msg.forward,
            ...(msg.largest ? { largest: msg.largest } : {}),
            ...(version === Versions.Draft15 ? { groupOrder: msg.groupOrder } : {}),
          },
          version,
        );
      }
      return;
    case "goaway":
      sink.lengthPrefixed(encoded.text!);
      if (has17(version)) sink.varint(msg.timeoutMs);
      return;
    case "max_request_id":
    case "requests_blocked":
      sink.varint(msg.maxRequestId);
      return;
  }
}

interface Encoded {
  readonly namespace?: readonly Uint8Array[];
  readonly text?: Uint8Array;
}

function checkVersion(msg: IetfMessage, version: IetfVersion): void {
  switch (msg.kind) {
    case "unsubscribe":
    case "fetch_cancel":
    case "max_request_id":
    case "requests_blocked":
    case "publish_namespace_done":
    case "publish_namespace_cancel":
      if (!upTo16(version)) unsupported(msg.kind.toUpperCase(), version);
      return;
    case "unsubscribe_namespace":
      if (!usesNamespaceKeys(version)) unsupported("UNSUBSCRIBE_NAMESPACE", version);
      return;
    case "namespace":
    case "namespace_done":
      if (version === Versions.Draft14 || version === Versions.Draft15)
        unsupported(msg.kind.toUpperCase(), version);
      return;
    case "publish_blocked":
      if (!has17(version)) unsupported("PUBLISH_BLOCKED", version);
      return;
    case "track_status_ok":
      if (!isDraft14(version)) unsupported("TRACK_STATUS_OK", version);
      return;
    default:
      return;
  }
}

/** Encodes `msg` as a control message (type, u16 length, payload) in `version`'s layout. */
export function encodeIetfMessage(msg: IetfMessage, version: IetfVersion): Uint8Array {
  checkVersion(msg, version);
  const encoded: Encoded = encodedStrings(msg);
  return encodeControlMessage(messageTypeOf(msg, version), version, (sink) =>
    writeBody(sink, msg, version, encoded),
  );
}

function encodedStrings(msg: IetfMessage): Encoded {
  switch (msg.kind) {
    case "subscribe":
    case "track_status":
    case "publish":
      return { namespace: encodeNamespace(msg.namespace), text: utf8(msg.track) };
    case "publish_namespace":
      return { namespace: encodeNamespace(msg.namespace) };
    case "publish_namespace_done":
    case "publish_namespace_cancel":
      return msg.namespace ? { namespace: encodeNamespace(msg.namespace) } : {};
    case "namespace":
    case "namespace_done":
      return { namespace: encodeNamespace(msg.suffix) };
    case "publish_blocked":
      return { namespace: encodeNamespace(msg.suffix), text: utf8(msg.track) };
    case "subscribe_namespace":
      return { namespace: encodeNamespace(msg.prefix) };
    case "fetch":
      return msg.fetch.type === 1
        ? { namespace: encodeNamespace(msg.fetch.namespace), text: utf8(msg.fetch.track) }
        : {};
    case "goaway": {
      const uri = utf8(msg.uri);
      if (uri.byteLength > MAX_IETF_GOAWAY_URI_BYTES)
        throw new RangeError(`GOAWAY URI is longer than ${MAX_IETF_GOAWAY_URI_BYTES} bytes`);
      return { text: uri };
    }
    default:
      return {};
  }
}

// ---- decoders ----

function readRequestHeader(
  r: IetfReader,
  version: IetfVersion,
): { requestId: number; requiredRequestIdDelta?: number } {
  const requestId = r.varint("request id");
  if (!has17(version)) return { requestId };
  const requiredRequestIdDelta = r.varint("required request id delta");
  if (requiredRequestIdDelta * 2 > requestId) {
    throw new ProtocolViolationError(
      `required request id delta ${requiredRequestIdDelta} reaches before request id 0 (request id ${requestId})`,
    );
  }
  return { requestId, requiredRequestIdDelta };
}

function readResponseId(r: IetfReader, version: IetfVersion): number | undefined {
  return has17(version) ? undefined : r.varint("request id");
}

/** Skips Track Extensions (draft-16) / Track Properties (draft-17): key-value pairs to the end. */
function skipTrackProperties(r: IetfReader, version: IetfVersion): void {
  if (version === Versions.Draft16 || has17(version))
    readKeyValuePairs(r, "track property", undefined, () => false);
}

function decodeSubscribe(
  r: IetfReader,
  kind: "subscribe" | "track_status",
  layout: ParameterLayout,
): SubscribeMessage {
  const version = r.version;
  const header = readRequestHeader(r, version);
  const { namespace, track } = r.fullTrackName();
  if (isDraft14(version)) {
    const priority = r.u8("subscriber priority");
    const groupOrder = r.u8("group order");
    if (groupOrder > 2)
      throw new ProtocolViolationError(`SUBSCRIBE: group order ${groupOrder} is not 0, 1 or 2`);
    const forward = r.bool("forward");
    const filter = readFilter(r, "SUBSCRIBE");
    readMessageParameters(r, "SUBSCRIBE");
    return { kind, ...header, namespace, track, priority, groupOrder, forward, filter };
  }
  const params = readMessageParameters(r, "SUBSCRIBE", layout);
  return {
    kind,
    ...header,
    namespace,
    track,
    priority: params.subscriberPriority ?? 128,
    groupOrder: params.groupOrder ?? IetfGroupOrder.Publisher,
    forward: params.forward ?? true,
    ...(params.filter ? { filter: params.filter } : {}),
  };
}

function decodeSubscribeOk(
  r: IetfReader,
  kind: "subscribe_ok" | "track_status_ok",
  layout: ParameterLayout,
): SubscribeOkMessage {
  const version = r.version;
  const requestId = readResponseId(r, version);
  const trackAlias = r.varint("track alias");
  if (isDraft14(version)) {
    const expires = r.varint("expires");
    const groupOrder = r.u8("group order");
    if (groupOrder > 2)
      throw new ProtocolViolationError(`SUBSCRIBE_OK: group order ${groupOrder} is not 0, 1 or 2`);
    const exists = r.bool("content exists");
    const largest = exists ? r.location("largest location") : undefined;
    readMessageParameters(r, "SUBSCRIBE_OK");
    return { kind, requestId, trackAlias, expires, groupOrder, ...(largest ? { largest } : {}) };
  }
  const params = readMessageParameters(r, "SUBSCRIBE_OK", layout);
  skipTrackProperties(r, version);
  return {
    kind,
    ...(requestId !== undefined ? { requestId } : {}),
    trackAlias,
    expires: params.expires ?? 0,
    groupOrder: params.groupOrder ?? IetfGroupOrder.Publisher,
    ...(params.largest ? { largest: params.largest } : {}),
  };
}

function decodeRequestError(r: IetfReader, answers: RequestKind | undefined): RequestErrorMessage {
  const version = r.version;
  const requestId = readResponseId(r, version);
  const code = r.varint("error code");
  const retryInterval = version === Versions.Draft16 || has17(version) ? r.varint("retry interval") : 0;
  const reason = r.reason();
  return {
    kind: "request_error",
    ...(answers ? { answers } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    code,
    retryInterval,
    reason,
  };
}

function decodeRequestOk(
  r: IetfReader,
  answers: RequestKind | undefined,
  layout: ParameterLayout,
): RequestOkMessage {
  const version = r.version;
  const requestId = readResponseId(r, version);
  const parameters = isDraft14(version) ? {} : readMessageParameters(r, "REQUEST_OK", layout);
  return {
    kind: "request_ok",
    ...(answers ? { answers } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    parameters,
  };
}

function decodeRequestUpdate(r: IetfReader, layout: ParameterLayout): RequestUpdateMessage {
  const version = r.version;
  if (isDraft14(version)) {
    const requestId = r.varint("request id");
    const existingRequestId = r.varint("subscription request id");
    const start = r.location("start location");
    const endGroupPlusOne = r.varint("end group");
    const priority = r.u8("subscriber priority");
    const forward = r.bool("forward");
    readMessageParameters(r, "SUBSCRIBE_UPDATE");
    return {
      kind: "request_update",
      requestId,
      existingRequestId,
      start,
      endGroupPlusOne,
      priority,
      forward,
    };
  }
  const header = has17(version)
    ? readRequestHeader(r, version)
    : { requestId: r.varint("request id"), existingRequestId: r.varint("existing request id") };
  const params = readMessageParameters(r, "REQUEST_UPDATE", layout);
  return {
    kind: "request_update",
    ...header,
    ...(params.subscriberPriority !== undefined ? { priority: params.subscriberPriority } : {}),
    ...(params.forward !== undefined ? { forward: params.forward } : {}),
    ...(params.filter ? { filter: params.filter } : {}),
  };
}

function decodePublishDone(r: IetfReader): PublishDoneMessage {
  const requestId = readResponseId(r, r.version);
  const status = r.varint("status code");
  const streamCount = r.varintBig("stream count");
  const reason = r.reason();
  return {
    kind: "publish_done",
    ...(requestId !== undefined ? { requestId } : {}),
    status,
    streamCount,
    reason,
  };
}

function decodePublishNamespace(r: IetfReader, layout: ParameterLayout): PublishNamespaceMessage {
  const header = readRequestHeader(r, r.version);
  const namespace = r.namespace();
  readMessageParameters(r, "PUBLISH_NAMESPACE", layout);
  return { kind: "publish_namespace", ...header, namespace };
}

function decodeSubscribeNamespace(r: IetfReader, layout: ParameterLayout): SubscribeNamespaceMessage {
  const version = r.version;
  const header = readRequestHeader(r, version);
  const prefix = r.namespace("track namespace prefix");
  let options = 1;
  if (version === Versions.Draft16 || has17(version)) {
    options = r.varint("subscribe options");
    if (options > 2)
      throw new ProtocolViolationError(`SUBSCRIBE_NAMESPACE: subscribe options ${options} is not 0, 1 or 2`);
  }
  readMessageParameters(r, "SUBSCRIBE_NAMESPACE", layout);
  return { kind: "subscribe_namespace", ...header, prefix, options };
}

function decodeFetch(r: IetfReader, layout: ParameterLayout): FetchMessage {
  const version = r.version;
  const header = readRequestHeader(r, version);
  let priority = 128;
  let groupOrder: number = IetfGroupOrder.Publisher;
  if (isDraft14(version)) {
    priority = r.u8("subscriber priority");
    groupOrder = r.u8("group order");
    if (groupOrder > 2) throw new ProtocolViolationError(`FETCH: group order ${groupOrder} is not 0, 1 or 2`);
  }
  const type = r.varint("fetch type");
  let fetch: FetchMessage["fetch"];
  if (type === 1) {
    const { namespace, track } = r.fullTrackName();
    const start = r.location("start location");
    const end = r.location("end location");
    fetch = { type, namespace, track, start, end };
  } else if (type === 2 || type === 3) {
    fetch = {
      type,
      joiningRequestId: r.varint("joining request id"),
      joiningStart: r.varint("joining start"),
    };
  } else {
    throw new ProtocolViolationError(`FETCH: unknown fetch type ${type}`);
  }
  const params = readMessageParameters(r, "FETCH", layout);
  if (!isDraft14(version)) {
    priority = params.subscriberPriority ?? 128;
    groupOrder = params.groupOrder ?? IetfGroupOrder.Publisher;
  }
  return { kind: "fetch", ...header, priority, groupOrder, fetch };
}

function decodeFetchOk(r: IetfReader, layout: ParameterLayout): FetchOkMessage {
  const version = r.version;
  const requestId = readResponseId(r, version);
  let groupOrder: number = IetfGroupOrder.Publisher;
  if (isDraft14(version)) groupOrder = r.u8("group order");
  const endOfTrack = r.bool("end of track");
  const end = r.location("end location");
  readMessageParameters(r, "FETCH_OK", layout);
  skipTrackProperties(r, version);
  return { kind: "fetch_ok", ...(requestId !== undefined ? { requestId } : {}), groupOrder, endOfTrack, end };
}

function decodePublish(r: IetfReader, layout: ParameterLayout): PublishMessage {
  const version = r.version;
  const header = readRequestHeader(r, version);
  const { namespace, track } = r.fullTrackName();
  const trackAlias = r.varint("track alias");
  if (isDraft14(version)) {
    const groupOrder = r.u8("group order");
    const exists = r.bool("content exists");
    const largest = exists ? r.location("largest location") : undefined;
    const forward = r.bool("forward");
    readMessageParameters(r, "PUBLISH");
    return {
      kind: "publish",
      ...header,
      namespace,
      track,
      trackAlias,
      groupOrder,
      forward,
      ...(largest ? { largest } : {}),
    };
  }
  const params = readMessageParameters(r, "PUBLISH", layout);
  skipTrackProperties(r, version);
  return {
    kind: "publish",
    ...header,
    namespace,
    track,
    trackAlias,
    groupOrder: params.groupOrder ?? IetfGroupOrder.Descending,
    forward: params.forward ?? true,
    ...(params.largest ? { largest: params.largest } : {}),
  };
}

function decodeBody(type: number, r: IetfReader, layout: ParameterLayout): IetfMessage {
  const version = r.version;
  const d14 = isDraft14(version);
  const nsKeys = usesNamespaceKeys(version);
  switch (type) {
    case IetfMessageType.RequestUpdate:
      return decodeRequestUpdate(r, layout);
    case IetfMessageType.Subscribe:
      return decodeSubscribe(r, "subscribe", layout);
    case IetfMessageType.SubscribeOk:
      return decodeSubscribeOk(r, "subscribe_ok", layout);
    case IetfMessageType.RequestError:
      // The request kind of a draft-15+ REQUEST_ERROR is known only to whoever sent the request.
      return decodeRequestError(r, d14 ? "subscribe" : undefined);
    case IetfMessageType.PublishNamespace:
      return decodePublishNamespace(r, layout);
    case IetfMessageType.RequestOk:
      return decodeRequestOk(r, d14 ? "publish_namespace" : undefined, layout);
    case IetfMessageType.Namespace:
      if (d14) return decodeRequestError(r, "publish_namespace");
      if (version === Versions.Draft15) break;
      return { kind: "namespace", suffix: r.namespace("track namespace suffix") };
    case IetfMessageType.PublishNamespaceDone:
      if (!upTo16(version)) break;
      return nsKeys
        ? { kind: "publish_namespace_done", namespace: r.namespace() }
        : { kind: "publish_namespace_done", requestId: r.varint("request id") };
    case IetfMessageType.Unsubscribe:
      if (!upTo16(version)) break;
      return { kind: "unsubscribe", requestId: r.varint("request id") };
    case IetfMessageType.PublishDone:
      return decodePublishDone(r);
    case IetfMessageType.PublishNamespaceCancel: {
      if (!upTo16(version)) break;
      const key = nsKeys ? { namespace: r.namespace() } : { requestId: r.varint("request id") };
      const code = r.varint("error code");
      return { kind: "publish_namespace_cancel", ...key, code, reason: r.reason() };
    }
    case IetfMessageType.TrackStatus:
      return decodeSubscribe(r, "track_status", layout);
    case IetfMessageType.NamespaceDone:
      if (d14) return decodeSubscribeOk(r, "track_status_ok", layout);
      if (version === Versions.Draft15) break;
      return { kind: "namespace_done", suffix: r.namespace("track namespace suffix") };
    case IetfMessageType.PublishBlocked:
      if (d14) return decodeRequestError(r, "track_status");
      if (!has17(version)) break;
      return {
        kind: "publish_blocked",
        suffix: r.namespace("track namespace suffix"),
        track: r.string("track name", 4096),
      };
    case IetfMessageType.Goaway: {
      const uri = r.string("new session uri", MAX_IETF_GOAWAY_URI_BYTES);
      const timeoutMs = has17(version) ? r.varint("timeout") : 0;
      return { kind: "goaway", uri, timeoutMs };
    }
    case IetfMessageType.SubscribeNamespace:
      return decodeSubscribeNamespace(r, layout);
    case IetfMessageType.SubscribeNamespaceOk:
      if (!d14) break;
      return decodeRequestOk(r, "subscribe_namespace", layout);
    case IetfMessageType.SubscribeNamespaceError:
      if (!d14) break;
      return decodeRequestError(r, "subscribe_namespace");
    case IetfMessageType.UnsubscribeNamespace:
      if (!nsKeys) break;
      return { kind: "unsubscribe_namespace", requestId: r.varint("request id") };
    case IetfMessageType.MaxRequestId:
      if (!upTo16(version)) break;
      return { kind: "max_request_id", maxRequestId: r.varint("maximum request id") };
    case IetfMessageType.Fetch:
      return decodeFetch(r, layout);
    case IetfMessageType.FetchCancel:
      if (!upTo16(version)) break;
      return { kind: "fetch_cancel", requestId: r.varint("request id") };
    case IetfMessageType.FetchOk:
      return decodeFetchOk(r, layout);
    case IetfMessageType.FetchError:
      if (!d14) break;
      return decodeRequestError(r, "fetch");
    case IetfMessageType.RequestsBlocked:
      if (!upTo16(version)) break;
      return { kind: "requests_blocked", maxRequestId: r.varint("maximum request id") };
    case IetfMessageType.Publish:
      return decodePublish(r, layout);
    case IetfMessageType.PublishError:
      if (!d14) break;
      return decodeRequestError(r, "publish");
  }
  throw new ProtocolViolationError(
    `control message type 0x${type.toString(16)} does not exist in draft-${version - 0xff000000}`,
    "MOQ_PROTOCOL_VIOLATION",
  );
}

const NAMES: Readonly<Record<number, string>> = {
  [IetfMessageType.RequestUpdate]: "REQUEST_UPDATE",
  [IetfMessageType.Subscribe]: "SUBSCRIBE",
  [IetfMessageType.SubscribeOk]: "SUBSCRIBE_OK",
  [IetfMessageType.RequestError]: "REQUEST_ERROR",
  [IetfMessageType.PublishNamespace]: "PUBLISH_NAMESPACE",
  [IetfMessageType.RequestOk]: "REQUEST_OK",
  [IetfMessageType.Namespace]: "NAMESPACE",
  [IetfMessageType.PublishNamespaceDone]: "PUBLISH_NAMESPACE_DONE",
  [IetfMessageType.Unsubscribe]: "UNSUBSCRIBE",
  [IetfMessageType.PublishDone]: "PUBLISH_DONE",
  [IetfMessageType.PublishNamespaceCancel]: "PUBLISH_NAMESPACE_CANCEL",
  [IetfMessageType.TrackStatus]: "TRACK_STATUS",
  [IetfMessageType.NamespaceDone]: "NAMESPACE_DONE",
  [IetfMessageType.PublishBlocked]: "PUBLISH_BLOCKED",
  [IetfMessageType.Goaway]: "GOAWAY",
  [IetfMessageType.SubscribeNamespace]: "SUBSCRIBE_NAMESPACE",
  [IetfMessageType.SubscribeNamespaceOk]: "SUBSCRIBE_NAMESPACE_OK",
  [IetfMessageType.SubscribeNamespaceError]: "SUBSCRIBE_NAMESPACE_ERROR",
  [IetfMessageType.UnsubscribeNamespace]: "UNSUBSCRIBE_NAMESPACE",
  [IetfMessageType.MaxRequestId]: "MAX_REQUEST_ID",
  [IetfMessageType.Fetch]: "FETCH",
  [IetfMessageType.FetchCancel]: "FETCH_CANCEL",
  [IetfMessageType.FetchOk]: "FETCH_OK",
  [IetfMessageType.FetchError]: "FETCH_ERROR",
  [IetfMessageType.RequestsBlocked]: "REQUESTS_BLOCKED",
  [IetfMessageType.Publish]: "PUBLISH",
  [IetfMessageType.PublishOk]: "PUBLISH_OK",
  [IetfMessageType.PublishError]: "PUBLISH_ERROR",
};

/** A readable name for a message type (for logs and error messages). */
export function messageTypeName(type: number): string {
  return NAMES[type] ?? `0x${type.toString(16)}`;
}

/**
 * Decodes the payload of a control message of `type`. On draft-17 a payload that does not fit
 * the key-value parameter layout the official clients write is read again with the typed layout
 * of the draft text before it is declared a violation.
 */
export function decodeIetfMessage(type: number, body: Uint8Array, version: IetfVersion): IetfMessage {
  const what = messageTypeName(type);
  try {
    const reader = new IetfReader(body, what, version);
    const msg = decodeBody(type, reader, "pairs");
    reader.finish();
    return msg;
  } catch (err) {
    if (!has17(version) || !(err instanceof ProtocolViolationError)) throw err;
    try {
      const reader = new IetfReader(body, what, version);
      const msg = decodeBody(type, reader, "typed");
      reader.finish();
      return msg;
    } catch {
      throw err;
    }
  }
}
