/**
 * @lvqr/packager: CMAF packaging of media samples into a moq-lite Origin, and LL-HLS / MPEG-DASH
 * projections of any Origin broadcast.
 *
 * Into the Origin: `buildInitSegment` / `buildFragment` write CMAF (one moof+mdat per sample);
 * `BroadcastPublisher` publishes a broadcast with a hang `catalog.json`, `video` / `audio` tracks
 * and the reference layout (`.catalog`, `0.mp4`, `1.mp4`, `0.timing`). `parseInitSegment`,
 * `parseFragment` and `parseHangCatalog` read any publisher's tracks back, bounded.
 *
 * Out of the Origin: an `EgressHub` follows every broadcast in an Origin (catalog, tracks, frames
 * timed from tfdt/trun) into bounded per-broadcast part/segment stores; `hlsPlugin` (LL-HLS under
 * `/hls/<broadcast>/`) and `dashPlugin` (DASH under `/dash/<broadcast>/`) are fastify plugins that
 * serve them, sharing one hub when given the same `egress`.
 */
export * from "./catalog.ts";
export * from "./cmaf/aac-config.ts";
export * from "./cmaf/av1-config.ts";
export * from "./cmaf/avc-config.ts";
export * from "./cmaf/fragment.ts";
export * from "./cmaf/hevc-config.ts";
export * from "./cmaf/init-segment.ts";
export * from "./cmaf/track-config.ts";
export {
  type AdaptationSetModel,
  type MpdModel,
  type PeriodModel,
  renderMpd,
  type TimelineEntry,
  type UtcTimingModel,
} from "./dash/mpd.ts";
export { type DashFile, type DashPluginOptions, dashPlugin, parseDashFile } from "./dash/plugin.ts";
export {
  BroadcastEgress,
  DEFAULT_EGRESS_SETTINGS,
  type EgressListener,
  type EgressSettings,
  type EpochRecord,
} from "./egress/broadcast.ts";
export { DvrSpill, type DvrSpillOptions, type DvrSpillStats } from "./egress/dvr-spill.ts";
export {
  type PlaybackHooks,
  type PlaybackTarget,
  type PlaybackTransport,
  splitPlaybackPath,
} from "./egress/http.ts";
export {
  type EgressBroadcastStats,
  EgressHub,
  type EgressHubOptions,
  type PlaybackPluginOptions,
  type PluginHubOptions,
} from "./egress/hub.ts";
export type {
  InitRecord,
  PartRecord,
  RenditionKind,
  RenditionTimeline,
  SegmentRecord,
  SpilledBytes,
} from "./egress/rendition.ts";
export {
  type FramePlacement,
  type FrameTiming,
  Segmenter,
  type SegmenterOptions,
} from "./egress/segmenter.ts";
export * from "./errors.ts";
export {
  type MediaPlaylistModel,
  type MultivariantPlaylistModel,
  type PlaylistPart,
  type PlaylistSegment,
  type RenditionReport,
  renderMediaPlaylist,
  renderMultivariantPlaylist,
  type SkipRequest,
} from "./hls/playlist.ts";
export {
  type DeliveryDirectives,
  type HlsFile,
  type HlsPluginOptions,
  hlsPlugin,
  parseDeliveryDirectives,
  parseHlsFile,
} from "./hls/plugin.ts";
export * from "./publish/broadcast-publisher.ts";
export * from "./publish/media-sample.ts";
export * from "./publish/mp4-file.ts";
