/**
 * The real publisher and prober: `ffmpeg` (from the system packages) encoding a test pattern with
 * a tone and pushing it over RTMP, and `ffprobe` reading what the server serves.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Throws a message naming the missing package when `tool` is not on PATH; these tests need it. */
export function requireTool(tool: "ffmpeg" | "ffprobe"): void {
  try {
    execFileSync(tool, ["-version"], { stdio: "ignore", timeout: 10_000 });
  } catch {
    throw new Error(
      `${tool} is not installed; the end-to-end tests use the real one (apt-get install ffmpeg)`,
    );
  }
}

/** What the publisher encodes. */
export interface PublishOptions {
  /** Frame size, default `640x360`. */
  readonly size?: string;
  /** Frames per second, default 30. */
  readonly fps?: number;
  /** Video bit rate in kbit/s, default 800. */
  readonly videoKbps?: number;
  /** Keyframe interval in seconds, default 1. */
  readonly gopSeconds?: number;
  /** Include an AAC tone, default true. */
  readonly audio?: boolean;
  /** x264 preset, default `veryfast`. */
  readonly preset?: string;
  /** Stop after this many seconds; default: run until {@link FfmpegPublisher.stop}. */
  readonly durationSeconds?: number;
}

/** How ffmpeg ended. */
export interface FfmpegExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines ffmpeg wrote to stderr. */
  readonly stderr: string;
}

const STDERR_KEEP = 16_384;

/** Encoder arguments for a live test pattern (video, and a tone unless disabled). */
export function liveSourceArgs(options: PublishOptions = {}): string[] {
  const fps = options.fps ?? 30;
  const kbps = options.videoKbps ?? 800;
  const gop = Math.max(1, Math.round(fps * (options.gopSeconds ?? 1)));
  const args = ["-re", "-f", "lavfi", "-i", `testsrc2=size=${options.size ?? "640x360"}:rate=${fps}`];
  if (options.audio !== false) args.push("-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000");
  if (options.durationSeconds !== undefined) args.push("-t", String(options.durationSeconds));
  args.push(
    "-c:v",
    "libx264",
    "-preset",
    options.preset ?? "veryfast",
    "-tune",
    "zerolatency",
    "-pix_fmt",
    "yuv420p",
    "-g",
    String(gop),
    "-keyint_min",
    String(gop),
    "-sc_threshold",
    "0",
    "-b:v",
    `${kbps}k`,
    "-maxrate",
    `${kbps}k`,
    "-bufsize",
    `${kbps * 2}k`,
  );
  if (options.audio !== false) args.push("-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2");
  return args;
}

/** An ffmpeg process publishing to one RTMP URL. */
export class FfmpegPublisher {
  readonly url: string;
  /** Resolves when ffmpeg has exited, however it ended. */
  readonly exited: Promise<FfmpegExit>;
  readonly #child: ChildProcess;
  #stderr = "";
  #exit: FfmpegExit | undefined;

  private constructor(url: string, args: string[]) {
    this.url = url;
    this.#child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.#child.stderr!.setEncoding("utf8");
    this.#child.stderr!.on("data", (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEEP);
    });
    this.exited = new Promise((resolve) => {
      this.#child.on("error", (error) => {
        this.#stderr += `\nspawn failed: ${error.message}`;
      });
      this.#child.on("close", (code, signal) => {
        this.#exit = { code, signal, stderr: this.#stderr };
        resolve(this.#exit);
      });
    });
  }

  /** Starts publishing `url` (an `rtmp://` URL, query included) with a live test pattern. */
  static start(url: string, options: PublishOptions = {}): FfmpegPublisher {
    const args = [
      "-hide_banner",
      "-nostdin",
      "-loglevel",
      "warning",
      ...liveSourceArgs(options),
      "-f",
      "flv",
      url,
    ];
    return new FfmpegPublisher(url, args);
  }

  /** Whether ffmpeg is still running. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The OS process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** What ffmpeg wrote to stderr so far (the last 16 kB). */
  get stderr(): string {
    return this.#stderr;
  }

  /**
   * Stops publishing like an operator would (SIGINT: ffmpeg flushes and unpublishes), then kills
   * it if it has not exited within `graceMs`. Idempotent.
   */
  async stop(graceMs = 5000): Promise<FfmpegExit> {
    if (this.#exit) return this.#exit;
    this.#child.kill("SIGINT");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A stream as ffprobe reports it. */
export interface ProbedStream {
  readonly codec_type: string;
  readonly codec_name: string;
  readonly width?: number;
  readonly height?: number;
  readonly sample_rate?: string;
  readonly channels?: number;
}

/** Packets ffprobe demuxed of one stream type. */
export interface ProbedPackets {
  readonly count: number;
  /** Lowest and highest presentation time seen, seconds. */
  readonly firstPts: number;
  readonly lastPts: number;
  /** Distinct presentation times (a demuxer stuck on one segment repeats the same ones). */
  readonly distinctPts: number;
}

/** What ffprobe found at a URL. */
export interface ProbeResult {
  readonly streams: ProbedStream[];
  readonly format: { readonly format_name: string };
  /** Packets demuxed per stream type, when `packets` was asked for. */
  readonly packets?: { readonly video?: ProbedPackets; readonly audio?: ProbedPackets };
}

/**
 * Runs ffprobe on `url` and returns its streams and format; with `packets` it also demuxes that
 * many packets (`-read_intervals %+#N`) and reports per stream type how many there were and the
 * span of their timestamps, which proves the segments themselves parse and follow each other.
 */
export async function ffprobe(
  url: string,
  options: { packets?: number; timeoutMs?: number } = {},
): Promise<ProbeResult> {
  const args = ["-v", "error", "-print_format", "json", "-show_streams", "-show_format"];
  if (options.packets !== undefined) {
    args.push("-show_entries", "packet=codec_type,pts_time", "-read_intervals", `%+#${options.packets}`);
  }
  args.push(url);
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync("ffprobe", args, {
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (error) {
    const { killed, stderr } = error as { killed?: boolean; stderr?: string };
    throw new Error(
      `ffprobe ${url} ${killed ? "did not finish in time" : "failed"}: ${(stderr ?? String(error)).slice(-2000)}`,
    );
  }
  const parsed = JSON.parse(stdout) as ProbeResult & {
    packets?: Array<{ codec_type: string; pts_time?: string }>;
  };
  const result: ProbeResult = { streams: parsed.streams, format: parsed.format };
  if (!Array.isArray(parsed.packets)) return result;
  const summarize = (type: string): ProbedPackets | undefined => {
    const times = parsed
      .packets!.filter((packet) => packet.codec_type === type && packet.pts_time !== undefined)
      .map((packet) => Number(packet.pts_time));
    if (times.length === 0) return undefined;
    return {
      count: times.length,
      firstPts: Math.min(...times),
      lastPts: Math.max(...times),
      distinctPts: new Set(times).size,
    };
  };
  return { ...result, packets: { video: summarize("video"), audio: summarize("audio") } };
}
