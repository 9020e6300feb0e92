/**
 * @lvqr/packager: CMAF packaging of media samples into a moq-lite Origin, and LL-HLS / MPEG-DASH
 * projections of any Origin broadcast.
 *
 * Into the Origin: `buildInitSegment` / `buildFragment` write CMAF (one moof+mdat per sample);
 * `BroadcastPublisher` publishes a broadcast with a hang `catalog.json`, `video` / `audio` tracks
 * and the reference layout (`.catalog`, `0.mp4`, `1.mp4`, `0.timing`). `parseInitSegment`,
 * `parseFragment` and `parseHangCatalog` read any publisher's tracks back, bounded.
 */
export * from "./catalog.ts";
export * from "./cmaf/aac-config.ts";
export * from "./cmaf/av1-config.ts";
export * from "./cmaf/avc-config.ts";
export * from "./cmaf/fragment.ts";
export * from "./cmaf/hevc-config.ts";
export * from "./cmaf/init-segment.ts";
export * from "./cmaf/track-config.ts";
export * from "./errors.ts";
export * from "./publish/broadcast-publisher.ts";
export * from "./publish/media-sample.ts";
