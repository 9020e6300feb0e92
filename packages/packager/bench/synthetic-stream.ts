/**
 * A synthetic 2.5 Mbit/s H.264 (30 fps, 2 s GOP) + 128 kbit/s AAC stream for the egress benches:
 * a real codec configuration and random payloads of the right sizes (the egress never decodes,
 * so only sizes and timing matter). Frames are pushed into a `BroadcastPublisher`, either as fast
 * as the caller wants or paced by the wall clock.
 */
import type { OriginProducer } from "@lvqr/moq-lite";
import { BroadcastPublisher } from "../src/index.ts";

/** avcC of a 640x360 High-profile libx264 stream (any valid record will do). */
const AVCC = new Uint8Array(
  Buffer.from(
    "0164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000468efbcb0fdf8f800",
    "hex",
  ),
);
const ASC = new Uint8Array([0x11, 0x90]);

export const VIDEO_BITRATE = 2_500_000;
export const AUDIO_BITRATE = 128_000;
const FPS = 30;
const GOP = 60;
const AAC_PER_SECOND = 48000 / 1024;
// A keyframe ten times a delta frame, so one GOP carries exactly 2 s at the bitrate.
const DELTA_BYTES = Math.round(((VIDEO_BITRATE / 8) * (GOP / FPS)) / (GOP - 1 + 10));
const KEY_BYTES = DELTA_BYTES * 10;
const AAC_BYTES = Math.round(AUDIO_BITRATE / 8 / AAC_PER_SECOND);

function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536)
    crypto.getRandomValues(out.subarray(i, Math.min(i + 65536, length)));
  return out;
}

const KEYFRAME = randomBytes(KEY_BYTES);
const DELTA = randomBytes(DELTA_BYTES);
const AAC = randomBytes(AAC_BYTES);

/** One synthetic broadcast. `pushUntil(ms)` publishes every frame whose time is before `ms`. */
export class SyntheticStream {
  readonly publisher: BroadcastPublisher;
  #video = 0;
  #audio = 0;
  readonly #ingestBase: number;
  readonly #realtime: boolean;

  /** With `realtime`, ingest times are the wall clock at push; otherwise `ingestBase + media time`. */
  constructor(
    origin: OriginProducer,
    path: string,
    options: { realtime?: boolean; ingestBase?: number } = {},
  ) {
    this.publisher = new BroadcastPublisher(origin, path);
    this.publisher.setVideoConfig({
      codec: "h264",
      codecString: "avc1.64001e",
      description: AVCC,
      width: 640,
      height: 360,
    });
    this.publisher.setAudioConfig({
      codec: "aac",
      codecString: "mp4a.40.2",
      description: ASC,
      sampleRate: 48000,
      channels: 2,
    });
    this.#realtime = options.realtime ?? false;
    this.#ingestBase = options.ingestBase ?? Date.now();
  }

  /** Media milliseconds published so far. */
  get mediaMs(): number {
    return Math.min((this.#video * 1000) / FPS, (this.#audio * 1000) / AAC_PER_SECOND);
  }

  /** Publishes every video and audio frame that starts before `ms`, in time order. */
  pushUntil(ms: number): void {
    for (;;) {
      const videoMs = (this.#video * 1000) / FPS;
      const audioMs = (this.#audio * 1000) / AAC_PER_SECOND;
      if (Math.min(videoMs, audioMs) >= ms) return;
      if (videoMs <= audioMs) {
        const keyframe = this.#video % GOP === 0;
        const dts = Math.round(videoMs);
        const ingestTimeMs = this.#realtime ? Date.now() : this.#ingestBase + dts;
        this.publisher.pushVideo({
          dts,
          pts: dts,
          keyframe,
          data: keyframe ? KEYFRAME : DELTA,
          ingestTimeMs,
        });
        this.#video++;
      } else {
        const dts = Math.round(audioMs);
        const ingestTimeMs = this.#realtime ? Date.now() : this.#ingestBase + dts;
        this.publisher.pushAudio({ dts, pts: dts, keyframe: true, data: AAC, ingestTimeMs });
        this.#audio++;
      }
    }
  }

  close(): void {
    this.publisher.close();
  }
}

/** Feeds `streams` as fast as the event loop allows, yielding every `stepMs` of media. */
export async function feedFast(
  streams: readonly SyntheticStream[],
  mediaMs: number,
  stepMs = 100,
): Promise<void> {
  for (let t = stepMs; t <= mediaMs + stepMs; t += stepMs) {
    for (const stream of streams) stream.pushUntil(Math.min(t, mediaMs));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Paces `streams` by the wall clock from a 5 ms timer until `stop()`. */
export function feedRealtime(streams: readonly SyntheticStream[]): { stop(): void } {
  const start = performance.now();
  const timer = setInterval(() => {
    const elapsed = performance.now() - start;
    for (const stream of streams) stream.pushUntil(elapsed);
  }, 5);
  return { stop: () => clearInterval(timer) };
}
