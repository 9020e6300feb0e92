/**
 * @lvqr/moq-lite: Media over QUIC in the moq-lite flavour, for Node.js.
 *
 * The data model is a tree of producer/consumer pairs: an {@link OriginProducer} registers live
 * broadcasts by path; a {@link BroadcastProducer} holds named tracks; a {@link TrackProducer}
 * writes groups (each starts at a keyframe); a {@link GroupProducer} writes frames. Consumers are
 * independent cursors; caches are bounded in bytes and frames, and a consumer that falls behind
 * gets a {@link LaggedError} instead of slowing anyone down.
 *
 * ```ts
 * const origin = new OriginProducer();
 * const broadcast = origin.createBroadcast("live/cam0");
 * const video = broadcast.createTrack("video");
 * const group = video.appendGroup();
 * group.writeFrame(keyframe);
 *
 * const track = origin.consume().consume("live/cam0")!.subscribeTrack("video");
 * const first = await (await track.nextGroup())!.readFrame();
 * ```
 *
 * On the network, {@link serveMoq} (or {@link MoqServer} mounted on an HTTP server) relays an
 * origin to moq-lite clients over WebSocket (QMux `qmux-00` or the legacy `webtransport`
 * framing), and {@link connectMoq} is a Node client. Both run {@link MoqSession}, which speaks
 * lite-01/02 (SETUP) and lite-03/04 over any {@link TransportSession}, and the IETF
 * moq-transport drafts 14 to 17 mapped onto the same model (draft-14 by SETUP, 15 to 17 by
 * application protocol); the message codecs of both are exported for tools and tests.
 */

export * from "./client.ts";
export * from "./error.ts";
export * from "./ietf/codec.ts";
export type { IetfOptions } from "./ietf/context.ts";
export * from "./ietf/errors.ts";
export * from "./ietf/messages.ts";
export * from "./ietf/namespace.ts";
export * from "./ietf/objects.ts";
export * from "./ietf/parameters.ts";
export * from "./ietf/setup.ts";
export * from "./ietf/version.ts";
export * from "./model/broadcast.ts";
export * from "./model/frame.ts";
export * from "./model/group.ts";
export * from "./model/origin.ts";
export * from "./model/track.ts";
export * from "./path.ts";
export * from "./qmux/frame.ts";
export * from "./qmux/session.ts";
export * from "./qmux/subprotocol.ts";
export * from "./server.ts";
export * from "./session/context.ts";
export * from "./session/logger.ts";
export type { ServedSubscription } from "./session/publisher.ts";
export * from "./session/session.ts";
export type * from "./transport.ts";
export * from "./webtransport/certificate.ts";
export type { WebTransportKind } from "./webtransport/listener.ts";
export { WebTransportSession, type WebTransportSessionOptions } from "./webtransport/session.ts";
export * from "./wire/announce.ts";
export * from "./wire/bytes.ts";
export * from "./wire/fetch.ts";
export * from "./wire/goaway.ts";
export * from "./wire/group.ts";
export * from "./wire/message.ts";
export * from "./wire/probe.ts";
export * from "./wire/setup.ts";
export * from "./wire/stream-reader.ts";
export * from "./wire/subscribe.ts";
export * from "./wire/varint.ts";
export * from "./wire/version.ts";
