/**
 * A publish session: one `publish` on one RTMP connection, from `NetStream.Publish.Start` to its
 * end. It emits parsed codec configurations, samples on the publish's timeline, metadata, and
 * exactly one `end`.
 */
import { EventEmitter } from "node:events";
import { aacCodecString, parseAudioSpecificConfig } from "./codec/aac.ts";
import {
  av1CodecString,
  findAv1SequenceHeader,
  parseAv1CodecConfigurationRecord,
  parseAv1SequenceHeader,
} from "./codec/av1.ts";
import { avcCodecString, parseAvcDecoderConfigurationRecord, parseAvcSps } from "./codec/avc.ts";
import {
  HevcNalType,
  hevcCodecString,
  parseHevcDecoderConfigurationRecord,
  parseHevcSps,
} from "./codec/hevc.ts";
import { annexBToLengthPrefixed, isLengthPrefixed, looksLikeAnnexB } from "./codec/nal.ts";
import { RtmpError } from "./errors.ts";
import { metadataCodecProblem, parseAudioTag, parseVideoTag, type VideoCodec } from "./flv.ts";
import type { HandshakeMode } from "./handshake.ts";
import type { Logger } from "./logger.ts";
import type { AudioConfig, MediaConfig, MediaSample, VideoConfig } from "./media.ts";
import { MediaTimeline } from "./timeline.ts";

/** Why a publish session ended. */
export type PublishEndReason =
  /** The publisher sent FCUnpublish / deleteStream / closeStream. */
  | "unpublish"
  /** The connection closed without an unpublish (or the socket failed). */
  | "disconnect"
  /** A protocol or media error closed the connection; the error is the second `end` argument. */
  | "error"
  /** No bytes arrived for `idleTimeoutMs`. */
  | "timeout"
  /** A new publisher took the name over. */
  | "takeover"
  /** `session.close()` was called. */
  | "kicked"
  /** `server.close()` was called. */
  | "shutdown";

/** Events of a {@link PublishSession}. */
export interface PublishSessionEvents {
  /** A new or changed codec configuration (an identical repeat is not re-emitted). */
  config: [config: MediaConfig];
  /** One coded frame. */
  sample: [sample: MediaSample];
  /** `onMetaData` (from `@setDataFrame` or a bare `onMetaData` data message). */
  metadata: [metadata: Record<string, unknown>];
  /** Emitted exactly once. */
  end: [reason: PublishEndReason, error?: RtmpError];
}

/** How the connection that owns a session lets it act on the connection. */
export interface SessionOwner {
  /** Sends an onStatus to the publisher, ends the session with `reason` and closes the socket. */
  kick(reason: PublishEndReason): void;
  /** False once the socket is gone. */
  alive(): boolean;
  /** Bytes received on the connection so far. */
  bytesReceived(): number;
}

/** Construction parameters (the server creates sessions). */
export interface PublishSessionInit {
  readonly app: string;
  readonly stream: string;
  readonly name: string;
  readonly remoteAddress: string;
  readonly handshake: HandshakeMode;
  readonly owner: SessionOwner;
}

let finishSession: (session: PublishSession, reason: PublishEndReason, error?: RtmpError) => boolean;
let markMedia: (session: PublishSession) => void;

/**
 * One publish. Listen for `config`, `sample`, `metadata` and `end` synchronously inside the
 * server's `publish` event; media is only processed after that event returns.
 */
export class PublishSession extends EventEmitter<PublishSessionEvents> {
  /** RTMP application (the first part of the URL path, without its query). */
  readonly app: string;
  /** Stream name without its `?query`. */
  readonly stream: string;
  /** Broadcast name: the authorizer's `name`, else `<app>/<stream>`. */
  readonly name: string;
  readonly remoteAddress: string;
  /** Which handshake the publisher used. */
  readonly handshake: HandshakeMode;
  /** `Date.now()` when Publish.Start was sent. */
  readonly startedAt: number;
  readonly #owner: SessionOwner;
  #ended = false;
  #endReason: PublishEndReason | undefined;
  #lastMediaAt: number;
  /** The latest video configuration. */
  videoConfig: VideoConfig | undefined;
  /** The latest audio configuration. */
  audioConfig: AudioConfig | undefined;
  /** The latest metadata. */
  metadata: Record<string, unknown> | undefined;
  /** Samples emitted so far, per kind. */
  readonly samples: { video: number; audio: number } = { video: 0, audio: 0 };
  /** Frames dropped because they arrived before their codec configuration. */
  droppedBeforeConfig = 0;

  constructor(init: PublishSessionInit) {
    super();
    this.app = init.app;
    this.stream = init.stream;
    this.name = init.name;
    this.remoteAddress = init.remoteAddress;
    this.handshake = init.handshake;
    this.#owner = init.owner;
    this.startedAt = Date.now();
    this.#lastMediaAt = performance.now();
  }

  static {
    finishSession = (session, reason, error) => session.#finish(reason, error);
    markMedia = (session) => {
      session.#lastMediaAt = performance.now();
    };
  }

  /** Bytes received on this publisher's connection. */
  get bytesReceived(): number {
    return this.#owner.bytesReceived();
  }

  /** True after `end` was emitted. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Why the session ended (undefined while it runs). */
  get endReason(): PublishEndReason | undefined {
    return this.#endReason;
  }

  /** Milliseconds since the last audio or video message (or since the start). */
  get msSinceMedia(): number {
    return performance.now() - this.#lastMediaAt;
  }

  /** True while the publisher's socket is open. */
  get alive(): boolean {
    return !this.#ended && this.#owner.alive();
  }

  /**
   * Ends the publish from the server side: sends `onStatus NetStream.Unpublish.Success`, ends the
   * session with `reason` (default "kicked") and closes the connection. Idempotent.
   */
  close(reason: "kicked" | "takeover" | "shutdown" = "kicked"): void {
    if (this.#ended) return;
    this.#owner.kick(reason);
  }

  #finish(reason: PublishEndReason, error?: RtmpError): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    this.#endReason = reason;
    this.emit("end", reason, error);
    return true;
  }
}

/** Ends a session (emits `end` once); internal to the package. */
export function endPublishSession(
  session: PublishSession,
  reason: PublishEndReason,
  error?: RtmpError,
): boolean {
  return finishSession(session, reason, error);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Parses a video sequence header record into a {@link VideoConfig}. */
export function videoConfigFromRecord(codec: VideoCodec, record: Uint8Array, logger?: Logger): VideoConfig {
  let width = 0;
  let height = 0;
  const sizeFrom = (parse: () => { width: number; height: number }): void => {
    try {
      ({ width, height } = parse());
    } catch (err) {
      // A record we can carry but whose size we cannot read should not stop the stream.
      logger?.warn(
        { codec, error: (err as Error).message },
        "could not read the video size from the codec configuration",
      );
    }
  };
  if (codec === "h264") {
    const cfg = parseAvcDecoderConfigurationRecord(record);
    sizeFrom(() => parseAvcSps(cfg.sps[0]!));
    return {
      kind: "video",
      codec,
      codecString: avcCodecString(cfg.profile, cfg.compatibility, cfg.level),
      description: record,
      width,
      height,
      nalLengthSize: cfg.nalLengthSize,
    };
  }
  if (codec === "h265") {
    const cfg = parseHevcDecoderConfigurationRecord(record);
    const sps = cfg.arrays.find((a) => a.nalType === HevcNalType.SPS)?.nalus[0];
    if (sps === undefined) throw new RtmpError("CODEC_CONFIG_INVALID", "hvcC record has no SPS");
    sizeFrom(() => parseHevcSps(sps));
    return {
      kind: "video",
      codec,
      codecString: hevcCodecString(cfg),
      description: record,
      width,
      height,
      nalLengthSize: cfg.nalLengthSize,
    };
  }
  const cfg = parseAv1CodecConfigurationRecord(record);
  sizeFrom(() => {
    const header = findAv1SequenceHeader(cfg.configObus);
    return header === undefined ? { width: 0, height: 0 } : parseAv1SequenceHeader(header);
  });
  return { kind: "video", codec, codecString: av1CodecString(cfg), description: record, width, height };
}

/** Parses an AudioSpecificConfig into an {@link AudioConfig}. */
export function audioConfigFromRecord(record: Uint8Array): AudioConfig {
  const asc = parseAudioSpecificConfig(record);
  return {
    kind: "audio",
    codec: "aac",
    codecString: aacCodecString(asc.objectType),
    description: record,
    objectType: asc.objectType,
    sampleRate: asc.sampleRate,
    channels: asc.channels,
    samplesPerFrame: asc.samplesPerFrame,
  };
}

/**
 * Turns a session's audio, video and data messages into events. Internal to the package: the
 * connection feeds it, the session emits.
 */
export class PublishMedia {
  readonly #session: PublishSession;
  readonly #timeline: MediaTimeline;
  readonly #logger: Logger;
  #warnedDrop = false;

  constructor(session: PublishSession, maxTimestampJumpMs: number, logger: Logger) {
    this.#session = session;
    this.#timeline = new MediaTimeline(maxTimestampJumpMs);
    this.#logger = logger;
  }

  #dropBeforeConfig(kind: string): void {
    this.#session.droppedBeforeConfig++;
    if (!this.#warnedDrop) {
      this.#warnedDrop = true;
      this.#logger.debug(
        { name: this.#session.name, kind },
        "dropping frames that arrive before their codec configuration",
      );
    }
  }

  video(timestamp: number, payload: Uint8Array): void {
    const session = this.#session;
    markMedia(session);
    const packet = parseVideoTag(payload);
    if (packet.type === "sequence-start") {
      if (packet.record.byteLength === 0) return;
      const config = videoConfigFromRecord(packet.codec, packet.record, this.#logger);
      const prev = session.videoConfig;
      if (
        prev !== undefined &&
        prev.codec === config.codec &&
        sameBytes(prev.description, config.description)
      )
        return;
      session.videoConfig = config;
      session.emit("config", config);
      return;
    }
    if (packet.type !== "frame") return;
    const config = session.videoConfig;
    if (config === undefined) {
      this.#dropBeforeConfig("video");
      return;
    }
    if (config.codec !== packet.codec) {
      throw new RtmpError(
        "FLV_INVALID",
        `video frame is ${packet.codec} but the stream was configured as ${config.codec}`,
      );
    }
    let data = packet.data;
    if (data.byteLength === 0) return;
    const lengthSize = config.nalLengthSize;
    if (lengthSize !== undefined && !isLengthPrefixed(data, lengthSize)) {
      // Some encoders put Annex B start codes in FLV; convert rather than pass on garbage.
      const converted = looksLikeAnnexB(data) ? annexBToLengthPrefixed(data, lengthSize) : undefined;
      if (converted === undefined) {
        throw new RtmpError(
          "FLV_INVALID",
          `${packet.codec} frame of ${data.byteLength} bytes is not a sequence of ${lengthSize}-byte length-prefixed NAL units`,
        );
      }
      data = converted;
    }
    const point = this.#timeline.map("video", timestamp);
    const sample: MediaSample = point.discontinuity
      ? {
          kind: "video",
          dts: point.dts,
          pts: point.dts + packet.compositionTime,
          keyframe: packet.keyframe,
          data,
          ingestTimeMs: Date.now(),
          discontinuity: true,
        }
      : {
          kind: "video",
          dts: point.dts,
          pts: point.dts + packet.compositionTime,
          keyframe: packet.keyframe,
          data,
          ingestTimeMs: Date.now(),
        };
    session.samples.video++;
    session.emit("sample", sample);
  }

  audio(timestamp: number, payload: Uint8Array): void {
    const session = this.#session;
    markMedia(session);
    const packet = parseAudioTag(payload);
    if (packet.type === "sequence-start") {
      if (packet.record.byteLength === 0) return;
      const config = audioConfigFromRecord(packet.record);
      const prev = session.audioConfig;
      if (prev !== undefined && sameBytes(prev.description, config.description)) return;
      session.audioConfig = config;
      session.emit("config", config);
      return;
    }
    if (packet.type !== "frame") return;
    if (session.audioConfig === undefined) {
      this.#dropBeforeConfig("audio");
      return;
    }
    if (packet.data.byteLength === 0) return;
    const point = this.#timeline.map("audio", timestamp);
    const sample: MediaSample = point.discontinuity
      ? {
          kind: "audio",
          dts: point.dts,
          pts: point.dts,
          keyframe: true,
          data: packet.data,
          ingestTimeMs: Date.now(),
          discontinuity: true,
        }
      : {
          kind: "audio",
          dts: point.dts,
          pts: point.dts,
          keyframe: true,
          data: packet.data,
          ingestTimeMs: Date.now(),
        };
    session.samples.audio++;
    session.emit("sample", sample);
  }

  metadata(metadata: Record<string, unknown>): void {
    const problem = metadataCodecProblem(metadata);
    if (problem !== undefined) throw new RtmpError("RTMP_UNSUPPORTED_CODEC", problem);
    this.#session.metadata = metadata;
    this.#session.emit("metadata", metadata);
  }
}
