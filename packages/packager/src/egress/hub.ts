/**
 * The egress hub: follows every broadcast announced in an Origin (under a prefix) and keeps one
 * {@link BroadcastEgress} per path for the HLS and DASH plugins to read. One hub can serve both
 * plugins, so they share segment bytes. An ended broadcast keeps serving its output (ENDLIST,
 * static MPD) for a linger period and is then forgotten, so memory does not grow with the number
 * of broadcasts ever seen; a republish within the linger continues the same timeline.
 */
import type { BroadcastConsumer, OriginConsumer } from "@lvqr/moq-lite";
import { PackagerError } from "../errors.ts";
import {
  BroadcastEgress,
  DEFAULT_EGRESS_SETTINGS,
  type EgressListener,
  type EgressSettings,
} from "./broadcast.ts";
import { ChangeSignal } from "./change-signal.ts";
import { DvrSpill, type DvrSpillOptions } from "./dvr-spill.ts";
import { BroadcastFollower } from "./follower.ts";
import type { PlaybackHooks } from "./http.ts";

/** Options of an {@link EgressHub}. */
export interface EgressHubOptions extends Partial<EgressSettings> {
  /** The Origin to follow. */
  readonly origin: OriginConsumer;
  /** Follow only broadcasts under this path prefix (default: all). */
  readonly prefix?: string;
  /** Seconds an ended broadcast keeps serving before it is forgotten. Default 120. */
  readonly lingerS?: number;
  /** Broadcasts followed at once; later ones are not served until others go. Default 1024. */
  readonly maxBroadcasts?: number;
  /**
   * Keep only the live edge in memory and write older DVR segments to files in this directory
   * (see {@link DvrSpill}). Default: everything in memory.
   */
  readonly dvrSpill?: DvrSpillOptions;
}

interface Entry {
  readonly egress: BroadcastEgress;
  follower: BroadcastFollower | undefined;
  broadcast: BroadcastConsumer | undefined;
  linger: NodeJS.Timeout | undefined;
}

/** What a hub holds for one broadcast (for an admin API or metrics). */
export interface EgressBroadcastStats {
  readonly path: string;
  /** Ended and lingering (serving ENDLIST / a static MPD) rather than live. */
  readonly ended: boolean;
  /** Segment and part bytes held, in memory and spilled to disk. */
  readonly bytes: number;
  /** The part of `bytes` spilled to disk. */
  readonly bytesOnDisk: number;
  /** Closed segments retained per rendition. */
  readonly segments: { readonly video: number; readonly audio: number };
  /** Frames that could not be used (malformed, before an init, before a keyframe). */
  readonly droppedFrames: number;
  /** HTTP requests waiting on this broadcast right now. */
  readonly heldRequests: number;
}

/** How many forgotten paths remember their next segment numbers (so URIs are not reused soon). */
const REMEMBERED_PATHS = 4096;

/** Follows an Origin's broadcasts and holds their HLS/DASH output. Close it when done. */
export class EgressHub {
  /** Timing and retention settings every broadcast uses. */
  readonly settings: EgressSettings;
  /** Wakes waiters when a broadcast path appears or goes. */
  readonly signal: ChangeSignal = new ChangeSignal();
  readonly #origin: OriginConsumer;
  readonly #prefix: string;
  readonly #lingerMs: number;
  readonly #maxBroadcasts: number;
  readonly #entries: Map<string, Entry> = new Map();
  readonly #nextNumbers: Map<string, { video: number; audio: number }> = new Map();
  readonly #listeners: Set<EgressListener> = new Set();
  readonly #announced: ReturnType<OriginConsumer["announced"]>;
  /** Where older DVR segments go, if configured. */
  readonly spill: DvrSpill | undefined;
  #closed = false;
  #spillClosed: Promise<void> | undefined;

  /** Starts following `options.origin`. */
  constructor(options: EgressHubOptions) {
    this.settings = {
      targetDurationS: options.targetDurationS ?? DEFAULT_EGRESS_SETTINGS.targetDurationS,
      partTargetS: options.partTargetS ?? DEFAULT_EGRESS_SETTINGS.partTargetS,
      dvrWindowS: options.dvrWindowS ?? DEFAULT_EGRESS_SETTINGS.dvrWindowS,
      maxBytesPerBroadcast: options.maxBytesPerBroadcast ?? DEFAULT_EGRESS_SETTINGS.maxBytesPerBroadcast,
    };
    validateSettings(this.settings);
    this.#origin = options.origin;
    this.#prefix = options.prefix ?? "";
    this.#lingerMs = (options.lingerS ?? 120) * 1000;
    this.#maxBroadcasts = options.maxBroadcasts ?? 1024;
    this.spill = options.dvrSpill ? new DvrSpill(options.dvrSpill) : undefined;
    this.#announced = this.#origin.announced(this.#prefix);
    void this.#watch();
  }

  /** The egress of `path`, if it is followed (live or lingering). */
  get(path: string): BroadcastEgress | undefined {
    return this.#entries.get(path)?.egress;
  }

  /** Paths currently followed (live or lingering), sorted. */
  paths(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** A snapshot of every followed broadcast, sorted by path. */
  stats(): EgressBroadcastStats[] {
    return this.paths().map((path) => {
      const egress = this.#entries.get(path)!.egress;
      return {
        path,
        ended: egress.ended,
        bytes: egress.bytes,
        bytesOnDisk: egress.bytesOnDisk,
        segments: { video: egress.video.segments.length, audio: egress.audio.segments.length },
        droppedFrames: egress.droppedFrames + egress.video.droppedBeforeKeyframe,
        heldRequests: egress.signal.waiting,
      };
    });
  }

  /** Waits up to `timeoutMs` for `path` to be followed. */
  async waitFor(path: string, timeoutMs: number, signal?: AbortSignal): Promise<BroadcastEgress | undefined> {
    await this.signal.waitUntil(() => this.#entries.has(path) || this.#closed, timeoutMs, signal);
    return this.get(path);
  }

  /** Observes parts and segments of every broadcast. Returns a function that removes the listener. */
  addListener(listener: EgressListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Stops following and drops all state. Idempotent. Spilled files are removed in the
   * background; await {@link EgressHub.closed} to know they are gone.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#announced.close();
    for (const entry of this.#entries.values()) {
      clearTimeout(entry.linger);
      entry.follower?.close();
      entry.egress.end();
    }
    this.#entries.clear();
    this.signal.notify();
    this.#spillClosed = this.spill?.close() ?? Promise.resolve();
  }

  /** Resolves once a closed hub's spilled files are removed. */
  get closed(): Promise<void> {
    return this.#spillClosed ?? Promise.resolve();
  }

  async #watch(): Promise<void> {
    for (;;) {
      const announcement = await this.#announced.next();
      if (announcement === undefined || this.#closed) return;
      if (announcement.active && announcement.broadcast)
        this.#attach(announcement.path, announcement.broadcast);
      else this.#detach(announcement.path, undefined);
    }
  }

  #attach(path: string, broadcast: BroadcastConsumer): void {
    let entry = this.#entries.get(path);
    if (!entry) {
      if (this.#entries.size >= this.#maxBroadcasts) return;
      const numbers = this.#nextNumbers.get(path);
      this.#nextNumbers.delete(path);
      entry = {
        egress: new BroadcastEgress(path, this.settings, this.#listeners, numbers, this.spill),
        follower: undefined,
        broadcast: undefined,
        linger: undefined,
      };
      this.#entries.set(path, entry);
    }
    if (entry.broadcast?.sameAs(broadcast)) return;
    clearTimeout(entry.linger);
    entry.linger = undefined;
    entry.follower?.close();
    entry.broadcast = broadcast;
    entry.follower = new BroadcastFollower(entry.egress, broadcast);
    // The announcement of the end can be coalesced away; the broadcast's own end is authoritative.
    void broadcast.closed.then(() => this.#detach(path, broadcast));
    this.signal.notify();
  }

  #detach(path: string, broadcast: BroadcastConsumer | undefined): void {
    const entry = this.#entries.get(path);
    if (!entry?.broadcast) return;
    if (broadcast && !entry.broadcast.sameAs(broadcast)) return;
    entry.follower?.close();
    entry.follower = undefined;
    entry.broadcast = undefined;
    entry.egress.end();
    entry.linger = setTimeout(() => this.#forget(path, entry), this.#lingerMs);
    entry.linger.unref?.();
    this.signal.notify();
  }

  #forget(path: string, entry: Entry): void {
    if (this.#entries.get(path) !== entry || entry.broadcast) return;
    this.#entries.delete(path);
    this.#nextNumbers.set(path, { video: entry.egress.video.nextMsn, audio: entry.egress.audio.nextMsn });
    while (this.#nextNumbers.size > REMEMBERED_PATHS) {
      const oldest = this.#nextNumbers.keys().next().value;
      if (oldest === undefined) break;
      this.#nextNumbers.delete(oldest);
    }
    entry.egress.releaseSpilled();
    entry.egress.signal.notify();
    this.signal.notify();
  }
}

function validateSettings(settings: EgressSettings): void {
  const { targetDurationS, partTargetS, dvrWindowS, maxBytesPerBroadcast } = settings;
  const fail = (message: string): never => {
    throw new PackagerError("PACKAGER_INVALID_OPTION", message);
  };
  if (!(targetDurationS > 0 && targetDurationS <= 60)) {
    fail(`targetDurationS ${targetDurationS} is invalid (it must be in (0, 60] seconds)`);
  }
  if (!(partTargetS >= 0.05 && partTargetS <= targetDurationS)) {
    fail(`partTargetS ${partTargetS} is invalid (it must be between 0.05 s and targetDurationS)`);
  }
  if (!(dvrWindowS === 0 || (dvrWindowS >= 3 * targetDurationS && dvrWindowS <= 86_400 * 365))) {
    fail(`dvrWindowS ${dvrWindowS} is invalid (it must be 0, or at least 3 x targetDurationS)`);
  }
  if (!(maxBytesPerBroadcast >= 1024 * 1024)) {
    fail(`maxBytesPerBroadcast ${maxBytesPerBroadcast} is invalid (it must be at least 1 MiB)`);
  }
}

/** Hub settings as the HLS and DASH plugins accept them (part target in ms). */
export interface PluginHubOptions {
  /** The Origin to serve (the plugin creates and owns an {@link EgressHub}); or pass `egress`. */
  readonly origin?: OriginConsumer;
  /** Serve only broadcasts under this path prefix (own hub only). */
  readonly prefix?: string;
  /** Part target in ms (own hub only; DASH segments are unaffected). Default 200. */
  readonly partTargetMs?: number;
  /** Segment target duration in seconds (own hub only). Default 2. */
  readonly targetDurationS?: number;
  /**
   * DVR window (and DASH `timeShiftBufferDepth`) in seconds, 0 for no time limit (the byte
   * budget alone bounds it) (own hub only). Default 120.
   */
  readonly dvrWindowS?: number;
  /** Byte budget per broadcast (own hub only). Default 64 MiB. */
  readonly maxBytesPerBroadcast?: number;
  /** Seconds an ended broadcast stays served (own hub only). Default 120. */
  readonly lingerS?: number;
  /** Older DVR segments go to files (own hub only). Default: everything in memory. */
  readonly dvrSpill?: DvrSpillOptions;
}

/** Options both the HLS and the DASH plugin take. */
export interface PlaybackPluginOptions extends PluginHubOptions {
  /** A hub shared with the other plugin (owned by the caller); takes precedence over `origin`. */
  readonly egress?: EgressHub;
  /** Auth, cluster redirect and latency hooks. */
  readonly hooks?: PlaybackHooks;
  /**
   * How long a request waits for a broadcast's first media (or the next segment), ms; an unknown
   * broadcast is waited for at most 2 s of it. Default 3 x target duration.
   */
  readonly readyTimeoutMs?: number;
  /** Query parameters copied from a manifest request onto the URIs inside it. Default token, jwt, exp, sig. */
  readonly propagateQuery?: readonly string[];
  /** Requests held at once across all broadcasts; more get 503. Default 10000. */
  readonly maxHeldRequests?: number;
}

/** The hub a plugin creates for itself when it is given an Origin rather than a shared hub. */
export function createPluginHub(plugin: string, options: PluginHubOptions): EgressHub {
  if (!options.origin) {
    throw new PackagerError(
      "PACKAGER_INVALID_OPTION",
      `${plugin} needs an \`origin\` (OriginConsumer) or an \`egress\` (EgressHub)`,
    );
  }
  return new EgressHub({
    origin: options.origin,
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    ...(options.partTargetMs === undefined ? {} : { partTargetS: options.partTargetMs / 1000 }),
    ...(options.targetDurationS === undefined ? {} : { targetDurationS: options.targetDurationS }),
    ...(options.dvrWindowS === undefined ? {} : { dvrWindowS: options.dvrWindowS }),
    ...(options.maxBytesPerBroadcast === undefined
      ? {}
      : { maxBytesPerBroadcast: options.maxBytesPerBroadcast }),
    ...(options.lingerS === undefined ? {} : { lingerS: options.lingerS }),
    ...(options.dvrSpill === undefined ? {} : { dvrSpill: options.dvrSpill }),
  });
}

/** The `?v=` init version of a request, if well-formed. */
export function initVersionOf(query: unknown): number | undefined {
  const value = (query as Record<string, unknown> | undefined)?.["v"];
  return typeof value === "string" && /^(0|[1-9][0-9]{0,8})$/.test(value) ? Number(value) : undefined;
}
