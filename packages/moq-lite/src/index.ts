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
 */
export * from "./error.ts";
export * from "./model/broadcast.ts";
export * from "./model/frame.ts";
export * from "./model/group.ts";
export * from "./model/origin.ts";
export * from "./model/track.ts";
export * from "./path.ts";
