/**
 * Packaging benchmarks for the into-the-Origin half:
 *
 * 1. Fragments per second: the hand-written `buildFragment` against mp4box 2.4.1
 *    (`createMoof` + `write`, plus the mdat), for a 2.5 Mbit/s video frame and an AAC frame.
 *    Both outputs are checked with `parseFragment` so the comparison is like for like.
 * 2. Init segments per second: `buildInitSegment` against mp4box (`addTrack` + `getBuffer`),
 *    H.264 only: mp4box's `addTrack` has no way to describe an AAC track (no ASC option, no esds
 *    field writer).
 * 3. Packaging CPU per stream: a `BroadcastPublisher` (all seven tracks) fed a synthetic
 *    2.5 Mbit/s H.264 stream (30 fps, 2 s GOP) plus 128 kbit/s AAC as fast as it will go; the
 *    process CPU time divided by the media time fed is the share of one core a live stream costs.
 * 4. The same in real time: 20 streams paced by a 5 ms timer for 15 s, minus the CPU of the same
 *    timer loop without packaging. This catches costs a hot loop hides (cold caches, timers, GC
 *    spread over time).
 *
 *   node bench/cmaf.bench.ts [--smoke]
 */

import { OriginProducer } from "@lvqr/moq-lite";
import { createFile, DataStream } from "mp4box";
import {
  BroadcastPublisher,
  buildFragment,
  buildInitSegment,
  parseFragment,
  parseInitSegment,
} from "../src/index.ts";

const smoke = process.argv.includes("--smoke");

const AVCC = new Uint8Array(
  Buffer.from(
    "0164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000468efbcb0fdf8f800",
    "hex",
  ),
);
const ASC = new Uint8Array([0x11, 0x90]);
const VIDEO_BITRATE = 2_500_000;
const AUDIO_BITRATE = 128_000;
const FPS = 30;
const GOP = 60;
// One keyframe ten times the size of a delta frame, so a GOP carries exactly 2 s at the bitrate.
const DELTA_BYTES = Math.round(((VIDEO_BITRATE / 8) * (GOP / FPS)) / (GOP - 1 + 10));
const KEY_BYTES = DELTA_BYTES * 10;
const AAC_FRAMES_PER_SECOND = 48000 / 1024;
const AAC_BYTES = Math.round(AUDIO_BITRATE / 8 / AAC_FRAMES_PER_SECOND);

function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536)
    crypto.getRandomValues(out.subarray(i, Math.min(i + 65536, length)));
  return out;
}

/** Runs `fn` for about `ms` after a warm-up and returns operations per second. */
function opsPerSecond(fn: () => unknown, ms: number): number {
  const warmUntil = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warmUntil) fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) fn();
    ops += 100;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

function format(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

// -- 1. fragments per second ---------------------------------------------------------------------

const mp4boxFile = createFile();
const mp4boxTrack = mp4boxFile.addTrack({
  timescale: 90000,
  width: 1280,
  height: 720,
  avcDecoderConfigRecord: AVCC.slice().buffer,
});

function mp4boxFragment(data: Uint8Array, dts: number, keyframe: boolean): Uint8Array {
  // biome-ignore lint/suspicious/noExplicitAny: mp4box's Sample type wants fields a moof does not use.
  const sample: any = {
    track_id: mp4boxTrack,
    size: data.byteLength,
    duration: 3000,
    dts,
    cts: dts + 3000,
    is_sync: keyframe,
  };
  const moof = mp4boxFile.createMoof([sample]);
  moof.computeSize();
  moof.trafs[0]!.truns[0]!.data_offset = moof.size + 8;
  const stream = new DataStream();
  moof.write(stream);
  stream.writeUint32(8 + data.byteLength);
  stream.writeUint8Array([0x6d, 0x64, 0x61, 0x74]);
  stream.writeUint8Array(data);
  return new Uint8Array(stream.buffer, 0, stream.byteLength);
}

function handFragment(data: Uint8Array, dts: number, keyframe: boolean): Uint8Array {
  return buildFragment({
    sequenceNumber: 1,
    trackId: 1,
    baseMediaDecodeTime: dts,
    samples: [{ duration: 3000, data, keyframe, compositionOffset: 3000 }],
  });
}

const results: Record<string, number | string> = {};
const fragmentMs = smoke ? 150 : 2000;
for (const [label, size] of [
  [`video frame ${format(DELTA_BYTES)} B`, DELTA_BYTES],
  [`AAC frame ${AAC_BYTES} B`, AAC_BYTES],
] as const) {
  const data = randomBytes(size);
  for (const [writer, fn] of [
    ["hand-written", handFragment],
    ["mp4box", mp4boxFragment],
  ] as const) {
    const check = parseFragment(fn(data, 90000, false));
    if (check.samples[0]!.size !== size || check.baseMediaDecodeTime !== 90000)
      throw new Error(`${writer} wrote a bad fragment`);
    let dts = 0;
    const rate = opsPerSecond(() => {
      dts += 3000;
      return fn(data, dts, false);
    }, fragmentMs);
    results[`fragments/s ${writer}, ${label}`] = Math.round(rate);
  }
}

// -- 2. init segments per second -----------------------------------------------------------------

const videoConfig = {
  codec: "h264",
  codecString: "avc1.64001e",
  description: AVCC,
  width: 1280,
  height: 720,
} as const;
function mp4boxInit(): Uint8Array {
  const file = createFile();
  file.addTrack({ timescale: 90000, width: 1280, height: 720, avcDecoderConfigRecord: AVCC.slice().buffer });
  const stream = file.getBuffer();
  return new Uint8Array(stream.buffer, 0, stream.byteLength);
}
if (parseInitSegment(mp4boxInit()).codecString !== "avc1.64001e")
  throw new Error("mp4box init did not parse");
const initMs = smoke ? 150 : 1500;
results["init segments/s hand-written (H.264)"] = Math.round(
  opsPerSecond(() => buildInitSegment(videoConfig), initMs),
);
results["init segments/s mp4box (H.264)"] = Math.round(opsPerSecond(mp4boxInit, initMs));

// -- 3. packaging CPU per 2.5 Mbit/s stream ------------------------------------------------------

const mediaSeconds = smoke ? 20 : 600;
const keyframe = randomBytes(KEY_BYTES);
const delta = randomBytes(DELTA_BYTES);
const aac = randomBytes(AAC_BYTES);
const origin = new OriginProducer();
const publisher = new BroadcastPublisher(origin, "bench/stream");
publisher.setVideoConfig(videoConfig);
publisher.setAudioConfig({
  codec: "aac",
  codecString: "mp4a.40.2",
  description: ASC,
  sampleRate: 48000,
  channels: 2,
});
const cpuStart = process.cpuUsage();
const wallStart = performance.now();
let videoIndex = 0;
let audioIndex = 0;
let bytesIn = 0;
const ingestBase = Date.now();
for (;;) {
  const videoMs = (videoIndex * 1000) / FPS;
  const audioMs = (audioIndex * 1000) / AAC_FRAMES_PER_SECOND;
  if (Math.min(videoMs, audioMs) >= mediaSeconds * 1000) break;
  if (videoMs <= audioMs) {
    const isKey = videoIndex % GOP === 0;
    const data = isKey ? keyframe : delta;
    const dts = Math.round(videoMs);
    publisher.pushVideo({ dts, pts: dts, keyframe: isKey, data, ingestTimeMs: ingestBase + dts });
    bytesIn += data.byteLength;
    videoIndex++;
  } else {
    const dts = Math.round(audioMs);
    publisher.pushAudio({ dts, pts: dts, keyframe: true, data: aac, ingestTimeMs: ingestBase + dts });
    bytesIn += aac.byteLength;
    audioIndex++;
  }
}
const cpu = process.cpuUsage(cpuStart);
const wallMs = performance.now() - wallStart;
const cpuMs = (cpu.user + cpu.system) / 1000;
const stats = publisher.stats();
publisher.close();
if (stats.videoFrames !== videoIndex || stats.audioFrames !== audioIndex)
  throw new Error("publisher dropped samples");
results["stream bitrate fed (Mbit/s)"] = ((bytesIn * 8) / mediaSeconds / 1e6).toFixed(3);
results["media seconds packaged"] = mediaSeconds;
results["wall ms"] = Math.round(wallMs);
results["CPU ms (user + system)"] = Math.round(cpuMs);
results["packaging CPU per stream (% of one core)"] = ((cpuMs / (mediaSeconds * 1000)) * 100).toFixed(3);
results["fragments written"] = stats.videoFrames + stats.audioFrames;

// -- 4. the same in real time: several streams paced by the wall clock -----------------------------

/**
 * Feeds `streams` publishers in real time for `seconds` from a 5 ms timer and returns the process
 * CPU in ms. With `publish` false the same timer loop runs without packaging (the baseline).
 */
async function realtimeCpu(streams: number, seconds: number, publish: boolean): Promise<number> {
  const publishers = Array.from({ length: streams }, (_, i) => {
    const p = new BroadcastPublisher(origin, `bench/realtime-${publish}-${i}`);
    p.setVideoConfig(videoConfig);
    p.setAudioConfig({
      codec: "aac",
      codecString: "mp4a.40.2",
      description: ASC,
      sampleRate: 48000,
      channels: 2,
    });
    return { publisher: p, video: 0, audio: 0 };
  });
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      if (elapsed >= seconds * 1000) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (const stream of publishers) {
        while ((stream.video * 1000) / FPS <= elapsed) {
          const dts = Math.round((stream.video * 1000) / FPS);
          const isKey = stream.video % GOP === 0;
          if (publish)
            stream.publisher.pushVideo({ dts, pts: dts, keyframe: isKey, data: isKey ? keyframe : delta });
          stream.video++;
        }
        while ((stream.audio * 1000) / AAC_FRAMES_PER_SECOND <= elapsed) {
          const dts = Math.round((stream.audio * 1000) / AAC_FRAMES_PER_SECOND);
          if (publish) stream.publisher.pushAudio({ dts, pts: dts, keyframe: true, data: aac });
          stream.audio++;
        }
      }
    }, 5);
  });
  const used = process.cpuUsage(cpuBefore);
  for (const stream of publishers) stream.publisher.close();
  return (used.user + used.system) / 1000;
}

const realtimeStreams = smoke ? 4 : 20;
const realtimeSeconds = smoke ? 2 : 15;
const baselineMs = await realtimeCpu(realtimeStreams, realtimeSeconds, false);
const loadedMs = await realtimeCpu(realtimeStreams, realtimeSeconds, true);
const perStream = ((loadedMs - baselineMs) / (realtimeStreams * realtimeSeconds * 1000)) * 100;
results[`real time: ${realtimeStreams} streams x ${realtimeSeconds} s, CPU ms (timer baseline)`] =
  `${Math.round(loadedMs)} (${Math.round(baselineMs)})`;
results["real time: packaging CPU per stream (% of one core)"] = Math.max(perStream, 0).toFixed(3);

const width = Math.max(...Object.keys(results).map((k) => k.length));
for (const [key, value] of Object.entries(results)) {
  console.log(`${key.padEnd(width)}  ${typeof value === "number" ? format(value) : value}`);
}
console.log(JSON.stringify({ bench: "cmaf", smoke, results }));
