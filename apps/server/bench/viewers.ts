/**
 * Bench viewers: many clients of one protocol in one child process, each behaving on the wire
 * like the player it stands for, so the server does the work real audiences cause.
 *
 * - `moq`: a moq-lite session (this repo's client over WebSocket), `catalog.json` first, then
 *   the video and audio tracks it names, every group and frame read (as @moq/watch does).
 * - `hls`: an LL-HLS player per viewer, with its own keep-alive connections and user agent: the
 *   multivariant playlist, then for the video and the audio playlist each a blocking reload on
 *   the preload hint (`_HLS_msn`/`_HLS_part`, and `_HLS_skip` for a delta update when the
 *   playlist offers `CAN-SKIP-UNTIL`) alongside a GET of the hinted part (as hls.js does in
 *   low-latency mode).
 * - `dash`: a DASH player per viewer: the MPD every `minimumUpdatePeriod` (1 s), the init
 *   segments once, then every new segment of both representations.
 *
 * Run by `server.bench.ts` with `fork()`; it answers `start`, `snapshot` and `stop` messages.
 */
import http from "node:http";
import { type BroadcastConsumer, connectMoq, type MoqClient } from "@lvqr/moq-lite";

/** What the orchestrator asks. */
export type ViewerCommand =
  | {
      readonly type: "start";
      readonly protocol: "moq" | "hls" | "dash";
      readonly count: number;
      /** MoQ session URL, master playlist URL, or MPD URL. */
      readonly url: string;
      readonly broadcast: string;
      /** Number of the first viewer (viewers are numbered across processes, e.g. for user agents). */
      readonly firstIndex: number;
      /** Spread the viewers' start over this long. */
      readonly rampMs: number;
    }
  | { readonly type: "snapshot" }
  | { readonly type: "stop" };

/** Per-viewer counters. `media` counts frames (MoQ), parts (HLS) or segments (DASH). */
export interface ViewerCounters {
  media: number;
  bytes: number;
  requests: number;
  errors: number;
  lastError?: string;
}

/** What the child reports. */
export type ViewerReport =
  | {
      readonly type: "ready";
      readonly receiving: number;
      readonly count: number;
      readonly errors: number;
      readonly lastError?: string;
    }
  | { readonly type: "snapshot"; readonly atMs: number; readonly viewers: ViewerCounters[] }
  | { readonly type: "stopped"; readonly viewers: ViewerCounters[] };

const REQUEST_TIMEOUT_MS = 15_000;

/** GETs `url`, counting and discarding the body. */
function get(
  url: string,
  agent: http.Agent,
  userAgent: string,
): Promise<{ status: number; bytes: number; text?: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, {
      agent,
      headers: { "user-agent": userAgent },
      timeout: REQUEST_TIMEOUT_MS,
    });
    request.on("response", (response) => {
      const textual = /mpegurl|dash\+xml|text/.test(String(response.headers["content-type"]));
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.byteLength;
        if (textual) chunks.push(chunk);
      });
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          bytes,
          ...(textual ? { text: Buffer.concat(chunks).toString("utf8") } : {}),
        }),
      );
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on("error", reject);
  });
}

function note(counters: ViewerCounters, error: unknown): void {
  counters.errors++;
  counters.lastError = error instanceof Error ? error.message : String(error);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Viewer {
  readonly counters: ViewerCounters;
  stop(): void;
}

/** One moq-lite viewer: catalog, then every group and frame of the video and audio tracks. */
function moqViewer(url: string, broadcast: string): Viewer {
  const counters: ViewerCounters = { media: 0, bytes: 0, requests: 0, errors: 0 };
  let client: MoqClient | undefined;
  let stopped = false;
  const readTrack = async (consumer: BroadcastConsumer, name: string, priority: number) => {
    const track = consumer.subscribeTrack(name, { priority });
    for (;;) {
      const group = await track.recvGroup();
      if (!group) return;
      void (async () => {
        for (;;) {
          const frame = await group.readFrame();
          if (!frame) return;
          counters.media++;
          counters.bytes += frame.byteLength;
        }
      })().catch((error: unknown) => {
        if (!stopped) note(counters, error);
      });
    }
  };
  const watch = async () => {
    client = await connectMoq(url, { announceInterest: [broadcast] });
    counters.requests++;
    const consumer = await client.waitForBroadcast(broadcast, { timeoutMs: 20_000 });
    const catalogTrack = consumer.subscribeTrack("catalog.json", { priority: 100 });
    const group = await catalogTrack.recvGroup();
    const frame = group ? await group.readFrame() : undefined;
    if (!frame) throw new Error("no catalog");
    const catalog = JSON.parse(new TextDecoder().decode(frame)) as {
      video?: { renditions: Record<string, unknown> };
      audio?: { renditions: Record<string, unknown> };
    };
    const video = Object.keys(catalog.video?.renditions ?? {})[0];
    const audio = Object.keys(catalog.audio?.renditions ?? {})[0];
    await Promise.all([
      video ? readTrack(consumer, video, 60) : undefined,
      audio ? readTrack(consumer, audio, 80) : undefined,
    ]);
  };
  // Like a player, reconnect after a failure (one second later) until stopped.
  void (async () => {
    while (!stopped) {
      try {
        await watch();
      } catch (error) {
        if (!stopped) note(counters, error);
      }
      client?.close();
      if (!stopped) await pause(1000);
    }
  })();
  return {
    counters,
    stop() {
      stopped = true;
      client?.close();
    },
  };
}

/** A part's position: media sequence number, then index within the segment. */
type PartPosition = readonly [msn: number, index: number];

const after = (a: PartPosition, b: PartPosition | undefined) =>
  b === undefined || a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

/** The `part-<msn>-<i>.m4s` (or `audio-part-…`) URIs of `#EXT-X-PART` lines, with their positions. */
function listedParts(playlist: string): Array<{ uri: string; at: PartPosition }> {
  const parts: Array<{ uri: string; at: PartPosition }> = [];
  for (const match of playlist.matchAll(/#EXT-X-PART:[^\n]*URI="([^"]*part-(\d+)-(\d+)\.m4s[^"]*)"/g)) {
    parts.push({ uri: match[1]!, at: [Number(match[2]), Number(match[3])] });
  }
  return parts;
}

/**
 * Follows one LL-HLS media playlist as hls.js does in low-latency mode: a blocking reload for the
 * preload-hinted part alongside a GET of that part, and a GET of every listed part newer than the
 * last one fetched (so a viewer that falls behind catches up instead of skipping media).
 */
async function followPlaylist(
  playlistUrl: string,
  agent: http.Agent,
  userAgent: string,
  counters: ViewerCounters,
  isStopped: () => boolean,
): Promise<void> {
  let hint: { at: PartPosition; uri: string } | undefined;
  let last: PartPosition | undefined;
  // hls.js asks for delta updates once it holds a playlist: v2 when date ranges may be skipped too.
  let skip = "";
  const fetchPart = async (uri: string) => {
    const answer = await get(new URL(uri, playlistUrl).toString(), agent, userAgent);
    counters.requests++;
    counters.bytes += answer.bytes;
    if (answer.status === 200) counters.media++;
  };
  while (!isStopped()) {
    try {
      const query = hint ? `?_HLS_msn=${hint.at[0]}&_HLS_part=${hint.at[1]}${skip}` : "";
      // Caught here so a failed playlist request never leaves the part's rejection unhandled.
      const held = hint ? fetchPart(hint.uri).catch((error: unknown) => error as Error) : undefined;
      const playlist = await get(playlistUrl + query, agent, userAgent);
      counters.requests++;
      if (playlist.status !== 200) throw new Error(`playlist answered ${playlist.status}`);
      if (held) {
        const failure = await held;
        if (failure instanceof Error) throw failure;
        last = hint!.at;
      }
      const text = playlist.text ?? "";
      const parts = listedParts(text);
      // A new viewer starts at the live edge: the newest listed part.
      if (last === undefined && parts.length > 0) last = parts[parts.length - 2]?.at ?? [-1, -1];
      for (const part of parts) {
        if (!after(part.at, last)) continue;
        await fetchPart(part.uri);
        last = part.at;
      }
      if (text.includes("#EXT-X-ENDLIST")) return;
      if (skip === "" && text.includes("CAN-SKIP-UNTIL="))
        skip = text.includes("CAN-SKIP-DATERANGES=YES") ? "&_HLS_skip=v2" : "&_HLS_skip=YES";
      const uri = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text)?.[1];
      const numbers = uri ? /part-(\d+)-(\d+)\.m4s/.exec(uri) : null;
      hint = uri && numbers ? { at: [Number(numbers[1]), Number(numbers[2])], uri } : undefined;
      if (!hint) await pause(200);
    } catch (error) {
      if (isStopped()) return;
      note(counters, error);
      hint = undefined;
      await pause(500);
    }
  }
}

/** One LL-HLS viewer: the multivariant playlist, then the video and audio playlists in parallel. */
function hlsViewer(masterUrl: string, index: number): Viewer {
  const counters: ViewerCounters = { media: 0, bytes: 0, requests: 0, errors: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const userAgent = `lvqr-bench-hls/${index}`;
  let stopped = false;
  const watch = async () => {
    const master = await get(masterUrl, agent, userAgent);
    counters.requests++;
    if (master.status !== 200) throw new Error(`master playlist answered ${master.status}`);
    const text = master.text ?? "";
    const video = text.split("\n").find((line) => line !== "" && !line.startsWith("#"));
    const audio = /#EXT-X-MEDIA:TYPE=AUDIO[^\n]*URI="([^"]+)"/.exec(text)?.[1];
    const follow = (uri: string) =>
      followPlaylist(new URL(uri, masterUrl).toString(), agent, userAgent, counters, () => stopped);
    await Promise.all([video ? follow(video) : undefined, audio ? follow(audio) : undefined]);
  };
  void (async () => {
    while (!stopped) {
      try {
        await watch();
      } catch (error) {
        if (!stopped) note(counters, error);
      }
      if (!stopped) await pause(1000);
    }
  })();
  return {
    counters,
    stop() {
      stopped = true;
      agent.destroy();
    },
  };
}

/** The newest segment URL of each SegmentTimeline template, and every initialization URL. */
function mpdUrls(mpd: string, base: string): { inits: string[]; newest: string[] } {
  const attribute = (value: string) => value.replace(/&#38;|&amp;/g, "&");
  const inits: string[] = [];
  const newest: string[] = [];
  for (const template of mpd.matchAll(/<SegmentTemplate\b([^>]*)>([\s\S]*?)<\/SegmentTemplate>/g)) {
    const attributes = template[1]!;
    const init = /initialization="([^"]+)"/.exec(attributes)?.[1];
    const media = /media="([^"]+)"/.exec(attributes)?.[1];
    const start = Number(/startNumber="(\d+)"/.exec(attributes)?.[1] ?? "1");
    if (init) inits.push(new URL(attribute(init), base).toString());
    let count = 0;
    for (const s of template[2]!.matchAll(/<S\b([^>]*)\/>/g))
      count += 1 + Number(/\br="(\d+)"/.exec(s[1]!)?.[1] ?? "0");
    if (media && count > 0)
      newest.push(new URL(attribute(media).replace("$Number$", String(start + count - 1)), base).toString());
  }
  return { inits, newest };
}

/** One DASH viewer: MPD refresh every second, init segments once, every new media segment. */
function dashViewer(mpdUrl: string, index: number): Viewer {
  const counters: ViewerCounters = { media: 0, bytes: 0, requests: 0, errors: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const userAgent = `lvqr-bench-dash/${index}`;
  const fetched = new Set<string>();
  let stopped = false;
  void (async () => {
    while (!stopped) {
      try {
        const mpd = await get(mpdUrl, agent, userAgent);
        counters.requests++;
        if (mpd.status !== 200) throw new Error(`MPD answered ${mpd.status}`);
        if (/type="static"/.test(mpd.text ?? "")) return;
        const { inits, newest } = mpdUrls(mpd.text ?? "", mpdUrl);
        for (const url of [...inits, ...newest]) {
          if (fetched.has(url)) continue;
          fetched.add(url);
          const answer = await get(url, agent, userAgent);
          counters.requests++;
          counters.bytes += answer.bytes;
          if (answer.status === 200 && !inits.includes(url)) counters.media++;
        }
      } catch (error) {
        if (stopped) return;
        note(counters, error);
      }
      await pause(1000);
    }
  })();
  return {
    counters,
    stop() {
      stopped = true;
      agent.destroy();
    },
  };
}

/** The child process: runs viewers on command. */
async function runChild(): Promise<void> {
  const viewers: Viewer[] = [];
  const send = (report: ViewerReport) => process.send?.(report);
  process.on("message", async (command: ViewerCommand) => {
    if (command.type === "start") {
      const spacing = command.count > 1 ? command.rampMs / command.count : 0;
      for (let i = 0; i < command.count; i++) {
        if (command.protocol === "moq") viewers.push(moqViewer(command.url, command.broadcast));
        else if (command.protocol === "hls") viewers.push(hlsViewer(command.url, command.firstIndex + i));
        else viewers.push(dashViewer(command.url, command.firstIndex + i));
        if (spacing > 0) await pause(spacing);
      }
      // Ready once every viewer has received media (or 30 s have passed).
      const deadline = Date.now() + 30_000;
      while (viewers.some((viewer) => viewer.counters.media === 0) && Date.now() < deadline) await pause(100);
      const lastError = viewers.find((viewer) => viewer.counters.lastError)?.counters.lastError;
      send({
        type: "ready",
        receiving: viewers.filter((viewer) => viewer.counters.media > 0).length,
        count: viewers.length,
        errors: viewers.reduce((sum, viewer) => sum + viewer.counters.errors, 0),
        ...(lastError === undefined ? {} : { lastError }),
      });
    } else if (command.type === "snapshot") {
      send({
        type: "snapshot",
        atMs: Date.now(),
        viewers: viewers.map((viewer) => ({ ...viewer.counters })),
      });
    } else {
      for (const viewer of viewers) viewer.stop();
      send({ type: "stopped", viewers: viewers.map((viewer) => ({ ...viewer.counters })) });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 200).unref();
    }
  });
}

if (process.send !== undefined) await runChild();
