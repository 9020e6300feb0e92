/**
 * Message Parameters of moq-transport (the version-specific parameters of SUBSCRIBE,
 * SUBSCRIBE_OK, REQUEST_OK, FETCH, ...) and the Subscription Filter they can carry.
 *
 * Drafts 14 to 16 serialise them as key-value pairs (even type: varint value, odd type: byte
 * string), with delta-encoded types from draft-16. Draft-17's text types each parameter instead
 * (a uint8 priority is one raw byte), while the official JavaScript clients (@moq/lite 0.2.x,
 * @moq/net 0.2.x) still write draft-17 parameters as key-value pairs. Both layouts agree for
 * every value below 128, so this package writes only such values on draft-17 and reads the
 * key-value layout first, falling back to the typed layout when that does not fit the message.
 */
import { ProtocolViolationError } from "../error.ts";
import {
  encodeFields,
  type IetfLocation,
  IetfReader,
  type IetfSink,
  type KeyValuePairs,
  MAX_KEY_VALUE_BYTES,
  MAX_KEY_VALUE_PAIRS,
  readKeyValuePairs,
  writeKeyValuePairs,
} from "./codec.ts";
import { type IetfVersion, IetfVersion as Versions } from "./version.ts";

/** Message Parameter types. */
export const IetfMessageParameter: {
  readonly DeliveryTimeout: 0x02;
  readonly AuthorizationToken: 0x03;
  /** MAX_CACHE_DURATION in drafts 14 to 16, RENDEZVOUS_TIMEOUT in draft-17 (a varint either way). */
  readonly MaxCacheDuration: 0x04;
  readonly Expires: 0x08;
  readonly LargestObject: 0x09;
  readonly PublisherPriority: 0x0e;
  readonly Forward: 0x10;
  readonly SubscriberPriority: 0x20;
  readonly SubscriptionFilter: 0x21;
  readonly IetfGroupOrder: 0x22;
  readonly DynamicGroups: 0x30;
  readonly NewGroupRequest: 0x32;
} = {
  DeliveryTimeout: 0x02,
  AuthorizationToken: 0x03,
  MaxCacheDuration: 0x04,
  Expires: 0x08,
  LargestObject: 0x09,
  PublisherPriority: 0x0e,
  Forward: 0x10,
  SubscriberPriority: 0x20,
  SubscriptionFilter: 0x21,
  IetfGroupOrder: 0x22,
  DynamicGroups: 0x30,
  NewGroupRequest: 0x32,
};

/** Subscription filter types. */
export const SubscriptionFilterType: {
  readonly NextGroupStart: 0x1;
  readonly LargestObject: 0x2;
  readonly AbsoluteStart: 0x3;
  readonly AbsoluteRange: 0x4;
} = { NextGroupStart: 0x1, LargestObject: 0x2, AbsoluteStart: 0x3, AbsoluteRange: 0x4 };

/** One of the subscription filter types. */
export type SubscriptionFilterType = (typeof SubscriptionFilterType)[keyof typeof SubscriptionFilterType];

/** Which objects a subscription wants. `endGroup` is always absolute here (draft-17 sends a delta). */
export interface SubscriptionFilter {
  readonly type: SubscriptionFilterType;
  readonly start?: IetfLocation;
  readonly endGroup?: number;
}

/** Group order: 0 = the publisher's choice, 1 = ascending, 2 = descending. */
export const IetfGroupOrder: { readonly Publisher: 0; readonly Ascending: 1; readonly Descending: 2 } = {
  Publisher: 0,
  Ascending: 1,
  Descending: 2,
};

/** The decoded parameters this package understands; others are skipped. */
export interface MessageParameters {
  readonly deliveryTimeout?: number;
  readonly maxCacheDuration?: number;
  readonly expires?: number;
  readonly largest?: IetfLocation;
  readonly publisherPriority?: number;
  readonly forward?: boolean;
  readonly subscriberPriority?: number;
  readonly filter?: SubscriptionFilter;
  readonly groupOrder?: number;
  readonly dynamicGroups?: boolean;
  readonly newGroupRequest?: number;
}

/** How draft-17 parameter values are laid out (see the module comment). */
export type ParameterLayout = "pairs" | "typed";

/** Reads a Subscription Filter. */
export function readFilter(reader: IetfReader, what: string): SubscriptionFilter {
  const type = reader.varint(`${what} filter type`);
  switch (type) {
    case SubscriptionFilterType.NextGroupStart:
    case SubscriptionFilterType.LargestObject:
      return { type };
    case SubscriptionFilterType.AbsoluteStart:
      return { type, start: reader.location(`${what} filter start`) };
    case SubscriptionFilterType.AbsoluteRange: {
      const start = reader.location(`${what} filter start`);
      const end = reader.varint(`${what} filter end group`);
      const endGroup = reader.version === Versions.Draft17 ? start.group + end : end;
      if (endGroup < start.group || !Number.isSafeInteger(endGroup)) {
        throw new ProtocolViolationError(
          `${what}: filter end group ${endGroup} is before its start group ${start.group}`,
        );
      }
      return { type, start, endGroup };
    }
    default:
      throw new ProtocolViolationError(`${what}: unknown subscription filter type ${type}`);
  }
}

/** Writes a Subscription Filter. */
export function writeFilter(sink: IetfSink, filter: SubscriptionFilter, version: IetfVersion): void {
  sink.varint(filter.type);
  if (
    filter.type === SubscriptionFilterType.AbsoluteStart ||
    filter.type === SubscriptionFilterType.AbsoluteRange
  ) {
    const start = filter.start ?? { group: 0, object: 0 };
    sink.varint(start.group).varint(start.object);
    if (filter.type === SubscriptionFilterType.AbsoluteRange) {
      const end = filter.endGroup ?? start.group;
      sink.varint(version === Versions.Draft17 ? end - start.group : end);
    }
  }
}

function readPriority(value: bigint | number, what: string): number {
  if (value > 255) throw new ProtocolViolationError(`${what}: priority ${value} exceeds 255`);
  return Number(value);
}

function readFlag(value: bigint | number, what: string): boolean {
  if (value !== 0n && value !== 1n && value !== 0 && value !== 1) {
    throw new ProtocolViolationError(`${what}: must be 0 or 1, got ${value}`);
  }
  return value === 1n || value === 1;
}

function readOrder(value: bigint | number, what: string): number {
  if (value > 2) throw new ProtocolViolationError(`${what}: group order ${value} is not 0, 1 or 2`);
  return Number(value);
}

function safeNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Interprets the byte-string value of a pairs-layout parameter with the message's varint flavour. */
function nested<T>(
  value: Uint8Array,
  what: string,
  version: IetfVersion,
  read: (reader: IetfReader) => T,
): T {
  const reader = new IetfReader(value, what, version);
  const out = read(reader);
  reader.finish();
  return out;
}

function fromPairs(pairs: KeyValuePairs, what: string, version: IetfVersion): MessageParameters {
  const out: {
    -readonly [K in keyof MessageParameters]: MessageParameters[K];
  } = {};
  for (const [type, value] of pairs) {
    const name = `${what} parameter 0x${type.toString(16)}`;
    if (type % 2 === 0) {
      const number = value as bigint;
      switch (type) {
        case IetfMessageParameter.DeliveryTimeout:
          out.deliveryTimeout = safeNumber(number);
          break;
        case IetfMessageParameter.MaxCacheDuration:
          out.maxCacheDuration = safeNumber(number);
          break;
        case IetfMessageParameter.Expires:
          out.expires = safeNumber(number);
          break;
        case IetfMessageParameter.PublisherPriority:
          out.publisherPriority = readPriority(number, name);
          break;
        case IetfMessageParameter.Forward:
          out.forward = readFlag(number, name);
          break;
        case IetfMessageParameter.SubscriberPriority:
          out.subscriberPriority = readPriority(number, name);
          break;
        case IetfMessageParameter.IetfGroupOrder:
          out.groupOrder = readOrder(number, name);
          break;
        case IetfMessageParameter.DynamicGroups:
          out.dynamicGroups = readFlag(number, name);
          break;
        case IetfMessageParameter.NewGroupRequest:
          out.newGroupRequest = safeNumber(number);
          break;
      }
    } else {
      const bytes = value as Uint8Array;
      if (type === IetfMessageParameter.LargestObject) {
        out.largest = nested(bytes, name, version, (reader) => reader.location(name));
      } else if (type === IetfMessageParameter.SubscriptionFilter) {
        out.filter = nested(bytes, name, version, (reader) => readFilter(reader, name));
      }
    }
  }
  return out;
}

const repeatable = (type: number): boolean => type === IetfMessageParameter.AuthorizationToken;

/** Reads the draft-17 typed layout: every type must be known, since unknown values cannot be skipped. */
function readTyped(reader: IetfReader, what: string, count: number): MessageParameters {
  const pairs = new Map<number, bigint | Uint8Array>();
  let type = 0;
  for (let i = 0; i < count; i++) {
    type = (i === 0 ? 0 : type) + reader.varint(`${what} parameter type`);
    const name = `${what} parameter 0x${type.toString(16)}`;
    if (pairs.has(type) && !repeatable(type)) {
      throw new ProtocolViolationError(`${what}: parameter 0x${type.toString(16)} appears twice`);
    }
    switch (type) {
      case IetfMessageParameter.DeliveryTimeout:
      case IetfMessageParameter.MaxCacheDuration:
      case IetfMessageParameter.Expires:
      case IetfMessageParameter.NewGroupRequest:
        pairs.set(type, reader.varintBig(name));
        break;
      case IetfMessageParameter.PublisherPriority:
      case IetfMessageParameter.Forward:
      case IetfMessageParameter.SubscriberPriority:
      case IetfMessageParameter.IetfGroupOrder:
        pairs.set(type, BigInt(reader.u8(name)));
        break;
      case IetfMessageParameter.LargestObject: {
        const location = reader.location(name);
        // Re-encoded so the pairs interpretation below reads it like the other layout.
        pairs.set(
          type,
          encodeFields(reader.version, (sink) => sink.varint(location.group).varint(location.object)),
        );
        break;
      }
      case IetfMessageParameter.AuthorizationToken:
      case IetfMessageParameter.SubscriptionFilter:
        pairs.set(type, reader.lengthPrefixed(name, MAX_KEY_VALUE_BYTES));
        break;
      default:
        throw new ProtocolViolationError(`${what}: unknown message parameter 0x${type.toString(16)}`);
    }
  }
  return fromPairs(pairs, what, reader.version);
}

/** Reads a count-prefixed Message Parameters block. */
export function readMessageParameters(
  reader: IetfReader,
  what: string,
  layout: ParameterLayout = "pairs",
): MessageParameters {
  const count = reader.varint(`${what} parameter count`, MAX_KEY_VALUE_PAIRS);
  if (layout === "typed") return readTyped(reader, what, count);
  const pairs = readKeyValuePairs(reader, `${what} parameter`, count, (type) => !repeatable(type));
  return fromPairs(pairs, what, reader.version);
}

/** Writes a count-prefixed Message Parameters block (key-value pairs, ascending types). */
export function writeMessageParameters(
  sink: IetfSink,
  params: MessageParameters,
  version: IetfVersion,
): void {
  const pairs = new Map<number, bigint | Uint8Array>();
  const put = (type: number, value: number | boolean | undefined) => {
    if (value !== undefined) pairs.set(type, BigInt(typeof value === "boolean" ? (value ? 1 : 0) : value));
  };
  put(IetfMessageParameter.DeliveryTimeout, params.deliveryTimeout);
  put(IetfMessageParameter.MaxCacheDuration, params.maxCacheDuration);
  put(IetfMessageParameter.Expires, params.expires);
  put(IetfMessageParameter.PublisherPriority, params.publisherPriority);
  put(IetfMessageParameter.Forward, params.forward);
  put(IetfMessageParameter.SubscriberPriority, params.subscriberPriority);
  put(IetfMessageParameter.IetfGroupOrder, params.groupOrder);
  put(IetfMessageParameter.DynamicGroups, params.dynamicGroups);
  put(IetfMessageParameter.NewGroupRequest, params.newGroupRequest);
  if (params.largest) {
    const { group, object } = params.largest;
    pairs.set(
      IetfMessageParameter.LargestObject,
      encodeFields(version, (sink) => sink.varint(group).varint(object)),
    );
  }
  if (params.filter) {
    const filter = params.filter;
    pairs.set(
      IetfMessageParameter.SubscriptionFilter,
      encodeFields(version, (sink) => writeFilter(sink, filter, version)),
    );
  }
  writeKeyValuePairs(sink, version, pairs);
}

/** True when `params` would be laid out identically under both draft-17 layouts. */
export function isLayoutNeutral(params: MessageParameters): boolean {
  const small = (value: number | undefined) => value === undefined || value < 0x80;
  return (
    small(params.publisherPriority) &&
    small(params.subscriberPriority) &&
    small(params.groupOrder) &&
    params.largest === undefined
  );
}
