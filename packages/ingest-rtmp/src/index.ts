/**
 * @lvqr/ingest-rtmp: an RTMP ingest server for Node.js that turns publishers (OBS, ffmpeg,
 * phones) into typed media events, plus a minimal RTMP publish client.
 *
 * The server speaks the plain and digest handshakes, the full chunk stream (all header types,
 * extended timestamps, Set Chunk Size, Abort, acknowledgements, user control), AMF0 commands
 * (and AMF3-wrapped ones), the FMLE/OBS publish flow, FLV tags with H.264 and AAC, and Enhanced
 * RTMP for H.265 and AV1. Every publish is admitted by an awaited `authorize` before
 * `NetStream.Publish.Start`, and becomes a {@link PublishSession} that emits `config`,
 * `sample` (zero-copy, on a monotonic wrap-free timeline), `metadata` and exactly one `end`.
 * Every limit is configurable and every violation closes only its own connection with a typed
 * {@link RtmpError}.
 *
 * ```ts
 * import { RtmpServer } from "@lvqr/ingest-rtmp";
 * const server = new RtmpServer();
 * server.on("publish", (session) => {
 *   session.on("sample", (s) => console.log(session.name, s.kind, s.dts, s.keyframe));
 * });
 * await server.listen(1935);
 * ```
 */
export type { PublishDecision, PublishRejection, PublishRequest } from "./admission.ts";
export {
  type AmfDecodeOptions,
  AmfEcmaArray,
  type AmfObject,
  type AmfValue,
  decodeAmf0,
  encodeAmf0,
} from "./amf0.ts";
export {
  type ChunkStreamLimits,
  ChunkStreamReader,
  ChunkStreamWriter,
  type ChunkStreamWriterOptions,
  DEFAULT_CHUNK_LIMITS,
  MessageType,
  type OutgoingMessage,
  type RtmpMessage,
} from "./chunk-stream.ts";
export {
  type AudioSpecificConfig,
  aacCodecString,
  buildAudioSpecificConfig,
  parseAudioSpecificConfig,
} from "./codec/aac.ts";
export { type Av1CodecConfig, av1CodecString, parseAv1CodecConfigurationRecord } from "./codec/av1.ts";
export {
  type AvcDecoderConfig,
  type AvcSps,
  avcCodecString,
  parseAvcDecoderConfigurationRecord,
  parseAvcSps,
} from "./codec/avc.ts";
export {
  type HevcDecoderConfig,
  hevcCodecString,
  parseHevcDecoderConfigurationRecord,
  parseHevcSps,
} from "./codec/hevc.ts";
export { lengthPrefixNalUnits, splitAnnexB } from "./codec/nal.ts";
export { encodeCommand, NetStatus, parseCommand, type RtmpCommand } from "./commands.ts";
export { isRtmpError, PublishRejectedError, RtmpError, type RtmpErrorCode } from "./errors.ts";
export {
  type AvcNaluTagOptions,
  buildAacRawTag,
  buildAacSequenceHeaderTag,
  buildAvcDecoderConfigurationRecord,
  buildAvcEndOfSequenceTag,
  buildAvcNaluTag,
  buildAvcSequenceHeaderTag,
  buildEnhancedVideoTag,
  type EnhancedVideoTagOptions,
  type FlvAudioPacket,
  type FlvFileTag,
  type FlvVideoPacket,
  parseAudioTag,
  parseFlvFile,
  parseVideoTag,
  type VideoCodec,
  VideoPacketType,
} from "./flv.ts";
export {
  ClientHandshake,
  type ClientHandshakeResult,
  type HandshakeMode,
  ServerHandshake,
} from "./handshake.ts";
export { type Logger, silentLogger } from "./logger.ts";
export type { AudioConfig, MediaConfig, MediaSample, VideoConfig } from "./media.ts";
export {
  DEFAULT_SERVER_OPTIONS,
  type DuplicatePublisherPolicy,
  type ResolvedServerOptions,
  type RtmpServerOptions,
} from "./options.ts";
export {
  type ParsedRtmpUrl,
  type PublisherCounters,
  parseRtmpUrl,
  RtmpPublisher,
  type RtmpPublisherEvents,
  type RtmpPublisherOptions,
} from "./publisher.ts";
export { RtmpServer, type RtmpServerEvents, type RtmpServerStats } from "./server.ts";
export { type PublishEndReason, PublishSession, type PublishSessionEvents } from "./session.ts";
export { broadcastNameProblem, splitStreamName } from "./stream-name.ts";
export { MediaTimeline, type TimelinePoint } from "./timeline.ts";
