/**
 * HLS viewers for the cluster tests. `playWithFfmpeg` is the real player: ffmpeg's HLS demuxer
 * follows redirects, reads the playlists and decodes the media. `HlsPlaylistWatcher` reloads a media
 * playlist and records its newest segment/part, to show that playback keeps advancing (through an
 * outage, across a failover).
 */

import { spawn } from "node:child_process";

/** What ffmpeg decoded. */
export interface FfmpegPlayback {
  readonly code: number | null;
  /** Video frames decoded (from ffmpeg's final progress line). */
  readonly frames: number;
  readonly stderr: string;
}

/**
 * Plays `url` with ffmpeg until it has decoded `seconds` worth of video frames at 25 fps (decoding,
 * no output file) and reports the frames it decoded. Counting frames, not output time, because
 * with separate audio and video playlists the output clock can start seconds before the video.
 * Rejects only when ffmpeg cannot be started.
 */
export function playWithFfmpeg(url: string, seconds: number, timeoutMs = 30_000): Promise<FfmpegPlayback> {
  return new Promise((resolve, reject) => {
    const frames = String(Math.round(seconds * 25));
    const child = spawn(
      "ffmpeg",
      [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "info",
        "-i",
        url,
        "-map",
        "0:v:0",
        "-frames:v",
        frames,
        "-f",
        "null",
        "-",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-32_768);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ffmpeg: ${err.message}`));
    });
    child.once("exit", (code, signal) => {
      if (signal) stderr += `\nffmpeg killed by ${signal}`;
      clearTimeout(timer);
      const matches = [...stderr.matchAll(/frame=\s*(\d+)/g)];
      const decoded = matches.length ? Number(matches[matches.length - 1]![1]) : 0;
      resolve({ code, frames: decoded, stderr });
    });
  });
}

/** One reload of a media playlist. */
export interface PlaylistSample {
  readonly at: number;
  readonly status: number;
  /** Media sequence number of the newest segment or part listed, or -1. */
  readonly newestMsn: number;
  /** Number of parts of the newest segment (LL-HLS), -1 when none. */
  readonly newestPart: number;
  readonly discontinuities: number;
  /** Segments and parts listed after the last `EXT-X-DISCONTINUITY` (-1 when there is none). */
  readonly afterDiscontinuity: number;
  readonly ended: boolean;
}

/** Parses what `PlaylistSample` needs from a media playlist. */
export function summarizePlaylist(text: string): Omit<PlaylistSample, "at" | "status"> {
  let sequence = 0;
  let segments = 0;
  let partsAfterLastSegment = 0;
  let discontinuities = 0;
  let afterDiscontinuity = -1;
  for (const line of text.split("\n")) {
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) sequence = Number(line.slice(22));
    else if (line.startsWith("#EXTINF:")) {
      segments += 1;
      partsAfterLastSegment = 0;
      if (afterDiscontinuity >= 0) afterDiscontinuity += 1;
    } else if (line.startsWith("#EXT-X-PART:")) {
      partsAfterLastSegment += 1;
      if (afterDiscontinuity >= 0) afterDiscontinuity += 1;
    } else if (line.startsWith("#EXT-X-DISCONTINUITY") && !line.startsWith("#EXT-X-DISCONTINUITY-SEQUENCE")) {
      discontinuities += 1;
      afterDiscontinuity = 0;
    }
  }
  const newestMsn = partsAfterLastSegment > 0 ? sequence + segments : sequence + segments - 1;
  return {
    newestMsn,
    newestPart: partsAfterLastSegment > 0 ? partsAfterLastSegment - 1 : -1,
    discontinuities,
    afterDiscontinuity,
    ended: text.includes("#EXT-X-ENDLIST"),
  };
}

/** Reloads a media playlist every `intervalMs` until stopped. */
export class HlsPlaylistWatcher {
  readonly url: string;
  readonly samples: PlaylistSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight = false;

  constructor(url: string, intervalMs = 250) {
    this.url = url;
    this.#timer = setInterval(() => void this.#reload(), intervalMs);
    void this.#reload();
  }

  /** Samples that got a playlist (HTTP 200). */
  ok(): PlaylistSample[] {
    return this.samples.filter((sample) => sample.status === 200);
  }

  /** The newest (msn, part) seen so far, as one comparable number. */
  progress(): number {
    let best = -1;
    for (const sample of this.ok()) best = Math.max(best, sample.newestMsn * 1000 + sample.newestPart + 1);
    return best;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #reload(): Promise<void> {
    if (this.#inFlight) return;
    this.#inFlight = true;
    const at = performance.now();
    try {
      const response = await fetch(this.url, { signal: AbortSignal.timeout(5000) });
      const text = await response.text();
      this.samples.push({ at, status: response.status, ...summarizePlaylist(response.ok ? text : "") });
    } catch {
      this.samples.push({
        at,
        status: 0,
        newestMsn: -1,
        newestPart: -1,
        discontinuities: 0,
        afterDiscontinuity: -1,
        ended: false,
      });
    } finally {
      this.#inFlight = false;
    }
  }
}
