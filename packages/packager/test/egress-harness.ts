/**
 * Shared setup for the HLS/DASH tests: an Origin, a hub, a fastify app with both plugins, and a
 * feeder that pushes the committed fixture one media step at a time (so blocking tests decide
 * exactly when a part appears).
 */
import { OriginProducer } from "@lvqr/moq-lite";
import Fastify, { type FastifyInstance } from "fastify";
import { dashPlugin } from "../src/dash/plugin.ts";
import type { PlaybackHooks } from "../src/egress/http.ts";
import { EgressHub, type EgressHubOptions } from "../src/egress/hub.ts";
import { hlsPlugin } from "../src/hls/plugin.ts";
import { BroadcastPublisher } from "../src/publish/broadcast-publisher.ts";
import { loadFixture } from "./support/feed-fixture.ts";

/** An app serving HLS and DASH from one hub over one Origin. */
export interface EgressApp {
  readonly origin: OriginProducer;
  readonly hub: EgressHub;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Options of {@link startEgressApp}. */
export interface EgressAppOptions extends Omit<Partial<EgressHubOptions>, "origin"> {
  readonly hooks?: PlaybackHooks;
  readonly blockingTimeoutMs?: number;
  readonly readyTimeoutMs?: number;
  /** Listen on a real port (0) so real HTTP clients can connect. */
  readonly listen?: boolean;
}

/** Starts an Origin, a hub and a fastify app with both plugins. */
export async function startEgressApp(options: EgressAppOptions = {}): Promise<EgressApp & { url: string }> {
  const origin = new OriginProducer();
  const { hooks, blockingTimeoutMs, readyTimeoutMs, listen, ...hubOptions } = options;
  const hub = new EgressHub({ origin: origin.consume(), ...hubOptions });
  const app = Fastify();
  const shared = {
    egress: hub,
    ...(hooks ? { hooks } : {}),
    ...(readyTimeoutMs === undefined ? {} : { readyTimeoutMs }),
  };
  await app.register(hlsPlugin, {
    ...shared,
    ...(blockingTimeoutMs === undefined ? {} : { blockingTimeoutMs }),
  });
  await app.register(dashPlugin, shared);
  let url = "";
  if (listen) {
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    if (address && typeof address === "object") url = `http://127.0.0.1:${address.port}`;
  }
  return {
    origin,
    hub,
    app,
    url,
    async close() {
      await app.close();
      hub.close();
    },
  };
}

/** Pushes the fixture into a publisher under test control, media time first. */
export class StepFeed {
  readonly publisher: BroadcastPublisher;
  readonly #samples: ReturnType<typeof loadFixture>["samples"];
  readonly #durationMs: number;
  readonly #firstDts: number;
  readonly #ingest: boolean;
  readonly #offsetMs: number;
  #index = 0;
  #loop = 0;
  /** Media time (ms since the feed's first sample) fed so far. */
  mediaMs = 0;

  /**
   * A publisher at `path`. `ingestTime` false leaves `ingestTimeMs` out (as for a broadcast
   * pulled from another node); `offsetMs` shifts all timestamps (a republish with a new clock).
   */
  constructor(
    origin: OriginProducer,
    path: string,
    options: { ingestTime?: boolean; offsetMs?: number } = {},
  ) {
    const fixture = loadFixture();
    this.publisher = new BroadcastPublisher(origin, path);
    if (fixture.video) this.publisher.setVideoConfig(fixture.video);
    if (fixture.audio) this.publisher.setAudioConfig(fixture.audio);
    this.#samples = fixture.samples;
    this.#durationMs = fixture.durationMs;
    this.#firstDts = fixture.samples[0]!.dtsMs;
    this.#ingest = options.ingestTime ?? true;
    this.#offsetMs = options.offsetMs ?? 0;
  }

  /** Pushes every sample whose media time is below `mediaMs` (looping the fixture). */
  feedUntil(mediaMs: number): void {
    for (;;) {
      if (this.#index >= this.#samples.length) {
        this.#index = 0;
        this.#loop++;
      }
      const sample = this.#samples[this.#index]!;
      const at = sample.dtsMs - this.#firstDts + this.#loop * this.#durationMs;
      if (at >= mediaMs) return;
      this.#index++;
      this.mediaMs = at;
      const base = 100 + this.#offsetMs + this.#loop * this.#durationMs - this.#firstDts;
      const media = {
        dts: Math.round(base + sample.dtsMs),
        pts: Math.round(base + sample.ptsMs),
        keyframe: sample.keyframe,
        data: sample.data,
        ...(this.#ingest ? { ingestTimeMs: Date.now() } : {}),
      };
      if (sample.kind === "video") this.publisher.pushVideo(media);
      else this.publisher.pushAudio(media);
    }
  }

  /** Feeds `ms` more media time at once. */
  feed(ms: number): void {
    this.feedUntil(this.mediaMs + ms);
  }

  /**
   * Feeds up to `mediaMs` in steps of `stepMs`, yielding to the event loop between steps so
   * followers read as they would from a live source (a consumer that joins late starts at the
   * newest group, so a burst would be mostly skipped).
   */
  async advanceTo(mediaMs: number, stepMs = 100): Promise<void> {
    while (this.#next() < mediaMs) {
      this.feedUntil(Math.min(mediaMs, this.mediaMs + stepMs));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Media time of the next sample. */
  #next(): number {
    const index = this.#index >= this.#samples.length ? 0 : this.#index;
    const loop = this.#index >= this.#samples.length ? this.#loop + 1 : this.#loop;
    return this.#samples[index]!.dtsMs - this.#firstDts + loop * this.#durationMs;
  }

  /** Ends the broadcast (an unpublish). */
  close(): void {
    this.publisher.close();
  }
}

/** Waits until the hub follows `path` with both renditions (so nothing fed after this is missed). */
export async function followed(hub: EgressHub, path: string): Promise<void> {
  await until(
    () => {
      const egress = hub.get(path);
      return egress !== undefined && !egress.ended && egress.has("video") && egress.has("audio");
    },
    5000,
    `${path} to be followed`,
  );
  // The media track readers subscribe right after the catalog is applied.
  await settle(5);
}

/** Resolves after the event loop has run pending follower work (frames flow through microtasks). */
export async function settle(ms = 20): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` until it holds or `timeoutMs` passes. */
export async function until(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
