import {
  buildAacRawTag,
  buildAacSequenceHeaderTag,
  buildAvcNaluTag,
  buildAvcSequenceHeaderTag,
  type RtmpPublisher,
} from "../../src/index.ts";
import { fixture } from "./fixtures.ts";

/** Real x264 and AAC configuration tags, and synthetic frames that match them. */
export const avcSequenceHeader: Uint8Array = buildAvcSequenceHeaderTag(fixture("avc-baseline-320x240.avcC"));
export const aacSequenceHeader: Uint8Array = buildAacSequenceHeaderTag(fixture("aac-lc-44100-mono.asc"));

/** A video tag body carrying one NAL unit of `size` bytes. */
export function videoFrame(index: number, keyframe: boolean, size = 200, compositionTimeMs = 0): Uint8Array {
  const nal = new Uint8Array(size).fill(index & 0xff);
  nal[0] = keyframe ? 0x65 : 0x41;
  return buildAvcNaluTag({ keyframe, compositionTimeMs, nalus: [nal] });
}

/** An audio tag body carrying one raw frame. */
export function audioFrame(index: number, size = 64): Uint8Array {
  return buildAacRawTag(new Uint8Array(size).fill(index & 0xff));
}

/** Sends configs, then `frames` video frames (keyframe every 30) with audio in between. */
export async function sendMedia(
  publisher: RtmpPublisher,
  options: { frames: number; start?: number; frameMs?: number; withConfig?: boolean; videoSize?: number },
): Promise<void> {
  const start = options.start ?? 0;
  const step = options.frameMs ?? 33;
  if (options.withConfig !== false) {
    await publisher.sendVideo(start, avcSequenceHeader);
    await publisher.sendAudio(start, aacSequenceHeader);
  }
  for (let i = 0; i < options.frames; i++) {
    await publisher.sendVideo(start + i * step, videoFrame(i, i % 30 === 0, options.videoSize));
    await publisher.sendAudio(start + i * step + 5, audioFrame(i));
  }
}
