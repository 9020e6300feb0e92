/**
 * Publishes one live broadcast into a moq-lite Origin as CMAF.
 *
 * Tracks, by name:
 * - `catalog.json`: the hang catalog, one group per catalog version holding one frame of JSON.
 *   A new version is written when a codec configuration is set or changes, on a discontinuity,
 *   and once the measured bitrate / frame rate are known (about 2 s of media after a
 *   configuration). A new version does not by itself mean the media changed: compare the init
 *   segments to detect a new configuration.
 * - `video`: one group per GOP, each starting at a keyframe; one moof+mdat frame per sample.
 *   Delta frames before the first keyframe (or after a configuration change) are dropped.
 * - `audio`: one moof+mdat frame per AAC frame. A new group starts with the first audio frame
 *   after each video group starts (so audio and video groups cover the same span and a viewer
 *   joining at the newest groups starts both at the same point), at a discontinuity, and at
 *   least every `maxAudioGroupMs` (1 s) so audio-only broadcasts stay joinable. Every AAC frame
 *   is decodable on its own, so any frame may open a group.
 * - The reference layout (`referenceLayout`, on by default): `.catalog` (moq-js JSON), `0.mp4`
 *   ([init, fragment, fragment, ...] per GOP, the same fragment bytes as `video`), `1.mp4` (one
 *   group per AAC frame: [init, fragment]) and `0.timing` (one 16-byte group per video keyframe:
 *   u64 LE sequence of the group it opened, u64 LE ingest Unix ms).
 *
 * Every media frame carries `FrameMeta.ingestTimeMs`. Decode times never go backwards (see
 * `timeline.ts`); fragments are written by {@link buildFragment}.
 */

import type {
  BroadcastProducer,
  FrameMeta,
  GroupProducer,
  OriginProducer,
  TrackLimits,
  TrackProducer,
} from "@lvqr/moq-lite";
import { buildHangCatalog, buildMoqJsCatalog, type HangCatalog } from "../catalog.ts";
import { buildFragment } from "../cmaf/fragment.ts";
import {
  type ResolvedAudioTrack,
  type ResolvedVideoTrack,
  resolveTrackConfig,
  writeInitSegment,
} from "../cmaf/init-segment.ts";
import type { AudioTrackConfig, VideoTrackConfig } from "../cmaf/track-config.ts";
import { PackagerError } from "../errors.ts";
import type { MediaSample } from "./media-sample.ts";
import { type StreamMeasurement, StreamMeter } from "./stream-meter.ts";
import { AudioTimeline, SourceClock, VideoTimeline } from "./timeline.ts";

/** Track names written by a {@link BroadcastPublisher}. */
export const TRACK_NAMES: {
  readonly catalog: "catalog.json";
  readonly video: "video";
  readonly audio: "audio";
  readonly referenceCatalog: ".catalog";
  readonly referenceVideo: "0.mp4";
  readonly referenceAudio: "1.mp4";
  readonly timing: "0.timing";
} = {
  catalog: "catalog.json",
  video: "video",
  audio: "audio",
  referenceCatalog: ".catalog",
  referenceVideo: "0.mp4",
  referenceAudio: "1.mp4",
  timing: "0.timing",
};

/** Options of a {@link BroadcastPublisher}. */
export interface BroadcastPublisherOptions {
  /** Cache bounds of the media tracks (default: the moq-lite defaults). */
  readonly trackLimits?: TrackLimits;
  /** Also write the reference server's `.catalog`, `0.mp4`, `1.mp4` and `0.timing` (default true). */
  readonly referenceLayout?: boolean;
  /** Longest audio group in ms when no video group starts first (default 1000). */
  readonly maxAudioGroupMs?: number;
  /** Clock for samples without `ingestTimeMs` (default `Date.now`). */
  readonly now?: () => number;
}

/** Counters of a {@link BroadcastPublisher}. */
export interface PublisherStats {
  /** Video samples written. */
  readonly videoFrames: number;
  /** Audio samples written. */
  readonly audioFrames: number;
  /** Video samples dropped: no configuration yet, or delta frames while waiting for a keyframe. */
  readonly droppedVideoFrames: number;
  /** Audio samples dropped: no configuration yet, or the source ran ahead of its timestamps. */
  readonly droppedAudioFrames: number;
  /** Video groups (GOPs) started. */
  readonly videoGroups: number;
  /** Audio groups started on the `audio` track. */
  readonly audioGroups: number;
  /** Versions of `catalog.json` written. */
  readonly catalogVersions: number;
  /** Bytes of moof+mdat written (each fragment counted once). */
  readonly fragmentBytes: number;
}

interface VideoState {
  config: VideoTrackConfig;
  resolved: ResolvedVideoTrack;
  init: Uint8Array;
  readonly timeline: VideoTimeline;
  meter: StreamMeter;
  readonly track: TrackProducer;
  readonly legacy: TrackProducer | undefined;
  readonly timing: TrackProducer | undefined;
  group: GroupProducer | undefined;
  legacyGroup: GroupProducer | undefined;
  sequenceNumber: number;
}

interface AudioState {
  config: AudioTrackConfig;
  resolved: ResolvedAudioTrack;
  init: Uint8Array;
  timeline: AudioTimeline;
  meter: StreamMeter;
  readonly track: TrackProducer;
  readonly legacy: TrackProducer | undefined;
  group: GroupProducer | undefined;
  groupStart: number;
  /** Video groups started when the open audio group began. */
  groupVideoMark: number;
  sequenceNumber: number;
}

/** Both CMAF tracks use track ID 1 in their own init segment, as the reference does. */
const TRACK_ID = 1;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkSample(sample: MediaSample, kind: string): void {
  if (!Number.isFinite(sample.dts) || !Number.isFinite(sample.pts)) {
    throw new PackagerError(
      "PACKAGER_INVALID_SAMPLE",
      `${kind} sample has a non-finite timestamp (dts ${sample.dts}, pts ${sample.pts})`,
    );
  }
  if (!(sample.data instanceof Uint8Array)) {
    throw new PackagerError("PACKAGER_INVALID_SAMPLE", `${kind} sample data must be a Uint8Array`);
  }
}

/**
 * Packages one broadcast's samples into CMAF tracks of an Origin (see the module comment for the
 * track layout). Create it when the publisher connects, feed it configurations and samples in
 * decode order, and `close()` it when the publisher leaves: that ends every track and
 * unannounces the broadcast. Samples pushed after `close()` are ignored.
 */
export class BroadcastPublisher {
  /** Broadcast path in the origin. */
  readonly path: string;
  readonly #broadcast: BroadcastProducer;
  readonly #catalogTrack: TrackProducer;
  readonly #referenceCatalogTrack: TrackProducer | undefined;
  readonly #options: BroadcastPublisherOptions;
  readonly #clock = new SourceClock();
  readonly #now: () => number;
  #video: VideoState | undefined;
  #audio: AudioState | undefined;
  #catalog: HangCatalog | undefined;
  #referenceCatalogJson = "";
  #videoGroups = 0;
  #closed = false;
  #stats = {
    videoFrames: 0,
    audioFrames: 0,
    droppedVideoFrames: 0,
    droppedAudioFrames: 0,
    videoGroups: 0,
    audioGroups: 0,
    catalogVersions: 0,
    fragmentBytes: 0,
  };

  /** Creates the broadcast at `path` in `origin` (announcing it) with its catalog tracks. */
  constructor(origin: OriginProducer, path: string, options: BroadcastPublisherOptions = {}) {
    this.path = path;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#broadcast = origin.createBroadcast(
      path,
      options.trackLimits ? { trackLimits: options.trackLimits } : {},
    );
    this.#catalogTrack = this.#broadcast.createTrack(TRACK_NAMES.catalog);
    this.#referenceCatalogTrack =
      options.referenceLayout === false
        ? undefined
        : this.#broadcast.createTrack(TRACK_NAMES.referenceCatalog);
  }

  /** True once closed (by `close()`, or because the broadcast ended). */
  get closed(): boolean {
    return this.#closed || this.#broadcast.done;
  }

  /** The hang catalog last written, if any. */
  get catalog(): HangCatalog | undefined {
    return this.#catalog;
  }

  /** The current video init segment, if video is configured. */
  get videoInit(): Uint8Array | undefined {
    return this.#video?.init;
  }

  /** The current audio init segment, if audio is configured. */
  get audioInit(): Uint8Array | undefined {
    return this.#audio?.init;
  }

  /** Counters so far. */
  stats(): PublisherStats {
    return { ...this.#stats };
  }

  /**
   * Sets (or changes) the video configuration. A change ends the open GOP, writes a new init and
   * a new catalog version, and waits for the next keyframe. Setting an identical configuration
   * again (encoders repeat sequence headers) changes nothing. Throws PACKAGER_INVALID_CONFIG
   * when the description record is bad.
   */
  setVideoConfig(config: VideoTrackConfig): void {
    if (this.closed) return;
    const current = this.#video;
    if (
      current &&
      current.config.codec === config.codec &&
      current.config.width === config.width &&
      current.config.height === config.height &&
      current.config.framerate === config.framerate &&
      sameBytes(current.config.description, config.description)
    ) {
      return;
    }
    const resolved = resolveTrackConfig(config) as ResolvedVideoTrack;
    const init = writeInitSegment(resolved, { trackId: TRACK_ID });
    if (current) {
      this.#endVideoGroup(current);
      current.config = config;
      current.resolved = resolved;
      current.init = init;
      current.meter = new StreamMeter();
    } else {
      const reference = this.#options.referenceLayout !== false;
      const broadcast = this.#broadcast;
      const limits = this.#options.trackLimits;
      this.#video = {
        config,
        resolved,
        init,
        timeline: new VideoTimeline(this.#clock, resolved.timescale, config.framerate),
        meter: new StreamMeter(),
        track: broadcast.createTrack(TRACK_NAMES.video, limits),
        legacy: reference ? broadcast.createTrack(TRACK_NAMES.referenceVideo, limits) : undefined,
        timing: reference ? broadcast.createTrack(TRACK_NAMES.timing) : undefined,
        group: undefined,
        legacyGroup: undefined,
        sequenceNumber: 0,
      };
    }
    this.#writeCatalog();
  }

  /**
   * Sets (or changes) the audio configuration; a change starts a new group and catalog version.
   * Sample rate and channel count come from the AudioSpecificConfig. Throws
   * PACKAGER_INVALID_CONFIG when the ASC cannot be parsed.
   */
  setAudioConfig(config: AudioTrackConfig): void {
    if (this.closed) return;
    const current = this.#audio;
    if (
      current &&
      current.config.sampleRate === config.sampleRate &&
      current.config.channels === config.channels &&
      sameBytes(current.config.description, config.description)
    ) {
      return;
    }
    const resolved = resolveTrackConfig(config) as ResolvedAudioTrack;
    const init = writeInitSegment(resolved, { trackId: TRACK_ID });
    if (current) {
      current.group?.close();
      current.group = undefined;
      if (
        resolved.timescale !== current.resolved.timescale ||
        resolved.samplesPerFrame !== current.resolved.samplesPerFrame
      ) {
        current.timeline = new AudioTimeline(
          this.#clock,
          resolved.sampleRate,
          resolved.samplesPerFrame,
          current.timeline.endMs,
        );
      }
      current.config = config;
      current.resolved = resolved;
      current.init = init;
      current.meter = new StreamMeter();
    } else {
      const reference = this.#options.referenceLayout !== false;
      const broadcast = this.#broadcast;
      const limits = this.#options.trackLimits;
      this.#audio = {
        config,
        resolved,
        init,
        timeline: new AudioTimeline(this.#clock, resolved.sampleRate, resolved.samplesPerFrame),
        meter: new StreamMeter(),
        track: broadcast.createTrack(TRACK_NAMES.audio, limits),
        legacy: reference ? broadcast.createTrack(TRACK_NAMES.referenceAudio, limits) : undefined,
        group: undefined,
        groupStart: 0,
        groupVideoMark: 0,
        sequenceNumber: 0,
      };
    }
    this.#writeCatalog();
  }

  /**
   * Packages one video sample (decode order). Returns false when it was dropped: closed, no
   * configuration yet, or a delta frame while waiting for a keyframe.
   */
  pushVideo(sample: MediaSample): boolean {
    if (this.closed) return false;
    checkSample(sample, "video");
    const video = this.#video;
    if (!video || (!sample.keyframe && !video.group)) {
      this.#stats.droppedVideoFrames++;
      return false;
    }
    const generation = this.#clock.generation;
    const timing = video.timeline.place(sample.dts, sample.pts, sample.discontinuity === true);
    const ingestTimeMs = sample.ingestTimeMs ?? this.#now();
    const meta: FrameMeta = { ingestTimeMs };
    if (sample.keyframe) this.#startVideoGroup(video, ingestTimeMs, meta);
    const fragment = buildFragment({
      sequenceNumber: ++video.sequenceNumber,
      trackId: TRACK_ID,
      baseMediaDecodeTime: timing.decodeTime,
      samples: [
        {
          duration: timing.duration,
          data: sample.data,
          keyframe: sample.keyframe,
          compositionOffset: timing.compositionOffset,
        },
      ],
    });
    video.group!.writeFrame(fragment, meta);
    video.legacyGroup?.writeFrame(fragment, meta);
    this.#stats.videoFrames++;
    this.#stats.fragmentBytes += fragment.byteLength;
    const measured = video.meter.add(
      (timing.decodeTime * 1000) / video.resolved.timescale,
      sample.data.byteLength,
      (timing.compositionOffset * 1000) / video.resolved.timescale,
    );
    // A rebase is a discontinuity; say so with a catalog version (the timeline itself stays continuous).
    if (measured || this.#clock.generation !== generation) this.#maybeWriteCatalog(measured !== undefined);
    return true;
  }

  /**
   * Packages one AAC frame. Returns false when it was dropped: closed, no configuration yet, or
   * the source ran more than two frames ahead of its timestamps.
   */
  pushAudio(sample: MediaSample): boolean {
    if (this.closed) return false;
    checkSample(sample, "audio");
    const audio = this.#audio;
    if (!audio) {
      this.#stats.droppedAudioFrames++;
      return false;
    }
    const generation = this.#clock.generation;
    const timing = audio.timeline.place(sample.dts, sample.discontinuity === true);
    if ("drop" in timing) {
      this.#stats.droppedAudioFrames++;
      return false;
    }
    const rebased = this.#clock.generation !== generation;
    const ingestTimeMs = sample.ingestTimeMs ?? this.#now();
    const meta: FrameMeta = { ingestTimeMs };
    const maxTicks = ((this.#options.maxAudioGroupMs ?? 1000) * audio.resolved.timescale) / 1000;
    if (
      !audio.group ||
      rebased ||
      sample.discontinuity === true ||
      audio.groupVideoMark !== this.#videoGroups ||
      timing.decodeTime - audio.groupStart >= maxTicks
    ) {
      audio.group?.close();
      audio.group = audio.track.appendGroup();
      audio.groupStart = timing.decodeTime;
      audio.groupVideoMark = this.#videoGroups;
      this.#stats.audioGroups++;
    }
    const fragment = buildFragment({
      sequenceNumber: ++audio.sequenceNumber,
      trackId: TRACK_ID,
      baseMediaDecodeTime: timing.decodeTime,
      samples: [{ duration: timing.duration, data: sample.data, keyframe: true }],
    });
    audio.group.writeFrame(fragment, meta);
    if (audio.legacy) {
      const group = audio.legacy.appendGroup();
      group.writeFrame(audio.init, meta);
      group.writeFrame(fragment, meta);
      group.close();
    }
    this.#stats.audioFrames++;
    this.#stats.fragmentBytes += fragment.byteLength;
    const measured = audio.meter.add(
      (timing.decodeTime * 1000) / audio.resolved.timescale,
      sample.data.byteLength,
      0,
    );
    if (measured || rebased) this.#maybeWriteCatalog(measured !== undefined);
    return true;
  }

  /** Ends every track and unannounces the broadcast. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const video = this.#video;
    if (video) {
      this.#endVideoGroup(video);
      video.track.close();
      video.legacy?.close();
      video.timing?.close();
    }
    const audio = this.#audio;
    if (audio) {
      audio.group?.close();
      audio.group = undefined;
      audio.track.close();
      audio.legacy?.close();
    }
    this.#catalogTrack.close();
    this.#referenceCatalogTrack?.close();
    this.#broadcast.close();
  }

  #endVideoGroup(video: VideoState): void {
    video.group?.close();
    video.legacyGroup?.close();
    video.group = undefined;
    video.legacyGroup = undefined;
  }

  #startVideoGroup(video: VideoState, ingestTimeMs: number, meta: FrameMeta): void {
    this.#endVideoGroup(video);
    video.group = video.track.appendGroup();
    this.#videoGroups++;
    this.#stats.videoGroups++;
    if (video.legacy) {
      video.legacyGroup = video.legacy.appendGroup();
      video.legacyGroup.writeFrame(video.init, meta);
    }
    if (video.timing && ingestTimeMs > 0) {
      const anchor = new Uint8Array(16);
      const view = new DataView(anchor.buffer);
      const sequence = (video.legacyGroup ?? video.group).sequence;
      view.setBigUint64(0, BigInt(sequence), true);
      view.setBigUint64(8, BigInt(Math.round(ingestTimeMs)), true);
      video.timing.writeFrame(anchor, meta);
    }
  }

  /** After a measurement or rebase: write a version, but let a measurement wait for the other track's. */
  #maybeWriteCatalog(measurement: boolean): void {
    if (measurement) {
      const pending = [this.#video?.meter, this.#audio?.meter].some((meter) => meter && !meter.result);
      if (pending) return;
    }
    this.#writeCatalog();
  }

  #writeCatalog(): void {
    const video = this.#video;
    const audio = this.#audio;
    const videoMeasure: StreamMeasurement | undefined = video?.meter.result;
    const catalog = buildHangCatalog({
      ...(video
        ? {
            video: {
              name: TRACK_NAMES.video,
              track: video.resolved,
              init: video.init,
              framerate: video.config.framerate ?? videoMeasure?.framerate,
              bitrate: videoMeasure?.bitrate,
              jitter:
                videoMeasure && videoMeasure.maxCompositionDelayMs > 0
                  ? videoMeasure.maxCompositionDelayMs
                  : undefined,
            },
          }
        : {}),
      ...(audio
        ? {
            audio: {
              name: TRACK_NAMES.audio,
              track: audio.resolved,
              init: audio.init,
              bitrate: audio.meter.result?.bitrate,
            },
          }
        : {}),
    });
    this.#catalog = catalog;
    this.#catalogTrack.writeFrame(new TextEncoder().encode(JSON.stringify(catalog)));
    this.#stats.catalogVersions++;
    if (this.#referenceCatalogTrack) {
      const json = JSON.stringify(
        buildMoqJsCatalog({
          ...(video ? { video: video.resolved } : {}),
          ...(audio ? { audio: audio.resolved } : {}),
        }),
      );
      if (json !== this.#referenceCatalogJson) {
        this.#referenceCatalogJson = json;
        this.#referenceCatalogTrack.writeFrame(new TextEncoder().encode(json));
      }
    }
  }
}
