/**
 * `probe()`: asks ffprobe about a URL, a file or bytes, when ffprobe is installed. This package
 * never needs it; a test that wants a second opinion on the media uses it and gets an explicit
 * `skipped` result (never a silent pass) on machines without ffprobe.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One stream as ffprobe reports it (the fields tests use most; `raw` has everything). */
export interface ProbeStream {
  readonly index: number;
  readonly codecType: string | undefined;
  readonly codecName: string | undefined;
  readonly profile: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly sampleRate: number | undefined;
  readonly channels: number | undefined;
  readonly raw: Readonly<Record<string, unknown>>;
}

/** What `probe()` found. */
export type ProbeResult =
  | {
      readonly status: "ok";
      readonly streams: readonly ProbeStream[];
      readonly formatName: string | undefined;
      readonly durationS: number | undefined;
      readonly raw: Readonly<Record<string, unknown>>;
    }
  | { readonly status: "skipped"; readonly reason: string }
  | { readonly status: "failed"; readonly exitCode: number | null; readonly stderr: string };

/** Options of {@link probe}. */
export interface ProbeOptions {
  /** The ffprobe executable (default `ffprobe` on PATH, or the `FFPROBE` environment variable). */
  readonly ffprobePath?: string;
  /** Kill ffprobe after this long (default 20 000 ms); reported as failed. */
  readonly timeoutMs?: number;
  /** Extra arguments before the input (e.g. `["-count_frames"]`). */
  readonly args?: readonly string[];
  /** File name extension for byte input, so ffprobe picks the demuxer (default ".mp4"). */
  readonly extension?: string;
}

const MAX_OUTPUT = 8 * 1024 * 1024;

function optionalNumber(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) ? n : undefined;
}

/**
 * Runs `ffprobe -show_streams -show_format` on `input` (a URL, a file path, or bytes written to a
 * temporary file). Resolves `skipped` when ffprobe is not installed, `failed` with its stderr when
 * it rejects the input, `ok` with the streams otherwise. Never rejects.
 */
export async function probe(input: string | Uint8Array, options: ProbeOptions = {}): Promise<ProbeResult> {
  let dir: string | undefined;
  let target: string;
  if (typeof input === "string") {
    target = input;
  } else {
    dir = await mkdtemp(join(tmpdir(), "lvqr-probe-"));
    target = join(dir, `input${options.extension ?? ".mp4"}`);
    await writeFile(target, input);
  }
  try {
    return await runFfprobe(target, options);
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

function runFfprobe(target: string, options: ProbeOptions): Promise<ProbeResult> {
  const command = options.ffprobePath ?? process.env["FFPROBE"] ?? "ffprobe";
  const args = [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_streams",
    "-show_format",
    ...(options.args ?? []),
    "-i",
    target,
  ];
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish({
        status: "failed",
        exitCode: null,
        stderr: `ffprobe did not finish within ${options.timeoutMs ?? 20_000} ms`,
      });
    }, options.timeoutMs ?? 20_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") {
        finish({ status: "skipped", reason: `ffprobe is not installed (no "${command}" on PATH)` });
      } else {
        finish({ status: "failed", exitCode: null, stderr: error.message });
      }
    });
    child.on("close", (code) => {
      if (code !== 0) return finish({ status: "failed", exitCode: code, stderr: stderr.trim() });
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(stdout) as Record<string, unknown>;
      } catch {
        return finish({
          status: "failed",
          exitCode: code,
          stderr: `ffprobe printed no JSON: ${stdout.slice(0, 200)}`,
        });
      }
      const streams = (Array.isArray(raw["streams"]) ? raw["streams"] : []) as Record<string, unknown>[];
      const format = (raw["format"] ?? {}) as Record<string, unknown>;
      finish({
        status: "ok",
        streams: streams.map((s) => ({
          index: optionalNumber(s["index"]) ?? 0,
          codecType: s["codec_type"] as string | undefined,
          codecName: s["codec_name"] as string | undefined,
          profile: s["profile"] as string | undefined,
          width: optionalNumber(s["width"]),
          height: optionalNumber(s["height"]),
          sampleRate: optionalNumber(s["sample_rate"]),
          channels: optionalNumber(s["channels"]),
          raw: s,
        })),
        formatName: format["format_name"] as string | undefined,
        durationS: optionalNumber(format["duration"]),
        raw,
      });
    });
  });
}
