/**
 * Synthetic media at a given bitrate, shaped like a live encoder's output: a keyframe every two
 * seconds about six times the size of the other frames, 30 fps, and 128 kbit/s AAC frames
 * (1024 samples at 44.1 kHz). Frames are valid length-prefixed NAL units so the ingest's checks run.
 */
import { buildAacRawTag, buildAvcNaluTag } from "../src/index.ts";

/** One FLV tag body with its timestamp. */
export interface BenchTag {
  readonly type: 8 | 9;
  readonly timestamp: number;
  readonly body: Uint8Array;
}

/** Tags for `seconds` of media at `videoBitsPerSecond`, in timestamp order. */
export function mediaTags(seconds: number, videoBitsPerSecond: number): BenchTag[] {
  const fps = 30;
  const gop = 60;
  const bytesPerGop = (videoBitsPerSecond / 8) * (gop / fps);
  // keyframe = 6 units, others 1 unit: 6 + 59 = 65 units per GOP.
  const unit = Math.floor(bytesPerGop / (6 + gop - 1));
  const tags: BenchTag[] = [];
  const frames = Math.round(seconds * fps);
  for (let i = 0; i < frames; i++) {
    const keyframe = i % gop === 0;
    const nal = new Uint8Array(keyframe ? unit * 6 : unit).fill(i & 0xff);
    nal[0] = keyframe ? 0x65 : 0x41;
    tags.push({
      type: 9,
      timestamp: Math.round((i * 1000) / fps),
      body: buildAvcNaluTag({ keyframe, nalus: [nal] }),
    });
  }
  const audioFrames = Math.floor((seconds * 44100) / 1024);
  const audioBytes = Math.round((128_000 / 8) * (1024 / 44100));
  for (let i = 0; i < audioFrames; i++) {
    tags.push({
      type: 8,
      timestamp: Math.round((i * 1024 * 1000) / 44100),
      body: buildAacRawTag(new Uint8Array(audioBytes).fill(i & 0xff)),
    });
  }
  return tags.sort((a, b) => a.timestamp - b.timestamp || a.type - b.type);
}
