/// <reference lib="dom" />
/**
 * hls.js (low-latency mode) in headless Chromium as a test viewer: a tiny local page server hands
 * the browser hls.js and a page that plays a given LL-HLS URL (another origin: the server's
 * playlists and media carry CORS headers, redirects included). The result says whether playback
 * started, how far it got, how often it stalled and which errors hls.js raised. Needs Debian's
 * `chromium`; throws a clear error when it is missing.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

/** What a playback run observed. */
export interface HlsJsPlayback {
  /** Wall-clock ms from page load to the first `playing` event, or -1 if it never played. */
  readonly startupMs: number;
  /** Media time reached. */
  readonly currentTime: number;
  readonly stalls: number;
  /** hls.js errors as `type:details:fatal`. */
  readonly errors: string[];
}

/** A running browser that plays LL-HLS URLs with hls.js. */
export interface HlsJsPlayer {
  /** Plays `src` for `seconds` and reports what happened. */
  play(src: string, seconds: number): Promise<HlsJsPlayback>;
  close(): Promise<void>;
}

const PAGE = (src: string) => `<!doctype html><html><body>
<video id="v" muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
const stats = (window.stats = { loadedAt: Date.now(), started: 0, waiting: 0, errors: [] });
const video = document.getElementById("v");
const hls = new Hls({ lowLatencyMode: true });
hls.on(Hls.Events.ERROR, (_e, d) => stats.errors.push(d.type + ":" + d.details + ":" + d.fatal));
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((e) => stats.errors.push("play:" + e)));
hls.loadSource(${JSON.stringify(src)});
hls.attachMedia(video);
video.addEventListener("playing", () => { if (!stats.started) stats.started = Date.now(); });
video.addEventListener("waiting", () => { if (stats.started) stats.waiting++; });
</script></body></html>`;

/** Launches Chromium and the page server. */
export async function launchHlsJsPlayer(): Promise<HlsJsPlayer> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  const script = readFileSync(
    fileURLToPath(new URL("../../node_modules/hls.js/dist/hls.min.js", import.meta.url)),
    "utf8",
  );
  const pages = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://page.invalid");
    if (url.pathname === "/hls.min.js") {
      response.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else if (url.pathname === "/play.html") {
      response.writeHead(200, { "content-type": "text/html" }).end(PAGE(url.searchParams.get("src") ?? ""));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => pages.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  const profile = mkdtempSync(join(tmpdir(), "lvqr-hlsjs-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
      ],
    });
  } catch (err) {
    pages.close();
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    async play(src, seconds) {
      const tab = await context.newPage();
      try {
        await tab.goto(`${base}/play.html?src=${encodeURIComponent(src)}`);
        await tab.waitForTimeout(seconds * 1000);
        return await tab.evaluate(() => {
          const stats = (
            window as unknown as {
              stats: { loadedAt: number; started: number; waiting: number; errors: string[] };
            }
          ).stats;
          const video = document.getElementById("v") as HTMLVideoElement;
          return {
            startupMs: stats.started ? stats.started - stats.loadedAt : -1,
            currentTime: video.currentTime,
            stalls: stats.waiting,
            errors: stats.errors,
          };
        });
      } finally {
        await tab.close();
      }
    },
    async close() {
      await context.close();
      pages.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
