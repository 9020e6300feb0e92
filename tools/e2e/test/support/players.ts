/// <reference lib="dom" />
/**
 * Test pages for the three browser players and a runner that plays one for a while and measures
 * it. Every page keeps `window.stats`: when playback started, how often it stalled (rebuffers),
 * errors, and a sample every 250 ms of the media time and the player's live latency.
 */
import type { BrowserHarness, HarnessPage } from "./browser.ts";

/** A 250 ms sample of a playing page. */
export interface PlayerSample {
  /** Wall clock, Unix ms. */
  readonly now: number;
  /** Media time being shown, seconds. */
  readonly mediaTime: number | null;
  /** The player's own live-latency estimate in seconds (null when it has none). */
  readonly latency: number | null;
  /** Canvas fingerprint (@moq/watch only): changes when new frames are painted. */
  readonly paint?: string | null;
  /** Decoded video frames so far (@moq/watch only). */
  readonly frames?: number | null;
  /** The sync jitter buffer in ms (@moq/watch only). */
  readonly jitterMs?: number | null;
}

/** What a page records. */
export interface PlayerStats {
  /** Unix ms when playback started (0 until then). */
  started: number;
  /** Stalls after playback started. */
  rebuffers: number;
  errors: string[];
  samples: PlayerSample[];
}

/** hls.js in low-latency mode; latency is wall clock minus the playing frame's PROGRAM-DATE-TIME. */
export function hlsJsPage(src: string): string {
  return `<!doctype html><html><body>
<video id="v" muted playsinline></video>
<script src="/assets/hls.min.js"></script>
<script>
const stats = (window.stats = { started: 0, rebuffers: 0, errors: [], samples: [] });
const video = document.getElementById("v");
const hls = new Hls({ lowLatencyMode: true });
hls.on(Hls.Events.ERROR, (_e, d) => stats.errors.push(d.type + ":" + d.details + ":" + (d.fatal ? "fatal" : "recovered")));
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((e) => stats.errors.push("play:" + e)));
hls.loadSource(${JSON.stringify(src)});
hls.attachMedia(video);
video.addEventListener("playing", () => { if (!stats.started) stats.started = Date.now(); });
video.addEventListener("waiting", () => { if (stats.started) stats.rebuffers++; });
setInterval(() => {
  const date = hls.playingDate;
  stats.samples.push({ now: Date.now(), mediaTime: video.currentTime,
    latency: date ? (Date.now() - date.getTime()) / 1000 : null });
}, 250);
</script></body></html>`;
}

/** dash.js; latency is dash.js's own live-latency figure (wall clock vs the MPD timeline). */
export function dashJsPage(src: string): string {
  return `<!doctype html><html><body>
<video id="v" muted playsinline></video>
<script src="/assets/dash.all.min.js"></script>
<script>
const stats = (window.stats = { started: 0, rebuffers: 0, errors: [], samples: [] });
const video = document.getElementById("v");
const player = dashjs.MediaPlayer().create();
player.on(dashjs.MediaPlayer.events.ERROR, (e) => stats.errors.push(JSON.stringify(e.error || e)));
player.initialize(video, ${JSON.stringify(src)}, true);
video.addEventListener("playing", () => { if (!stats.started) stats.started = Date.now(); });
video.addEventListener("waiting", () => { if (stats.started) stats.rebuffers++; });
setInterval(() => {
  const latency = player.getCurrentLiveLatency();
  stats.samples.push({ now: Date.now(), mediaTime: video.currentTime,
    latency: Number.isFinite(latency) ? latency : null });
}, 250);
</script></body></html>`;
}

/**
 * The official `<moq-watch>` element, as the brief's markup. Playback is measured from the
 * element's signals: the shown frame's timestamp, the decoder's `stalled` flag (a rebuffer is a
 * transition into stalled after the first frame) and frame count, and a fingerprint of the
 * canvas pixels, which must keep changing while frames are painted. The element has no
 * wall-clock latency of its own; the test derives one from the media time (see `mediaTime`).
 */
export function moqWatchPage(moqUrl: string, broadcast: string, bundleEntry: string): string {
  return `<!doctype html><html><body style="margin:0">
<moq-watch url="${escapeAttribute(moqUrl)}" name="${escapeAttribute(broadcast)}" muted><canvas></canvas></moq-watch>
<script type="module">
const stats = (window.stats = { started: 0, rebuffers: 0, errors: [], samples: [] });
window.addEventListener("error", (e) => stats.errors.push("error:" + e.message));
window.addEventListener("unhandledrejection", (e) => stats.errors.push("rejection:" + e.reason));
try {
  await import(${JSON.stringify(bundleEntry)});
} catch (e) {
  stats.errors.push("import:" + e);
}
const element = document.querySelector("moq-watch");
const canvas = element.querySelector("canvas");
let wasStalled = true;
function paint() {
  if (!canvas.width || !canvas.height) return null;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  // A cheap fingerprint over a grid of pixels; the test pattern moves, so it changes per frame.
  let hash = 0, lit = 0;
  const step = Math.max(4, Math.floor(data.length / 4096 / 4) * 4);
  for (let i = 0; i < data.length; i += step) {
    hash = (hash * 31 + data[i] + (data[i + 1] << 8) + (data[i + 2] << 16)) >>> 0;
    if (data[i] + data[i + 1] + data[i + 2] > 30) lit++;
  }
  return lit > 0 ? hash.toString(16) + ":" + lit : "dark";
}
setInterval(() => {
  const timestamp = element.video.out.timestamp.peek();
  const frames = element.video.out.stats.peek()?.frameCount ?? null;
  const stalled = element.video.out.stalled.peek();
  if (!stats.started && timestamp !== undefined) stats.started = Date.now();
  if (stats.started && stalled && !wasStalled) stats.rebuffers++;
  wasStalled = stalled;
  stats.samples.push({ now: Date.now(), mediaTime: timestamp === undefined ? null : timestamp / 1000,
    latency: null, paint: paint(), frames, jitterMs: element.sync.out.jitter.peek() ?? null });
}, 250);
</script></body></html>`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

/** Opens `url` in a new tab, waits for playback to start, lets it play `seconds`, and returns the tab and its stats. */
export async function playFor(
  browser: BrowserHarness,
  url: string,
  seconds: number,
  options: { startTimeoutMs?: number } = {},
): Promise<{ tab: HarnessPage; stats: PlayerStats }> {
  const tab = await browser.newPage();
  try {
    await tab.page.goto(url);
    const readStats = () => tab.page.evaluate(() => (window as unknown as { stats: PlayerStats }).stats);
    try {
      await tab.page.waitForFunction(
        () => (window as unknown as { stats: PlayerStats }).stats.started > 0,
        undefined,
        {
          timeout: options.startTimeoutMs ?? 30_000,
          polling: 250,
        },
      );
    } catch (error) {
      const stats = await readStats().catch(() => undefined);
      const logs = tab.console.map((entry) => `${entry.type}: ${entry.text}`).slice(-20);
      throw new Error(
        `playback of ${url} did not start: ${(error as Error).message}\nerrors: ${JSON.stringify(stats?.errors)}\nconsole:\n${logs.join("\n")}`,
      );
    }
    const started = (await readStats()).started;
    await tab.page.waitForFunction((until) => Date.now() >= until, started + seconds * 1000, {
      timeout: (seconds + 15) * 1000,
      polling: 500,
    });
    return { tab, stats: await readStats() };
  } catch (error) {
    await tab.close();
    throw error;
  }
}

/** A playback run reduced to its figures. */
export interface PlaybackSummary {
  readonly player: string;
  /** Media seconds advanced while playing. */
  readonly playedSeconds: number;
  /** Wall-clock seconds the samples span. */
  readonly wallSeconds: number;
  readonly rebuffers: number;
  /** Median live latency over the second half of the run, seconds. */
  readonly medianLatencySeconds: number | null;
  readonly errors: string[];
}

/**
 * Summarizes the samples after playback started. `latencyOf` overrides the page's own latency
 * figure (the MoQ player's latency is derived from its media time in the test).
 */
export function summarizePlayback(
  player: string,
  stats: PlayerStats,
  latencyOf: (sample: PlayerSample) => number | null = (sample) => sample.latency,
): PlaybackSummary {
  const played = stats.samples.filter((sample) => sample.now >= stats.started && sample.mediaTime !== null);
  const first = played[0];
  const last = played[played.length - 1];
  const latencies = played
    .slice(Math.floor(played.length / 2))
    .map(latencyOf)
    .filter((value): value is number => value !== null && Number.isFinite(value))
    .sort((a, b) => a - b);
  const median = latencies[Math.floor(latencies.length / 2)];
  return {
    player,
    playedSeconds: first && last ? round(last.mediaTime! - first.mediaTime!) : 0,
    wallSeconds: first && last ? round((last.now - first.now) / 1000) : 0,
    rebuffers: stats.rebuffers,
    medianLatencySeconds: median === undefined ? null : round(median),
    errors: stats.errors,
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
