import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MediaSample, parseAudioTag, parseFlvFile, parseVideoTag } from "../../src/index.ts";

/** Throws a clear error when ffmpeg is not installed (the tests need the real encoder). */
export function requireFfmpeg(): void {
  try {
    execFileSync("ffmpeg", ["-version"], { stdio: "ignore" });
  } catch {
    throw new Error("ffmpeg is not installed; these tests publish with the real ffmpeg (apt install ffmpeg)");
  }
}

/** One expected or received sample, reduced to what is compared. */
export interface SampleDigest {
  readonly kind: "video" | "audio";
  readonly dts: number;
  readonly pts: number;
  readonly keyframe: boolean;
  readonly size: number;
  readonly sha1: string;
}

const sha1 = (b: Uint8Array): string => createHash("sha1").update(b).digest("hex");

/** Reduces samples the server emitted. */
export function digestSamples(samples: readonly MediaSample[]): SampleDigest[] {
  return samples.map((s) => ({
    kind: s.kind,
    dts: s.dts,
    pts: s.pts,
    keyframe: s.keyframe,
    size: s.data.byteLength,
    sha1: sha1(s.data),
  }));
}

/** Input and encoding arguments shared by the reference encode and the publish. */
export function encodeArgs(options: {
  seconds: number;
  video?: boolean;
  audio?: boolean;
  bframes?: number;
  offsetSeconds?: number;
  size?: string;
}): string[] {
  const args: string[] = [];
  const video = options.video ?? true;
  const audio = options.audio ?? true;
  if (video) args.push("-f", "lavfi", "-i", `testsrc2=size=${options.size ?? "640x360"}:rate=30`);
  if (audio) args.push("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000");
  args.push("-t", String(options.seconds));
  if (video)
    args.push(
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-g",
      "60",
      "-bf",
      String(options.bframes ?? 0),
      "-pix_fmt",
      "yuv420p",
    );
  if (audio) args.push("-c:a", "aac", "-b:a", "96k");
  if (options.offsetSeconds !== undefined) args.push("-output_ts_offset", String(options.offsetSeconds));
  return args;
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const ff = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", ...args]);
    let stderr = "";
    ff.stderr.on("data", (d) => {
      stderr += d;
    });
    ff.on("error", reject);
    ff.on("exit", (code) =>
      code === 0 ? resolve(stderr) : reject(new Error(`ffmpeg exited with ${code}: ${stderr}`)),
    );
  });
}

/**
 * Encodes with the given arguments into an FLV file and returns the samples it contains, as the
 * ingest should see them when ffmpeg publishes the same encoding over RTMP.
 */
export async function referenceSamples(args: string[]): Promise<SampleDigest[]> {
  const dir = await mkdtemp(join(tmpdir(), "ingest-rtmp-ref-"));
  try {
    const file = join(dir, "ref.flv");
    await run(["-y", ...args, "-f", "flv", file]);
    const out: SampleDigest[] = [];
    for (const tag of parseFlvFile(new Uint8Array(await readFile(file)))) {
      if (tag.type === 9) {
        const p = parseVideoTag(tag.body);
        if (p.type === "frame" && p.data.byteLength > 0) {
          out.push({
            kind: "video",
            dts: tag.timestamp,
            pts: tag.timestamp + p.compositionTime,
            keyframe: p.keyframe,
            size: p.data.byteLength,
            sha1: sha1(p.data),
          });
        }
      } else if (tag.type === 8) {
        const p = parseAudioTag(tag.body);
        if (p.type === "frame" && p.data.byteLength > 0) {
          out.push({
            kind: "audio",
            dts: tag.timestamp,
            pts: tag.timestamp,
            keyframe: true,
            size: p.data.byteLength,
            sha1: sha1(p.data),
          });
        }
      }
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Publishes with ffmpeg; resolves when ffmpeg exits successfully. */
export function publishWithFfmpeg(
  args: string[],
  url: string,
  options?: { realtime?: boolean },
): Promise<string> {
  return run([...(options?.realtime ? ["-re"] : []), ...args, "-f", "flv", url]);
}
