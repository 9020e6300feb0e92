/**
 * Follows one broadcast instance in an Origin and feeds its {@link BroadcastEgress}: reads the
 * hang `catalog.json` track (newest group; later frames in a group are JSON merge patches),
 * picks the first CMAF video and audio renditions, decodes their init segments, subscribes to the
 * media tracks the catalog names and times every frame (one moof+mdat) from its tfdt/trun alone.
 * In-process `FrameMeta.ingestTimeMs` is used when present, never required.
 */
import { type BroadcastConsumer, type GroupConsumer, isMoqError, type TrackConsumer } from "@lvqr/moq-lite";
import { parseFragment } from "../cmaf/fragment.ts";
import type { InitSegmentInfo } from "../cmaf/init-segment.ts";
import type { BroadcastEgress } from "./broadcast.ts";
import { type CmafRendition, selectCmafRenditions } from "./catalog-selection.ts";
import type { RenditionKind } from "./rendition.ts";

/** How long the rest of a group may still arrive once a newer group has started. */
const GROUP_DRAIN_MS = 500;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

/** Catalog documents larger than this are ignored (the catalog is a few KB of JSON). */
const MAX_CATALOG_BYTES = 1024 * 1024;

/** Reads one media track into one rendition of the egress. */
class MediaTrackReader {
  readonly trackName: string;
  readonly #egress: BroadcastEgress;
  readonly #kind: RenditionKind;
  readonly #track: TrackConsumer;
  #init: InitSegmentInfo;
  #closed = false;

  constructor(
    egress: BroadcastEgress,
    kind: RenditionKind,
    broadcast: BroadcastConsumer,
    rendition: CmafRendition,
  ) {
    this.#egress = egress;
    this.#kind = kind;
    this.trackName = rendition.trackName;
    this.#init = rendition.info;
    this.#track = broadcast.subscribeTrack(rendition.trackName);
    void this.#run().catch(() => this.close());
  }

  /** The catalog changed this rendition's init (same track). */
  setInit(info: InitSegmentInfo): void {
    this.#init = info;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#track.close();
  }

  async #run(): Promise<void> {
    const track = this.#track;
    let next: Promise<GroupConsumer | undefined> = track.nextGroup();
    while (!this.#closed) {
      let group: GroupConsumer | undefined;
      try {
        group = await next;
      } catch (error) {
        if (!isMoqError(error, "MOQ_LAGGED")) return;
        // Fell behind the origin's cache: resume at the newest group, with a segment break.
        track.skipToLatest();
        this.#egress.rendition(this.#kind).breakNext();
        next = track.nextGroup();
        continue;
      }
      if (!group) return;
      next = track.nextGroup();
      // Read this group to its end. Once a newer group exists, the rest of this one gets a short
      // grace (a relay may deliver a group's tail after the next group's head) and is then
      // abandoned, so a publisher that leaves groups open cannot stall the rendition.
      const deadline = next.then(
        () => delay(GROUP_DRAIN_MS),
        () => delay(GROUP_DRAIN_MS),
      );
      for (;;) {
        let frame: Awaited<ReturnType<GroupConsumer["nextFrame"]>> | "abandoned";
        try {
          frame = await Promise.race([group.nextFrame(), deadline.then(() => "abandoned" as const)]);
        } catch {
          break;
        }
        if (frame === undefined || frame === "abandoned" || this.#closed) break;
        let bytes: Uint8Array;
        try {
          bytes = await frame.readAll();
        } catch {
          break;
        }
        this.#push(bytes, frame.meta?.ingestTimeMs);
      }
    }
  }

  #push(bytes: Uint8Array, ingestTimeMs: number | undefined): void {
    let info: ReturnType<typeof parseFragment>;
    try {
      // CMAF fragments hold one track; the first traf is it (whatever its track ID says).
      info = parseFragment(bytes, this.#init.defaults ? { defaults: this.#init.defaults } : {});
    } catch {
      this.#egress.droppedFrames++;
      return;
    }
    if (info.samples.length === 0) {
      this.#egress.droppedFrames++;
      return;
    }
    // Nothing about one frame may stop the rendition: a frame that cannot be placed is dropped.
    try {
      this.#pushTimed(bytes, info, ingestTimeMs);
    } catch {
      this.#egress.droppedFrames++;
    }
  }

  #pushTimed(
    bytes: Uint8Array,
    info: ReturnType<typeof parseFragment>,
    ingestTimeMs: number | undefined,
  ): void {
    const first = info.samples[0]!;
    this.#egress.pushFrame(this.#kind, {
      dts: info.baseMediaDecodeTime,
      duration: info.duration,
      keyframe: first.keyframe,
      bytes,
      samples: info.samples.length,
      ...(ingestTimeMs === undefined ? {} : { ingestTimeMs }),
    });
  }
}

/**
 * Follows one broadcast instance until it ends or `close()` is called. Construction starts a new
 * instance on the egress (a republish: discontinuity, live again).
 */
export class BroadcastFollower {
  readonly #egress: BroadcastEgress;
  readonly #broadcast: BroadcastConsumer;
  readonly #catalog: TrackConsumer;
  readonly #readers: Partial<Record<RenditionKind, MediaTrackReader>> = {};
  #generation = 0;
  #closed = false;
  /** Catalog versions that could not be used (bad JSON, no CMAF rendition, bad init). */
  rejectedCatalogs = 0;

  /** Starts following `broadcast` into `egress`. */
  constructor(egress: BroadcastEgress, broadcast: BroadcastConsumer) {
    this.#egress = egress;
    this.#broadcast = broadcast;
    egress.beginInstance();
    this.#catalog = broadcast.subscribeTrack("catalog.json");
    void this.#run().catch(() => this.close());
  }

  /** Stops reading (the egress keeps what it has). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#catalog.close();
    for (const kind of ["video", "audio"] as const) {
      this.#readers[kind]?.close();
      delete this.#readers[kind];
    }
  }

  async #run(): Promise<void> {
    const track = this.#catalog;
    while (!this.#closed) {
      let group: GroupConsumer | undefined;
      try {
        group = await track.nextGroup();
      } catch (error) {
        if (!isMoqError(error, "MOQ_LAGGED")) return;
        track.skipToLatest();
        continue;
      }
      if (!group) return;
      void this.#readCatalogGroup(group, ++this.#generation).catch(() => {
        this.rejectedCatalogs++;
      });
    }
  }

  async #readCatalogGroup(group: GroupConsumer, generation: number): Promise<void> {
    let document: unknown;
    for (;;) {
      let frame: Uint8Array | undefined;
      try {
        frame = await group.readFrame();
      } catch {
        return;
      }
      if (frame === undefined || this.#closed || generation !== this.#generation) return;
      if (frame.byteLength > MAX_CATALOG_BYTES) {
        this.rejectedCatalogs++;
        return;
      }
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(frame));
      } catch {
        this.rejectedCatalogs++;
        return;
      }
      document = document === undefined ? json : applyMergePatch(document, json);
      this.#apply(document);
    }
  }

  #apply(document: unknown): void {
    const selection = selectCmafRenditions(document);
    if (!selection) {
      this.rejectedCatalogs++;
      return;
    }
    for (const kind of ["video", "audio"] as const) {
      const rendition = selection[kind];
      const reader = this.#readers[kind];
      if (!rendition) {
        reader?.close();
        delete this.#readers[kind];
        this.#egress.setPresent(kind, false);
        continue;
      }
      this.#egress.setInit(kind, rendition.init, {
        timescale: rendition.info.timescale,
        codec: rendition.info.codecString,
        ...(rendition.info.width === undefined ? {} : { width: rendition.info.width }),
        ...(rendition.info.height === undefined ? {} : { height: rendition.info.height }),
        ...(rendition.info.sampleRate === undefined ? {} : { sampleRate: rendition.info.sampleRate }),
        ...(rendition.info.channels === undefined ? {} : { channels: rendition.info.channels }),
      });
      if (reader && reader.trackName === rendition.trackName) {
        reader.setInit(rendition.info);
        continue;
      }
      reader?.close();
      this.#readers[kind] = new MediaTrackReader(this.#egress, kind, this.#broadcast, rendition);
    }
  }
}

/** RFC 7396 JSON Merge Patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete base[key];
    else base[key] = applyMergePatch(base[key], value);
  }
  return base;
}
