/**
 * The main end-to-end path against real peers: ffmpeg publishes H.264 + AAC over RTMP to a server
 * started in-process, and then
 * - the official @moq/lite client receives `catalog.json` and media groups,
 * - hls.js (low-latency mode), dash.js and the official @moq/watch element (over WebSocket) each
 *   play 20 s in headless Chromium, with live latency and rebuffers measured and printed,
 * - ffprobe demuxes the HLS and DASH output,
 * - the admin API's SLO, streams and stats reflect all of it.
 * One server and one publisher serve every test in this file.
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { TestServer, waitFor } from "@lvqr/test-utils";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BrowserHarness } from "./support/browser.ts";
import { FfmpegPublisher, ffprobe, requireTool } from "./support/ffmpeg.ts";
import {
  type CatalogRendition,
  type HangCatalog,
  LiteViewer,
  type TrackRecorder,
} from "./support/moq-viewer.ts";
import { buildMoqWatchBundle } from "./support/moq-watch-bundle.ts";
import {
  dashJsPage,
  hlsJsPage,
  moqWatchPage,
  type PlaybackSummary,
  playFor,
  summarizePlayback,
} from "./support/players.ts";

const BROADCAST = "live/e2e";
const PLAY_SECONDS = 20;

let server: TestServer;
let publisher: FfmpegPublisher;
let browser: BrowserHarness;
let bundleDir: string;
let viewer: LiteViewer;
let catalog: HangCatalog;
let videoRecorder: TrackRecorder;
const summaries: PlaybackSummary[] = [];

async function admin<T>(route: string): Promise<T> {
  const response = await fetch(server.adminUrl(route));
  expect(response.status, `GET ${route}`).toBe(200);
  return (await response.json()) as T;
}

function firstRendition(section: { renditions: Record<string, CatalogRendition> } | undefined) {
  const entry = Object.entries(section?.renditions ?? {})[0];
  if (!entry) throw new Error(`catalog has no rendition: ${JSON.stringify(catalog)}`);
  return { track: entry[0], rendition: entry[1] };
}

beforeAll(async () => {
  requireTool("ffmpeg");
  requireTool("ffprobe");
  // The official MoQ client logs every stream at debug level, and reports its own connection
  // closing at the end of the file as an error.
  vi.spyOn(console, "debug").mockImplementation(() => {});
  const error = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    if (/^(fatal error running connection|subscribe error)/.test(String(args[0]))) return;
    error(...args);
  });

  server = await TestServer.start({ dash: true });
  publisher = FfmpegPublisher.start(server.rtmpUrl("live", "e2e"));
  const require = createRequire(import.meta.url);
  bundleDir = await mkdtemp(path.join(tmpdir(), "lvqr-e2e-moq-watch-"));
  const [, bundle] = await Promise.all([
    (async () => {
      browser = await BrowserHarness.launch();
    })(),
    buildMoqWatchBundle(bundleDir),
  ]);
  browser.addFile("/assets/hls.min.js", require.resolve("hls.js/dist/hls.min.js"));
  // The "require" condition of dashjs is its UMD build (dist/modern/umd/dash.all.min.js).
  browser.addFile("/assets/dash.all.min.js", require.resolve("dashjs"));
  for (const file of bundle.files) browser.addFile(`/moq-watch/${file}`, path.join(bundle.dir, file));

  // Players join a stream with some history: wait for two complete HLS segments.
  await waitFor(
    async () => {
      if (!publisher.running) throw new Error(`ffmpeg exited early:\n${publisher.stderr}`);
      const response = await fetch(server.hlsUrl(BROADCAST, "playlist.m3u8"));
      return response.ok && ((await response.text()).match(/#EXTINF/g) ?? []).length >= 2;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: "two HLS segments of the ffmpeg publish" },
  );
}, 90_000);

afterAll(async () => {
  viewer?.close();
  await browser?.close();
  await publisher?.stop();
  await server?.stop();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
  if (summaries.length > 0)
    console.log(`[e2e playback]\n${summaries.map((s) => JSON.stringify(s)).join("\n")}`);
});

describe("ffmpeg publishes RTMP; every egress serves it to real players", () => {
  it("the official @moq/lite client receives catalog.json and media groups", async () => {
    viewer = await LiteViewer.connect(server.moqUrl());
    await viewer.waitAnnounced(BROADCAST);
    catalog = await viewer.readCatalog(BROADCAST);

    const video = firstRendition(catalog.video);
    const audio = firstRendition(catalog.audio);
    expect(video.rendition.codec).toMatch(/^avc1\.64/);
    expect(video.rendition.codedWidth).toBe(640);
    expect(video.rendition.codedHeight).toBe(360);
    expect(video.rendition.container?.kind).toBe("cmaf");
    expect(audio.rendition.codec).toBe("mp4a.40.2");
    expect(audio.rendition.sampleRate).toBe(48_000);
    expect(audio.rendition.numberOfChannels).toBe(2);
    for (const { rendition } of [video, audio]) {
      const init = Buffer.from(rendition.container!.init!, "base64");
      expect(init.subarray(4, 8).toString("latin1")).toBe("ftyp");
    }

    videoRecorder = viewer.record(BROADCAST, video.track, 60, video.rendition);
    const audioRecorder = viewer.record(BROADCAST, audio.track, 80, audio.rendition);
    await videoRecorder.waitForGroups(4);
    await audioRecorder.waitForGroups(4);

    // Video groups are GOPs (1 s at 30 fps): every group starts with a moof, decode times advance.
    const groups = [...videoRecorder.groups].sort((a, b) => a.sequence - b.sequence).slice(-3);
    for (const group of groups) {
      expect(group.firstBox).toBe("moof");
      expect(group.frames).toBeGreaterThanOrEqual(20);
      expect(group.bytes).toBeGreaterThan(10_000);
    }
    for (let i = 1; i < groups.length; i++) {
      const step = groups[i]!.firstDecodeSeconds! - groups[i - 1]!.firstDecodeSeconds!;
      expect(step).toBeGreaterThan(0.5);
      expect(step).toBeLessThan(2.5);
    }
    expect(audioRecorder.groups.every((group) => group.firstBox === "moof")).toBe(true);
    expect(videoRecorder.error).toBeUndefined();
    // The video recorder keeps running: its arrival times anchor the MoQ player's latency below.
  });

  it(`hls.js (low-latency mode) plays ${PLAY_SECONDS} s`, async () => {
    browser.addPage("/hls.html", hlsJsPage(server.hlsUrl(BROADCAST)));
    const { tab, stats } = await playFor(browser, `${browser.baseUrl}/hls.html`, PLAY_SECONDS);
    await tab.close();
    const summary = summarizePlayback("hls.js", stats);
    summaries.push(summary);
    expect(stats.errors.filter((error) => error.endsWith(":fatal"))).toEqual([]);
    expect(summary.playedSeconds).toBeGreaterThan(PLAY_SECONDS - 3);
    expect(summary.rebuffers).toBeLessThanOrEqual(3);
    expect(summary.medianLatencySeconds).not.toBeNull();
    // LL-HLS with 200 ms parts: about 1.3 s on an idle machine; segment-based HLS (HOLD-BACK
    // of three 2 s segments) could not get below 6 s. The bound leaves room for a loaded CI host.
    expect(summary.medianLatencySeconds!).toBeLessThan(5);
  }, 90_000);

  it(`dash.js plays ${PLAY_SECONDS} s`, async () => {
    browser.addPage("/dash.html", dashJsPage(server.dashUrl(BROADCAST)));
    const { tab, stats } = await playFor(browser, `${browser.baseUrl}/dash.html`, PLAY_SECONDS);
    await tab.close();
    const summary = summarizePlayback("dash.js", stats);
    summaries.push(summary);
    expect(stats.errors).toEqual([]);
    expect(summary.playedSeconds).toBeGreaterThan(PLAY_SECONDS - 3);
    expect(summary.rebuffers).toBeLessThanOrEqual(3);
    expect(summary.medianLatencySeconds).not.toBeNull();
    // dash.js targets the MPD's suggestedPresentationDelay (about two 2 s segments).
    expect(summary.medianLatencySeconds!).toBeLessThan(10);
  }, 90_000);

  it(`the official @moq/watch element plays ${PLAY_SECONDS} s over WebSocket`, async () => {
    const moqPort = server.addresses.moq.port;
    browser.addPage(
      "/moq-watch.html",
      moqWatchPage(`http://127.0.0.1:${moqPort}/`, BROADCAST, "/moq-watch/moq-watch.js"),
    );
    const { tab, stats } = await playFor(browser, `${browser.baseUrl}/moq-watch.html`, PLAY_SECONDS);
    await tab.close();

    // The client raced WebTransport (no QUIC here) against WebSocket and landed on WebSocket.
    expect(tab.console.some((entry) => /connected via WebSocket/i.test(entry.text))).toBe(true);

    // Latency: wall clock minus the wall-clock time the shown media time reached this host, taken
    // from the @moq/lite viewer subscribed to the same track (same clock, same machine).
    const anchor = videoRecorder.anchorMs();
    expect(anchor).toBeDefined();
    const summary = summarizePlayback("@moq/watch", stats, (sample) =>
      sample.mediaTime === null ? null : (sample.now - anchor! - sample.mediaTime * 1000) / 1000,
    );
    summaries.push(summary);
    expect(stats.errors).toEqual([]);
    expect(summary.playedSeconds).toBeGreaterThan(PLAY_SECONDS - 3);
    expect(summary.rebuffers).toBeLessThanOrEqual(3);
    expect(summary.medianLatencySeconds).not.toBeNull();
    // Sub-second is the point of MoQ (about 0.15 s here on an idle machine).
    expect(summary.medianLatencySeconds!).toBeLessThan(1);

    // Frames really reach the canvas: its pixels are lit and keep changing.
    const playing = stats.samples.filter((sample) => sample.now >= stats.started);
    const paints = playing.map((sample) => sample.paint).filter((paint): paint is string => !!paint);
    expect(paints.filter((paint) => paint !== "dark").length).toBeGreaterThan(playing.length * 0.9);
    expect(new Set(paints).size).toBeGreaterThan(playing.length * 0.5);
    const frames = playing.map((sample) => sample.frames ?? 0);
    expect(frames[frames.length - 1]! - frames[0]!).toBeGreaterThan(PLAY_SECONDS * 30 * 0.8);
  }, 90_000);

  it("ffprobe demuxes the HLS and DASH output", async () => {
    for (const url of [server.hlsUrl(BROADCAST), server.dashUrl(BROADCAST)]) {
      const probe = await ffprobe(url, { packets: 600 });
      const video = probe.streams.find((stream) => stream.codec_type === "video");
      const audio = probe.streams.find((stream) => stream.codec_type === "audio");
      expect(video, url).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
      expect(audio, url).toMatchObject({ codec_name: "aac", sample_rate: "48000", channels: 2 });
      // Several segments of each track demux one after another with advancing timestamps.
      for (const [kind, packets] of Object.entries(probe.packets ?? {})) {
        expect(packets, `${kind} packets of ${url}`).toBeDefined();
        expect(
          packets!.distinctPts,
          `${kind} timestamps of ${url}: ${JSON.stringify(packets)}`,
        ).toBeGreaterThan(packets!.count * 0.9);
        expect(packets!.lastPts - packets!.firstPts, `${kind} span of ${url}`).toBeGreaterThan(2);
      }
      expect(probe.packets?.video, url).toBeDefined();
      expect(probe.packets?.audio, url).toBeDefined();
    }
  }, 90_000);

  it("the DVR window behind the live edge is kept in files, and its oldest segment demuxes in ffprobe", async () => {
    const dvrDirectories = (await readdir(server.dataDir)).filter((name) => name.startsWith("dvr-"));
    expect(dvrDirectories).toHaveLength(1);
    const files = await readdir(path.join(server.dataDir, dvrDirectories[0]!));
    expect(files.length).toBeGreaterThan(4);
    const metrics = await (await fetch(server.adminUrl("/metrics"))).text();
    expect(Number(/^lvqr_dvr_files (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(4);
    expect(Number(/^lvqr_dvr_bytes_on_disk (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(1_000_000);

    const playlistUrl = server.hlsUrl(BROADCAST, "playlist.m3u8");
    const playlist = await (await fetch(playlistUrl)).text();
    const times = [...playlist.matchAll(/#EXT-X-PROGRAM-DATE-TIME:(\S+)/g)].map((m) => Date.parse(m[1]!));
    // The oldest listed segment is far behind the 12 s the server keeps in memory.
    expect(times[times.length - 1]! - times[0]!).toBeGreaterThan(30_000);
    const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)![1]!;
    const oldest = playlist.split("\n").find((line) => line.startsWith("seg-"))!;
    const bytes = await Promise.all(
      [init, oldest].map(async (uri) => {
        const response = await fetch(new URL(uri, playlistUrl));
        expect(response.status, uri).toBe(200);
        return Buffer.from(await response.arrayBuffer());
      }),
    );
    const file = path.join(bundleDir, "oldest-segment.mp4");
    await writeFile(file, Buffer.concat(bytes));
    const probe = await ffprobe(file, { packets: 1000 });
    expect(probe.streams.find((stream) => stream.codec_type === "video")).toMatchObject({
      codec_name: "h264",
    });
    const video = probe.packets?.video;
    expect(video?.count).toBeGreaterThanOrEqual(50);
    expect(video!.lastPts - video!.firstPts).toBeGreaterThan(1.5);
  }, 30_000);

  it("/api/v1/slo has hls, dash and moq entries with plausible values", async () => {
    const slo = await admin<{ broadcasts: Array<Record<string, number | string>> }>("/api/v1/slo");
    const entry = (transport: string) =>
      slo.broadcasts.find((b) => b.broadcast === BROADCAST && b.transport === transport);
    const bounds = { hls: 5000, dash: 10_000, moq: 1000 } as const;
    for (const transport of ["hls", "dash", "moq"] as const) {
      const e = entry(transport);
      expect(e, `${transport} entry in ${JSON.stringify(slo)}`).toBeDefined();
      const [p50, p95, p99, max] = [e!.p50_ms, e!.p95_ms, e!.p99_ms, e!.max_ms] as number[];
      expect(e!.sample_count as number).toBeGreaterThan(0);
      expect(e!.total_observed as number).toBeGreaterThanOrEqual(e!.sample_count as number);
      expect(0 <= p50! && p50! <= p95! && p95! <= p99! && p99! <= max!).toBe(true);
      expect(p50!, `${transport} p50`).toBeLessThan(bounds[transport]);
      expect(max!, `${transport} max`).toBeLessThan(30_000);
    }
    console.log(`[e2e slo] ${JSON.stringify(slo.broadcasts.filter((b) => b.broadcast === BROADCAST))}`);
  });

  // Known bug, kept visible: the MoQ figure counts track subscriptions (a player holds
  // catalog.json, video and audio), not viewers, so one viewer shows as 2-3 while HLS and DASH
  // count clients. MoqServer.stats() in @lvqr/moq-lite should count distinct sessions per
  // broadcast. Remove `.fails` with the fix.
  it("one MoQ viewer counts as one MoQ subscriber in /api/v1/streams", async () => {
    const streams =
      await admin<Array<{ name: string; subscribers_by_protocol: { moq: number } }>>("/api/v1/streams");
    // Only the @moq/lite viewer of the first test is still connected (subscribed to video and audio).
    expect(streams.find((s) => s.name === BROADCAST)?.subscribers_by_protocol.moq).toBe(1);
  });

  it("/api/v1/streams and /api/v1/stats show the stream with non-zero bytes", async () => {
    const streams = await admin<Array<Record<string, unknown>>>("/api/v1/streams");
    const stream = streams.find((s) => s.name === BROADCAST);
    expect(stream, JSON.stringify(streams)).toBeDefined();
    expect(stream!.bytes_received as number).toBeGreaterThan(500_000);
    expect(stream!.bytes_sent as number).toBeGreaterThan(500_000);
    // The @moq/lite viewer is still subscribed.
    expect((stream!.subscribers_by_protocol as { moq: number }).moq).toBeGreaterThanOrEqual(1);

    const stats = await admin<Record<string, number>>("/api/v1/stats");
    expect(stats.publishers).toBeGreaterThanOrEqual(1);
    expect(stats.tracks).toBeGreaterThanOrEqual(2);
    expect(stats.bytes_received).toBeGreaterThanOrEqual(stream!.bytes_received as number);
    expect(stats.bytes_sent).toBeGreaterThan(500_000);
    expect(stats.uptime_secs).toBeGreaterThan(0);
  });
});
