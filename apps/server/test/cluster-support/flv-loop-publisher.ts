/**
 * A real-time RTMP publisher for the cluster tests: ffmpeg encodes a short H.264 + AAC clip to FLV
 * once per test process (so no encoder runs while the nodes are measured), and `FlvLoopPublisher`
 * replays its tags through `RtmpPublisher` at their timestamps, looping with increasing
 * timestamps for as long as a test needs. It keeps every `onStatus` and can end cleanly
 * (FCUnpublish) or abruptly (socket destroyed, like a crashed encoder).
 */

import { spawnSync } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PublishRejectedError, RtmpPublisher } from "@lvqr/ingest-rtmp";

/** One FLV tag: 8 audio, 9 video. */
interface FlvTag {
  readonly type: 8 | 9;
  readonly timestampMs: number;
  readonly body: Uint8Array;
}

/** The clip: tags in order, and its duration (last timestamp + one frame). */
interface Clip {
  readonly tags: readonly FlvTag[];
  readonly durationMs: number;
}

let clip: Promise<Clip> | undefined;

/** Encodes (once) and parses the test clip: 2 s of 320x240 at 25 fps, 1 s GOPs, AAC 48 kHz. */
export function testClip(): Promise<Clip> {
  clip ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "lvqr-cluster-clip-"));
    const file = path.join(dir, "clip.flv");
    const args = [
      "-hide_banner",
      "-loglevel",
      "error",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=320x240:rate=25",
      "-f",
      "lavfi",
      "-i",
      "sine=frequency=440:sample_rate=48000",
      "-t",
      "2",
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-profile:v",
      "baseline",
      "-pix_fmt",
      "yuv420p",
      "-g",
      "25",
      "-keyint_min",
      "25",
      "-sc_threshold",
      "0",
      "-b:v",
      "400k",
      "-c:a",
      "aac",
      "-b:a",
      "64k",
      "-f",
      "flv",
      file,
    ];
    const result = spawnSync("ffmpeg", args, { encoding: "utf8" });
    if (result.error || result.status !== 0) {
      throw new Error(
        `ffmpeg could not encode the test clip (the cluster tests need ffmpeg with libx264 and aac): ${
          result.error?.message ?? result.stderr
        }`,
      );
    }
    return parseFlv(await readFile(file));
  })();
  return clip;
}

/** Splits an FLV file into its audio and video tags (script tags are dropped). */
export function parseFlv(data: Uint8Array): Clip {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.byteLength < 13 || data[0] !== 0x46 || data[1] !== 0x4c || data[2] !== 0x56) {
    throw new Error("not an FLV file");
  }
  let offset = view.getUint32(5) + 4; // header, then PreviousTagSize0
  const tags: FlvTag[] = [];
  let last = 0;
  while (offset + 11 <= data.byteLength) {
    const type = data[offset]!;
    const size = (data[offset + 1]! << 16) | (data[offset + 2]! << 8) | data[offset + 3]!;
    const timestampMs =
      ((data[offset + 7]! << 24) |
        (data[offset + 4]! << 16) |
        (data[offset + 5]! << 8) |
        data[offset + 6]!) >>>
      0;
    const start = offset + 11;
    if (start + size > data.byteLength) break;
    if (type === 8 || type === 9) {
      tags.push({ type, timestampMs, body: data.subarray(start, start + size) });
      last = Math.max(last, timestampMs);
    }
    offset = start + size + 4;
  }
  if (tags.length === 0) throw new Error("the FLV file has no audio or video tags");
  return { tags, durationMs: last + 40 };
}

/** A publisher replaying the test clip in a loop, in real time. */
export class FlvLoopPublisher {
  readonly url: string;
  readonly publisher: RtmpPublisher;
  /** Video tags sent so far. */
  videoTags = 0;
  readonly #clip: Clip;
  #stopped = false;
  readonly #done: Promise<void>;

  private constructor(url: string, publisher: RtmpPublisher, loopClip: Clip) {
    this.url = url;
    this.publisher = publisher;
    this.#clip = loopClip;
    this.#done = this.#run().catch(() => {});
  }

  /** Connects, publishes and starts sending. Rejects with `PublishRejectedError` on refusal. */
  static async start(url: string): Promise<FlvLoopPublisher> {
    const loopClip = await testClip();
    const publisher = await RtmpPublisher.connect(url, { timeoutMs: 10_000 });
    publisher.on("close", () => {});
    return new FlvLoopPublisher(url, publisher, loopClip);
  }

  /**
   * Tries to publish every `intervalMs` until the server accepts (an encoder's reconnect loop) or
   * `timeoutMs` passes. Returns the publisher and the refusals seen before it.
   */
  static async startWhenAccepted(
    url: string,
    options: { intervalMs?: number; timeoutMs?: number } = {},
  ): Promise<{ publisher: FlvLoopPublisher; refusals: PublishRejectedError[] }> {
    const refusals: PublishRejectedError[] = [];
    const deadline = performance.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      try {
        return { publisher: await FlvLoopPublisher.start(url), refusals };
      } catch (err) {
        if (!(err instanceof PublishRejectedError) || performance.now() > deadline) throw err;
        refusals.push(err);
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
    }
  }

  /** True once the server closed the connection (or it was stopped). */
  get closed(): boolean {
    return this.publisher.closed;
  }

  /** Every `onStatus` code received, in order. */
  statusCodes(): string[] {
    return this.publisher.statuses.map((status) => String(status["code"]));
  }

  /** Unpublishes cleanly and closes. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.publisher.close().catch(() => {});
    await this.#done;
  }

  /** Drops the connection without unpublishing (a crashed encoder). */
  async abort(): Promise<void> {
    this.#stopped = true;
    this.publisher.destroy();
    await this.#done;
  }

  async #run(): Promise<void> {
    const { tags, durationMs } = this.#clip;
    const start = performance.now();
    for (let loop = 0; !this.#stopped; loop++) {
      const offset = loop * durationMs;
      for (const tag of tags) {
        if (this.#stopped || this.publisher.closed) return;
        const due = start + offset + tag.timestampMs - performance.now();
        if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
        if (this.#stopped || this.publisher.closed) return;
        const timestamp = offset + tag.timestampMs;
        if (tag.type === 9) {
          await this.publisher.sendVideo(timestamp, tag.body);
          this.videoTags += 1;
        } else {
          await this.publisher.sendAudio(timestamp, tag.body);
        }
      }
    }
  }
}
