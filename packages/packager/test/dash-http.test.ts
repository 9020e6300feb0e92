import { afterEach, describe, expect, it } from "vitest";
import { parseFragment } from "../src/cmaf/fragment.ts";
import {
  type EgressApp,
  type EgressAppOptions,
  followed,
  StepFeed,
  settle,
  startEgressApp,
  until,
} from "./egress-harness.ts";

const apps: EgressApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function live(path: string, mediaMs: number, options: EgressAppOptions = {}) {
  const app = await startEgressApp({ readyTimeoutMs: 300, ...options });
  apps.push(app);
  const feed = new StepFeed(app.origin, path);
  await followed(app.hub, path);
  await feed.advanceTo(mediaMs);
  await settle();
  return { ...app, feed };
}

/** Attributes of the first element named `tag` after `from` in `xml`. */
function attributes(xml: string, tag: string, from = 0): Record<string, string> {
  const start = xml.indexOf(`<${tag} `, from);
  if (start < 0) return {};
  const end = xml.indexOf(">", start);
  const out: Record<string, string> = {};
  for (const match of xml.slice(start, end).matchAll(/([A-Za-z:]+)="([^"]*)"/g)) out[match[1]!] = match[2]!;
  return out;
}

interface Timeline {
  startNumber: number;
  timescale: number;
  pto: number;
  entries: Array<{ number: number; t: number; d: number }>;
}

/** Expands every SegmentTimeline of an MPD, per AdaptationSet content type. */
function timelines(xml: string): Record<string, Timeline[]> {
  const out: Record<string, Timeline[]> = { video: [], audio: [] };
  for (const set of xml.split("<AdaptationSet ").slice(1)) {
    const type = /contentType="(\w+)"/.exec(set)![1]!;
    const template = attributes(`<x ${set}`, "SegmentTemplate");
    const startNumber = Number(template["startNumber"]);
    const entries: Timeline["entries"] = [];
    let t = 0;
    for (const s of set.matchAll(/<S ([^/]*)\/>/g)) {
      const a = attributes(`<S ${s[1]}>`, "S");
      if (a["t"] !== undefined) t = Number(a["t"]);
      const d = Number(a["d"]);
      for (let r = 0; r <= Number(a["r"] ?? 0); r++) {
        entries.push({ number: startNumber + entries.length, t, d });
        t += d;
      }
    }
    out[type]!.push({
      startNumber,
      timescale: Number(template["timescale"]),
      pto: Number(template["presentationTimeOffset"]),
      entries,
    });
  }
  return out;
}

describe("DASH over HTTP", () => {
  it("serves a dynamic MPD with measured values and a SegmentTimeline that matches the segments", async () => {
    const { app } = await live("live/a", 9_000, { listen: true });
    const response = await app.inject({
      url: "/dash/live/a/manifest.mpd",
      headers: { host: "127.0.0.1:9999" },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("application/dash+xml");
    expect(response.headers["access-control-allow-origin"]).toBe("*");
    const mpd = response.body;
    const root = attributes(mpd, "MPD");
    expect(root["type"]).toBe("dynamic");
    expect(root["profiles"]).toBe("urn:mpeg:dash:profile:isoff-live:2011");
    expect(Date.parse(root["availabilityStartTime"]!)).toBeLessThanOrEqual(Date.now());
    expect(Math.abs(Date.parse(root["publishTime"]!) - Date.now())).toBeLessThan(5000);
    expect(root["timeShiftBufferDepth"]).toBe("PT120S");
    expect(root["minimumUpdatePeriod"]).toBe("PT1S");
    // 1.5 x the longest segment (2.4 s where the fixture loops) + the 1 s update period.
    expect(root["suggestedPresentationDelay"]).toMatch(/^PT(4|4\.600)S$/);
    const video = attributes(mpd, "Representation", mpd.indexOf('contentType="video"'));
    expect(video).toMatchObject({
      id: "video",
      codecs: "avc1.64001e",
      width: "640",
      height: "360",
      frameRate: "30",
    });
    expect(Number(video["bandwidth"])).toBeGreaterThan(200_000);
    const audio = attributes(mpd, "Representation", mpd.indexOf('contentType="audio"'));
    expect(audio).toMatchObject({ id: "audio", codecs: "mp4a.40.2", audioSamplingRate: "48000" });
    expect(mpd).toContain(
      '<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>',
    );
    expect(mpd).toContain(
      '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="http://127.0.0.1:9999/dash/time"/>',
    );

    // Every timeline entry is a real segment: its tfdt is S@t and its samples sum to S@d.
    const all = timelines(mpd);
    for (const kind of ["video", "audio"] as const) {
      const [timeline] = all[kind]!;
      expect(timeline!.entries.length).toBeGreaterThanOrEqual(3);
      for (const entry of timeline!.entries) {
        const segment = await app.inject(`/dash/live/a/seg-${kind}-${entry.number}.m4s`);
        expect(segment.statusCode).toBe(200);
        const bytes = new Uint8Array(segment.rawPayload);
        const first = parseFragment(bytes);
        expect(first.baseMediaDecodeTime).toBe(entry.t);
        // Sum of every fragment's duration in the segment.
        let offset = 0;
        let duration = 0;
        while (offset < bytes.byteLength) {
          const size = new DataView(bytes.buffer, bytes.byteOffset + offset).getUint32(0);
          const mdatSize = new DataView(bytes.buffer, bytes.byteOffset + offset + size).getUint32(0);
          duration += parseFragment(bytes.subarray(offset, offset + size + mdatSize)).duration;
          offset += size + mdatSize;
        }
        expect(Math.abs(duration - entry.d)).toBeLessThanOrEqual(timeline!.timescale / 100);
      }
    }

    // Same bytes as HLS.
    const hlsSegment = await app.inject("/hls/live/a/seg-1.m4s");
    const dashSegment = await app.inject("/dash/live/a/seg-video-1.m4s");
    expect(dashSegment.rawPayload.equals(hlsSegment.rawPayload)).toBe(true);
    const hlsInit = await app.inject("/hls/live/a/init.mp4");
    const dashInit = await app.inject("/dash/live/a/init-video.m4s");
    expect(dashInit.rawPayload.equals(hlsInit.rawPayload)).toBe(true);
    expect((await app.inject("/dash/live/a/init-audio.m4s")).headers["content-type"]).toBe("audio/mp4");

    const time = await app.inject("/dash/time");
    expect(time.headers["cache-control"]).toBe("no-store");
    expect(Math.abs(Date.parse(time.body) - Date.now())).toBeLessThan(2000);
  });

  it("puts availability on the ingest wall clock: AST + Period start + media time = PDT", async () => {
    const { app } = await live("live/clock", 6_500);
    const mpd = (await app.inject("/dash/live/clock/manifest.mpd")).body;
    const ast = Date.parse(attributes(mpd, "MPD")["availabilityStartTime"]!);
    const [timeline] = timelines(mpd)["video"]!;
    const playlist = (await app.inject("/hls/live/clock/playlist.m3u8")).body;
    const pdt = Date.parse(
      /#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-PART[^\n]*\n)*#EXTINF:[^\n]*\nseg-1\.m4s/.exec(
        playlist,
      )![1]!,
    );
    const entry = timeline!.entries.find((e) => e.number === 1)!;
    const periodStart = 0;
    const wall = ast + periodStart * 1000 + ((entry.t - timeline!.pto) * 1000) / timeline!.timescale;
    expect(Math.abs(wall - pdt)).toBeLessThanOrEqual(1);
  });

  it("holds a request for the segment being written until it completes", async () => {
    const { app, feed, hub } = await live("live/hold", 4_500);
    const egress = hub.get("live/hold")!;
    const open = egress.video.open!.msn;
    let answered = false;
    const pending = app.inject(`/dash/live/hold/seg-video-${open}.m4s`).then((r) => {
      answered = true;
      return r;
    });
    await settle(100);
    expect(answered).toBe(false);
    await feed.advanceTo(feed.mediaMs + 2_200);
    const response = await pending;
    expect(response.statusCode).toBe(200);
    expect(egress.video.findSegment(open)!.closed).toBe(true);
    expect((await app.inject(`/dash/live/hold/seg-video-${open + 5}.m4s`)).statusCode).toBe(404);
  });

  it("slides the window: timeShiftBufferDepth, startNumber advances and evicted numbers 404", async () => {
    const { app } = await live("live/dvr", 30_000, { dvrWindowS: 8 });
    const mpd = (await app.inject("/dash/live/dvr/manifest.mpd")).body;
    expect(attributes(mpd, "MPD")["timeShiftBufferDepth"]).toBe("PT8S");
    const [timeline] = timelines(mpd)["video"]!;
    expect(timeline!.startNumber).toBeGreaterThan(5);
    const span = timeline!.entries.reduce((sum, e) => sum + e.d, 0) / timeline!.timescale;
    expect(span).toBeLessThanOrEqual(8 + 2.5);
    expect((await app.inject("/dash/live/dvr/seg-video-0.m4s")).statusCode).toBe(404);
    expect((await app.inject(`/dash/live/dvr/seg-video-${timeline!.startNumber}.m4s`)).statusCode).toBe(200);
  });

  it("without a time window (0), the byte budget bounds the DVR and timeShiftBufferDepth says what is kept", async () => {
    const { app, hub } = await live("live/budget", 40_000, {
      dvrWindowS: 0,
      maxBytesPerBroadcast: 1024 * 1024,
    });
    const egress = hub.get("live/budget")!;
    expect(egress.bytes).toBeLessThanOrEqual(1024 * 1024 + 512 * 1024);
    expect(egress.video.findSegment(0)).toBeUndefined();
    const mpd = (await app.inject("/dash/live/budget/manifest.mpd")).body;
    const kept = Math.floor(Math.min(egress.video.closedDurationS(), egress.audio.closedDurationS()));
    expect(attributes(mpd, "MPD")["timeShiftBufferDepth"]).toBe(`PT${Math.max(6, kept)}S`);
    const [timeline] = timelines(mpd)["video"]!;
    const segment = await app.inject(`/dash/live/budget/seg-video-${timeline!.startNumber}.m4s`);
    expect(segment.statusCode).toBe(200);
    expect(segment.headers["cache-control"]).toBe("public, max-age=600");
  });

  it("turns static when the broadcast ends and dynamic again, with a new Period, on republish", async () => {
    const { app, feed, origin, hub } = await live("live/end", 6_500);
    feed.close();
    await until(() => hub.get("live/end")!.ended, 2000, "ended");
    const ended = (await app.inject("/dash/live/end/manifest.mpd")).body;
    const root = attributes(ended, "MPD");
    expect(root["type"]).toBe("static");
    expect(root["mediaPresentationDuration"]).toMatch(/^PT6\.\d+S$/);
    expect(root["availabilityStartTime"]).toBeUndefined();
    expect(ended).not.toContain("UTCTiming");
    const firstPeriod = timelines(ended)["video"]![0]!;

    const again = new StepFeed(origin, "live/end", { offsetMs: 90_000 });
    await followed(hub, "live/end");
    await again.advanceTo(4_500);
    await settle();
    const live2 = (await app.inject("/dash/live/end/manifest.mpd")).body;
    expect(attributes(live2, "MPD")["type"]).toBe("dynamic");
    const periods = [...live2.matchAll(/<Period id="([^"]+)" start="PT([\d.]+)S">/g)].map((m) => ({
      id: m[1],
      start: Number(m[2]),
    }));
    expect(periods.length).toBe(2);
    expect(periods[1]!.start).toBeGreaterThan(periods[0]!.start);
    const [, second] = timelines(live2)["video"]!;
    // Numbers continue across periods: the republished segments follow the old ones.
    expect(second!.startNumber).toBe(firstPeriod.startNumber + firstPeriod.entries.length);
    expect(second!.pto).toBe(second!.entries[0]!.t);
    again.close();
  });

  it("answers bad input with 4xx, never 500", async () => {
    const { app } = await live("live/bad", 3_000);
    const cases: Array<[string, number]> = [
      ["/dash/live/bad/nope.mpd", 404],
      ["/dash/manifest.mpd", 404],
      ["/dash/live/bad/seg-video-x.m4s", 404],
      ["/dash/live/bad/seg-other-1.m4s", 404],
      ["/dash/live/bad/seg-video-1234567.m4s", 404],
      ["/dash/unknown/x/manifest.mpd", 404],
      ["/dash/live/bad/init-video.m4s?v=9", 404],
    ];
    for (const [url, status] of cases)
      expect([url, (await app.inject(url)).statusCode]).toEqual([url, status]);
    const alphabet = "abc/-_.%?&=0123456789mpdsegvideoaudioinit";
    for (let i = 0; i < 300; i++) {
      let tail = "";
      const length = 1 + Math.floor(Math.random() * 40);
      for (let j = 0; j < length; j++) tail += alphabet[Math.floor(Math.random() * alphabet.length)];
      expect((await app.inject(`/dash/live/bad/${tail}`)).statusCode, tail).toBeLessThan(500);
    }
  });
});
