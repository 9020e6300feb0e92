import http from "node:http";
import HLS from "hls-parser";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseFragment } from "../src/cmaf/fragment.ts";
import { BroadcastPublisher } from "../src/publish/broadcast-publisher.ts";
import {
  type EgressApp,
  type EgressAppOptions,
  followed,
  StepFeed,
  settle,
  startEgressApp,
  until,
} from "./egress-harness.ts";
import { feedFixture, HEVC_FIXTURE, loadFixture } from "./support/feed-fixture.ts";

beforeAll(() => HLS.setOptions({ strictMode: true, silent: true }));

const apps: EgressApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function start(options: EgressAppOptions = {}) {
  const app = await startEgressApp({ readyTimeoutMs: 300, ...options });
  apps.push(app);
  return app;
}

/** Starts an app and a live broadcast fed with `mediaMs` of the fixture. */
async function live(path: string, mediaMs: number, options: EgressAppOptions = {}) {
  const app = await start(options);
  const feed = new StepFeed(app.origin, path);
  await followed(app.hub, path);
  await feed.advanceTo(mediaMs);
  await settle();
  return { ...app, feed };
}

type MediaPlaylist = HLS.types.MediaPlaylist;

/** Apple's LL-HLS rules that the tests hold every media playlist to. */
function checkAppleRules(text: string): MediaPlaylist {
  const playlist = HLS.parse(text) as MediaPlaylist;
  const partTarget = playlist.partTargetDuration!;
  const control = playlist.lowLatencyCompatibility!;
  if (!playlist.endlist) {
    expect(control.partHoldBack).toBeGreaterThanOrEqual(3 * partTarget - 1e-9);
    expect(control.canBlockReload).toBe(true);
  }
  for (const segment of playlist.segments) {
    if (segment.uri) expect(segment.duration).toBeLessThanOrEqual(playlist.targetDuration);
    const parts = (segment.parts ?? []).filter((part) => !part.hint);
    parts.forEach((part, i) => {
      expect(part.duration).toBeLessThanOrEqual(partTarget);
      // Every part but a segment's last is at least 85% of PART-TARGET (RFC 8216bis).
      if (i < parts.length - 1 || !segment.uri) {
        if (i < parts.length - 1) expect(part.duration).toBeGreaterThanOrEqual(0.85 * partTarget);
      }
    });
  }
  return playlist;
}

describe("LL-HLS over HTTP", () => {
  it("serves master, video and audio playlists that hls-parser accepts and that follow Apple's rules", async () => {
    const { app } = await live("live/a", 9_000);
    const master = await app.inject("/hls/live/a/master.m3u8");
    expect(master.statusCode).toBe(200);
    expect(master.headers["content-type"]).toBe("application/vnd.apple.mpegurl");
    expect(master.headers["access-control-allow-origin"]).toBe("*");
    const parsedMaster = HLS.parse(master.body) as HLS.types.MasterPlaylist;
    const variant = parsedMaster.variants[0]!;
    expect(variant.codecs).toMatch(/^avc1\.64001e,mp4a\.40\.2$/);
    expect(variant.resolution).toEqual({ width: 640, height: 360 });
    expect(variant.frameRate).toBeCloseTo(30, 0);
    // Measured: the fixture is ~250 kbit/s video + 64 kbit/s audio plus CMAF overhead.
    expect(variant.bandwidth).toBeGreaterThan(250_000);
    expect(variant.bandwidth).toBeLessThan(800_000);
    expect(variant.averageBandwidth).toBeLessThanOrEqual(variant.bandwidth);
    expect(variant.audio[0]!.uri).toBe("audio.m3u8");

    for (const name of ["playlist.m3u8", "audio.m3u8"]) {
      const response = await app.inject(`/hls/live/a/${name}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers["cache-control"]).toBe("public, max-age=1");
      const playlist = checkAppleRules(response.body);
      expect(playlist.segments.length).toBeGreaterThanOrEqual(3);
      expect(response.body).toContain("#EXT-X-PRELOAD-HINT:TYPE=PART");
      expect(response.body).toMatch(
        /#EXT-X-RENDITION-REPORT:URI="(audio|playlist)\.m3u8",LAST-MSN=\d+,LAST-PART=\d+/,
      );
      expect(response.body).toContain("#EXT-X-PROGRAM-DATE-TIME:");
    }
  });

  it("serves init, parts and segments with the right types, caching, CORS and HEAD", async () => {
    const { app } = await live("live/b", 5_000);
    const text = (await app.inject("/hls/live/b/playlist.m3u8")).body;
    const playlist = HLS.parse(text) as MediaPlaylist;
    const init = await app.inject("/hls/live/b/init.mp4");
    expect(init.statusCode).toBe(200);
    expect(init.headers["content-type"]).toBe("video/mp4");
    expect(init.rawPayload.subarray(4, 8).toString()).toBe("ftyp");
    const audioInit = await app.inject("/hls/live/b/audio-init.mp4");
    expect(audioInit.headers["content-type"]).toBe("audio/mp4");

    const segment = playlist.segments[0]!;
    const seg = await app.inject(`/hls/live/b/${segment.uri}`);
    expect(seg.statusCode).toBe(200);
    expect(seg.headers["content-type"]).toBe("video/iso.segment");
    expect(seg.headers["cache-control"]).toMatch(/^public, max-age=\d+$/);
    expect(parseFragment(new Uint8Array(seg.rawPayload)).samples[0]!.keyframe).toBe(true);

    const last = playlist.segments[playlist.segments.length - 2]!;
    const parts = last.parts!;
    const bodies = await Promise.all(parts.map((p) => app.inject(`/hls/live/b/${p.uri}`)));
    expect(bodies.every((b) => b.statusCode === 200)).toBe(true);
    const whole = await app.inject(`/hls/live/b/${last.uri}`);
    // A segment is its parts concatenated.
    expect(Buffer.concat(bodies.map((b) => b.rawPayload)).equals(whole.rawPayload)).toBe(true);

    const head = await app.inject({ method: "HEAD", url: `/hls/live/b/${last.uri}` });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe("");
    expect(Number(head.headers["content-length"])).toBe(whole.rawPayload.byteLength);

    const preflight = await app.inject({
      method: "OPTIONS",
      url: "/hls/live/b/playlist.m3u8",
      headers: {
        origin: "http://player.example",
        "access-control-request-method": "GET",
        "access-control-request-headers": "range",
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("*");
    expect(preflight.headers["access-control-allow-headers"]).toBe("range");
    expect(seg.headers["access-control-expose-headers"]).toContain("Content-Length");
  });

  it("answers bad input with 4xx, never 500", async () => {
    const { app } = await live("live/c", 3_000);
    const cases: Array<[string, number]> = [
      ["/hls/live/c/nope.txt", 404],
      ["/hls/master.m3u8", 404],
      ["/hls//master.m3u8", 404],
      ["/hls/live/../c/master.m3u8", 404],
      ["/hls/live/c/seg-99999.m4s", 404],
      ["/hls/live/c/seg-1x.m4s", 404],
      ["/hls/live/c/part-0-999999999999999999.m4s", 404],
      ["/hls/live/c/seg-007.m4s", 404],
      ["/hls/unknown/x/playlist.m3u8", 404],
      ["/hls/live/c/playlist.m3u8?_HLS_msn=abc", 400],
      ["/hls/live/c/playlist.m3u8?_HLS_part=1", 400],
      ["/hls/live/c/playlist.m3u8?_HLS_msn=-1", 400],
      ["/hls/live/c/playlist.m3u8?_HLS_msn=999", 400],
      ["/hls/live/c/playlist.m3u8?_HLS_skip=maybe", 400],
      ["/hls/live/c/init.mp4?v=42", 404],
      ["/hls/%E0%A4%A/playlist.m3u8", 400],
    ];
    for (const [url, status] of cases) {
      const response = await app.inject(url);
      expect([url, response.statusCode]).toEqual([url, status]);
    }
    // Random junk paths and queries.
    const alphabet = "abc/-_.%?&=0123456789HLSmsnpartskip";
    for (let i = 0; i < 300; i++) {
      let tail = "";
      const length = 1 + Math.floor(Math.random() * 40);
      for (let j = 0; j < length; j++) tail += alphabet[Math.floor(Math.random() * alphabet.length)];
      const response = await app.inject(`/hls/live/c/${tail}`);
      expect(response.statusCode, tail).toBeLessThan(500);
    }
  });

  it("holds a blocking playlist reload until the part exists, and rejects far-future requests", async () => {
    const { app, feed, hub } = await live("live/block", 4_500);
    const playlist = HLS.parse((await app.inject("/hls/live/block/playlist.m3u8")).body) as MediaPlaylist;
    const report = playlist.renditionReports; // sibling
    expect(report.length).toBe(1);
    const last = playlist.segments[playlist.segments.length - 1]!;
    const msn = last.mediaSequenceNumber;
    const nextPartIndex = last.parts.length; // the part being filled now
    let answered = false;
    const started = Date.now();
    const pending = app
      .inject(`/hls/live/block/playlist.m3u8?_HLS_msn=${msn}&_HLS_part=${nextPartIndex}`)
      .then((response) => {
        answered = true;
        return response;
      });
    await settle(150);
    expect(answered).toBe(false);
    await feed.advanceTo(feed.mediaMs + 400);
    const response = await pending;
    expect(response.statusCode).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const updated = checkAppleRules(response.body);
    const segment = updated.segments.find((s) => s.mediaSequenceNumber === msn);
    const hasPart =
      (segment?.parts.length ?? 0) > nextPartIndex ||
      updated.segments.some((s) => s.mediaSequenceNumber > msn);
    expect(hasPart).toBe(true);
    expect(response.headers["cache-control"]).toBe("public, max-age=2");

    // _HLS_msn alone waits for the whole segment.
    const whole = app.inject(`/hls/live/block/playlist.m3u8?_HLS_msn=${msn}`);
    await feed.advanceTo(feed.mediaMs + 2_200);
    const wholeResponse = await whole;
    expect(wholeResponse.statusCode).toBe(200);
    expect(wholeResponse.body).toContain(`seg-${msn}.m4s`);

    // More than two segments past the last: 400 at once; so is a part beyond the Advance Part Limit.
    const far = await app.inject(`/hls/live/block/playlist.m3u8?_HLS_msn=${msn + 5}`);
    expect(far.statusCode).toBe(400);
    const newest = hub.get("live/block")!.video.open!;
    const farPart = await app.inject(
      `/hls/live/block/playlist.m3u8?_HLS_msn=${newest.msn}&_HLS_part=${newest.parts.length + 20}`,
    );
    expect(farPart.statusCode).toBe(400);
    expect(
      (await app.inject(`/hls/live/block/part-${newest.msn}-${newest.parts.length + 20}.m4s`)).statusCode,
    ).toBe(404);
  });

  it("gives up a blocking reload with 503 + Retry-After when the media stalls", async () => {
    const { app } = await live("live/stall", 4_500, { blockingTimeoutMs: 300 });
    const playlist = HLS.parse((await app.inject("/hls/live/stall/playlist.m3u8")).body) as MediaPlaylist;
    const last = playlist.segments[playlist.segments.length - 1]!;
    const started = Date.now();
    const response = await app.inject(
      `/hls/live/stall/playlist.m3u8?_HLS_msn=${last.mediaSequenceNumber + 1}`,
    );
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("1");
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  it("holds a request for the preload-hinted part until it exists (no 404)", async () => {
    const { app, feed } = await live("live/hint", 4_500);
    const text = (await app.inject("/hls/live/hint/playlist.m3u8")).body;
    const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text)![1]!;
    let answered = false;
    const pending = app.inject(`/hls/live/hint/${hint}`).then((r) => {
      answered = true;
      return r;
    });
    await settle(100);
    expect(answered).toBe(false);
    await feed.advanceTo(feed.mediaMs + 400);
    const response = await pending;
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("video/iso.segment");
    // The same bytes the playlist then lists under that URI.
    const again = await app.inject(`/hls/live/hint/${hint}`);
    expect(again.rawPayload.equals(response.rawPayload)).toBe(true);
    expect((await app.inject("/hls/live/hint/playlist.m3u8")).body).toContain(`URI="${hint}"`);
  });

  it("404s a held hinted part when the broadcast ends before it exists", async () => {
    const { app, feed } = await live("live/hint-end", 4_500);
    const text = (await app.inject("/hls/live/hint-end/playlist.m3u8")).body;
    const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text)![1]!;
    const [, msn] = /part-(\d+)-(\d+)/.exec(hint)!;
    // A part two beyond the hint can only exist if the broadcast goes on.
    const later = `part-${msn}-${Number(/part-\d+-(\d+)/.exec(hint)![1]) + 3}.m4s`;
    const pending = app.inject(`/hls/live/hint-end/${later}`);
    await settle(100);
    feed.close();
    const response = await pending;
    expect(response.statusCode).toBe(404);
  });

  it("produces delta updates for _HLS_skip=YES and v2", async () => {
    const { app } = await live("live/delta", 24_000);
    const full = (await app.inject("/hls/live/delta/playlist.m3u8")).body;
    const delta = await app.inject("/hls/live/delta/playlist.m3u8?_HLS_skip=YES");
    expect(delta.statusCode).toBe(200);
    const skipped = Number(/#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)/.exec(delta.body)?.[1]);
    expect(skipped).toBeGreaterThan(0);
    const parsed = checkAppleRules(delta.body);
    const fullParsed = HLS.parse(full) as MediaPlaylist;
    expect(parsed.mediaSequenceBase).toBe(fullParsed.mediaSequenceBase);
    // Skipped segments are exactly the leading ones; what remains matches the full playlist.
    expect(parsed.segments[0]!.uri).toBe(fullParsed.segments[skipped]!.uri);
    // Everything within CAN-SKIP-UNTIL of the end is still there.
    const remaining = parsed.segments.reduce((sum, s) => sum + (s.uri ? s.duration : 0), 0);
    expect(remaining).toBeGreaterThanOrEqual(12 - 2.5);
    const v2 = await app.inject("/hls/live/delta/playlist.m3u8?_HLS_skip=v2");
    expect(v2.body).toContain("RECENTLY-REMOVED-DATERANGES");
    expect(v2.body).toContain("#EXT-X-VERSION:10");
  });

  it("slides the DVR window: old URIs 404, MEDIA-SEQUENCE advances", async () => {
    const { app } = await live("live/dvr", 30_000, { dvrWindowS: 8 });
    const playlist = checkAppleRules((await app.inject("/hls/live/dvr/playlist.m3u8")).body);
    expect(playlist.mediaSequenceBase).toBeGreaterThan(5);
    const total = playlist.segments.reduce((sum, s) => sum + (s.uri ? s.duration : 0), 0);
    expect(total).toBeLessThanOrEqual(8 + 2.5);
    expect((await app.inject("/hls/live/dvr/seg-0.m4s")).statusCode).toBe(404);
    expect((await app.inject("/hls/live/dvr/part-0-0.m4s")).statusCode).toBe(404);
    expect((await app.inject("/hls/live/dvr/audio-seg-0.m4s")).statusCode).toBe(404);
    const first = playlist.segments[0]!;
    expect((await app.inject(`/hls/live/dvr/${first.uri}`)).statusCode).toBe(200);
  });

  it("ends with ENDLIST on unpublish and goes live again with a discontinuity on republish", async () => {
    const { app, feed, origin, hub } = await live("live/end", 6_500);
    const before = HLS.parse((await app.inject("/hls/live/end/playlist.m3u8")).body) as MediaPlaylist;
    feed.close();
    await until(() => hub.get("live/end")!.ended, 2000, "ended");
    const ended = await app.inject("/hls/live/end/playlist.m3u8");
    const endedPlaylist = checkAppleRules(ended.body);
    expect(endedPlaylist.endlist).toBe(true);
    expect(ended.body).not.toContain("PRELOAD-HINT");
    // A blocking request on an ended broadcast answers at once.
    const blocked = await app.inject(
      `/hls/live/end/playlist.m3u8?_HLS_msn=${endedPlaylist.segments.length + 1}`,
    );
    expect(blocked.statusCode).toBe(200);
    const lastMsn = endedPlaylist.segments[endedPlaylist.segments.length - 1]!.mediaSequenceNumber;

    const again = new StepFeed(origin, "live/end", { offsetMs: 50_000 });
    await followed(hub, "live/end");
    await again.advanceTo(4_500);
    await settle();
    const live2 = await app.inject("/hls/live/end/playlist.m3u8");
    const playlist = checkAppleRules(live2.body);
    expect(playlist.endlist).toBe(false);
    expect(live2.body).toContain("#EXT-X-PRELOAD-HINT");
    const resumed = playlist.segments.find((s) => s.mediaSequenceNumber === lastMsn + 1)!;
    expect(resumed.discontinuity).toBe(true);
    expect(playlist.mediaSequenceBase).toBe(before.mediaSequenceBase);
    expect((await app.inject("/hls/live/end/audio.m3u8")).body).toContain("#EXT-X-DISCONTINUITY");
    again.close();
  });

  it("announces a changed init with DISCONTINUITY and a new, versioned EXT-X-MAP URI", async () => {
    const { app, feed } = await live("live/reinit", 4_500);
    const config = loadFixture().video!;
    const description = Uint8Array.from(config.description);
    description[3] = 0x1f; // level 3.1: a different avcC, so a different init segment
    feed.publisher.setVideoConfig({ ...config, description, codecString: "avc1.64001f" });
    await feed.advanceTo(feed.mediaMs + 4_500);
    await settle();
    const text = (await app.inject("/hls/live/reinit/playlist.m3u8")).body;
    checkAppleRules(text);
    expect(text).toMatch(/#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init\.mp4\?v=1"\n/);
    const v0 = await app.inject("/hls/live/reinit/init.mp4");
    const v1 = await app.inject("/hls/live/reinit/init.mp4?v=1");
    expect(v1.statusCode).toBe(200);
    expect(v0.rawPayload.equals(v1.rawPayload)).toBe(false);
    expect(v1.rawPayload.includes(Buffer.from(description))).toBe(true);
    // The master playlist describes the stream as it is now.
    expect((await app.inject("/hls/live/reinit/master.m3u8")).body).toContain(
      'CODECS="avc1.64001f,mp4a.40.2"',
    );
    // DASH: the new init starts a new Period whose template names the new init.
    const mpd = (await app.inject("/dash/live/reinit/manifest.mpd")).body;
    expect(mpd.match(/<Period /g)?.length).toBe(2);
    expect(mpd).toContain('initialization="init-video.m4s?v=1"');
  });

  it("answers 503 with Retry-After for a broadcast with no media yet, 404 for an unknown one", async () => {
    const app = await start({ readyTimeoutMs: 200 });
    const feed = new StepFeed(app.origin, "live/empty");
    await followed(app.hub, "live/empty");
    const started = Date.now();
    const response = await app.app.inject("/hls/live/empty/playlist.m3u8");
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("1");
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect((await app.app.inject("/hls/live/nobody/playlist.m3u8")).statusCode).toBe(404);
    // A playlist request made before the first part arrives is answered once it does.
    const pending = app.app.inject("/hls/live/empty/playlist.m3u8");
    await feed.advanceTo(300);
    expect((await pending).statusCode).toBe(200);
    feed.close();
  });

  it("holds the master and a first playlist until every rendition has a complete segment", async () => {
    // ffmpeg's HLS demuxer crashes on a live playlist that lists parts but no segment, which is
    // what a request in the first seconds of a broadcast would otherwise get.
    const app = await start({ readyTimeoutMs: 10_000 });
    const feed = new StepFeed(app.origin, "live/first");
    await followed(app.hub, "live/first");
    await feed.advanceTo(1000);
    await settle();
    const answered = new Set<string>();
    const requests = ["master.m3u8", "playlist.m3u8", "audio.m3u8"].map((file) =>
      app.app.inject(`/hls/live/first/${file}`).then((response) => {
        answered.add(file);
        return response;
      }),
    );
    const manifest = app.app.inject("/dash/live/first/manifest.mpd").then((response) => {
      answered.add("manifest.mpd");
      return response;
    });
    await settle(150);
    expect([...answered]).toEqual([]);
    await feed.advanceTo(5000);
    const [master, video, audio] = await Promise.all(requests);
    for (const response of [master!, video!, audio!]) expect(response.statusCode).toBe(200);
    expect(video!.body).toMatch(/#EXTINF:/);
    expect(audio!.body).toMatch(/#EXTINF:/);
    expect(master!.body).toContain("audio.m3u8");
    const mpd = await manifest;
    expect(mpd.statusCode).toBe(200);
    expect(mpd.body).toContain('contentType="audio"');
    feed.close();
  });

  it("runs the auth hook first, redirects to the owner with the query kept, and reports latency", async () => {
    const samples: Array<[string, string, number]> = [];
    const app = await start({
      hooks: {
        authorize: (request, reply, target) => {
          if ((request.query as Record<string, string>)["token"] !== "good") {
            reply.code(401).send(`no token for ${target.broadcast}`);
          }
        },
        resolveOwner: (broadcast) => (broadcast.startsWith("remote/") ? "http://node-b:8888/" : undefined),
        onLatencySample: (broadcast, transport, ms) => samples.push([broadcast, transport, ms]),
      },
    });
    const feed = new StepFeed(app.origin, "live/auth");
    await followed(app.hub, "live/auth");
    await feed.advanceTo(4_500);
    const denied = await app.app.inject("/hls/live/auth/playlist.m3u8");
    expect(denied.statusCode).toBe(401);
    expect(denied.body).toBe("no token for live/auth");
    const allowed = await app.app.inject("/hls/live/auth/playlist.m3u8?token=good");
    expect(allowed.statusCode).toBe(200);
    // Credentials are carried onto every URI in the playlist (players drop the playlist's query).
    expect(allowed.body).toMatch(/seg-\d+\.m4s\?token=good/);
    expect(allowed.body).toMatch(/#EXT-X-MAP:URI="init\.mp4\?token=good"/);
    const redirect = await app.app.inject("/hls/remote/x/playlist.m3u8?token=good&_HLS_msn=3&_HLS_part=1");
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe(
      "http://node-b:8888/hls/remote/x/playlist.m3u8?token=good&_HLS_msn=3&_HLS_part=1",
    );
    expect(samples.length).toBeGreaterThan(5);
    expect(
      samples.every(
        ([b, t, ms]) => b === "live/auth" && (t === "hls" || t === "dash") && ms >= 0 && ms < 5000,
      ),
    ).toBe(true);
    expect(samples.some(([, t]) => t === "dash")).toBe(true);
    feed.close();
  });

  it("serves over real HTTP with keep-alive and concurrent held requests", async () => {
    const { url, feed, hub } = await live("live/http", 4_500, { listen: true });
    const playlist = await fetch(`${url}/hls/live/http/playlist.m3u8`);
    expect(playlist.status).toBe(200);
    const text = await playlist.text();
    const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text)![1]!;
    const last = (HLS.parse(text) as MediaPlaylist).segments.at(-1)!;
    const held = Array.from({ length: 20 }, () => fetch(`${url}/hls/live/http/${hint}`));
    const reloads = Array.from({ length: 20 }, () =>
      fetch(
        `${url}/hls/live/http/playlist.m3u8?_HLS_msn=${last.mediaSequenceNumber}&_HLS_part=${last.parts.length}`,
      ),
    );
    await settle(50);
    await feed.advanceTo(feed.mediaMs + 500);
    const answers = await Promise.all([...held, ...reloads]);
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));
    const bodies = await Promise.all(answers.slice(0, 20).map((r) => r.arrayBuffer()));
    expect(new Set(bodies.map((b) => Buffer.from(b).toString("base64"))).size).toBe(1);
    // A client that goes away while held releases its hold at once (not at the 6 s timeout).
    const abandoned = http.get(
      `${url}/hls/live/http/playlist.m3u8?_HLS_msn=${last.mediaSequenceNumber + 2}`,
      { agent: false },
    );
    abandoned.on("error", () => {});
    await until(() => hub.get("live/http")!.signal.waiting === 1, 1000, "the held request");
    abandoned.destroy();
    await until(() => hub.get("live/http")!.signal.waiting === 0, 1000, "the hold to be released");
  });
});

// Parts hinted, parts listed, parts served: the chain a low-latency player follows, repeatedly.
describe("LL-HLS live edge", () => {
  it("lists each new part in a blocking reload answer and serves it at once", async () => {
    const { app, feed } = await live("live/edge", 4_500);
    let text = (await app.inject("/hls/live/edge/playlist.m3u8")).body;
    for (let i = 0; i < 15; i++) {
      const playlist = HLS.parse(text) as MediaPlaylist;
      const last = playlist.segments.at(-1)!;
      const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)-(\d+)\.m4s"/.exec(text)!;
      const [msn, part] = [Number(hint[1]), Number(hint[2])];
      expect(msn >= last.mediaSequenceNumber).toBe(true);
      const both = Promise.all([
        app.inject(`/hls/live/edge/playlist.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`),
        app.inject(`/hls/live/edge/part-${msn}-${part}.m4s`),
      ]);
      let done = false;
      void both.then(() => {
        done = true;
      });
      // Media keeps coming, a little at a time, until both held requests are answered.
      for (let fed = 0; !done && fed < 2000; fed += 40) {
        await feed.advanceTo(feed.mediaMs + 40);
        await settle(2);
      }
      const [reloaded, partResponse] = await both;
      expect(reloaded.statusCode).toBe(200);
      expect([partResponse.statusCode, i]).toEqual([200, i]);
      text = reloaded.body;
      expect(text).toContain(`part-${msn}-${part}.m4s`);
    }
  });
});

describe("single-rendition broadcasts", () => {
  it("serves an audio-only broadcast: 2 s audio segments, a master pointing at audio.m3u8", async () => {
    const app = await start();
    const fixture = loadFixture();
    const publisher = new BroadcastPublisher(app.origin, "radio/a");
    publisher.setAudioConfig(fixture.audio!);
    await until(() => app.hub.get("radio/a")?.has("audio") === true, 5000, "audio followed");
    await settle(5);
    const audio = fixture.samples.filter((sample) => sample.kind === "audio");
    for (let i = 0; i < audio.length; i++) {
      const sample = audio[i]!;
      const dts = Math.round(100 + sample.dtsMs);
      publisher.pushAudio({ dts, pts: dts, keyframe: true, data: sample.data, ingestTimeMs: Date.now() });
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await settle();
    const master = HLS.parse(
      (await app.app.inject("/hls/radio/a/master.m3u8")).body,
    ) as HLS.types.MasterPlaylist;
    expect(master.variants[0]).toMatchObject({ uri: "audio.m3u8", codecs: "mp4a.40.2" });
    const playlist = checkAppleRules((await app.app.inject("/hls/radio/a/audio.m3u8")).body);
    // 2 s of AAC frames is 93.75 frames: segments are 94 frames (2.005 s), so ceil gives 3.
    expect(playlist.targetDuration).toBe(3);
    const durations = playlist.segments.filter((segment) => segment.uri).map((segment) => segment.duration);
    expect(durations.length).toBeGreaterThanOrEqual(2);
    for (const duration of durations) expect(duration).toBeGreaterThanOrEqual(2);
    expect((await app.app.inject("/hls/radio/a/playlist.m3u8")).statusCode).toBe(404);
    expect((await app.app.inject("/dash/radio/a/manifest.mpd")).body).not.toContain('contentType="video"');
    publisher.close();
  });

  it("serves an HEVC video-only broadcast with hvc1 codecs and no audio group", async () => {
    const app = await start();
    const feed = feedFixture(app.origin, "live/hevc", {
      file: HEVC_FIXTURE,
      realtime: true,
      loop: true,
      durationMs: 4_500,
    });
    await until(() => (app.hub.get("live/hevc")?.video.segments.length ?? 0) >= 1, 10_000, "HEVC segments");
    const text = (await app.app.inject("/hls/live/hevc/master.m3u8")).body;
    const master = HLS.parse(text) as HLS.types.MasterPlaylist;
    expect(master.variants[0]!.codecs).toMatch(/^hvc1\./);
    expect(master.variants[0]!.resolution).toEqual({ width: 320, height: 180 });
    expect(text).not.toContain("EXT-X-MEDIA");
    checkAppleRules((await app.app.inject("/hls/live/hevc/playlist.m3u8")).body);
    expect((await app.app.inject("/hls/live/hevc/audio.m3u8")).statusCode).toBe(404);
    await feed.stop();
  }, 15_000);
});
