import { afterEach, describe, expect, it } from "vitest";
import { parseDashFile } from "../src/dash/plugin.ts";
import { propagatedQuery, splitPlaybackPath, withQuery } from "../src/egress/http.ts";
import { parseDeliveryDirectives, parseHlsFile } from "../src/hls/plugin.ts";
import { type EgressApp, followed, StepFeed, settle, startEgressApp, until } from "./egress-harness.ts";

describe("request parsing", () => {
  it("splits the broadcast at the last slash and rejects paths that cannot name one", () => {
    expect(splitPlaybackPath("live/demo/playlist.m3u8")).toEqual({
      broadcast: "live/demo",
      file: "playlist.m3u8",
    });
    expect(splitPlaybackPath("a/b/c/seg-1.m4s")).toEqual({ broadcast: "a/b/c", file: "seg-1.m4s" });
    for (const bad of [
      "playlist.m3u8",
      "/playlist.m3u8",
      "live/",
      "live//x/a.m3u8",
      "live/../x/a.m3u8",
      "./a",
      "a\u0000/b",
      "a\\b/c",
    ]) {
      expect(splitPlaybackPath(bad), bad).toBeUndefined();
    }
    expect(splitPlaybackPath(`${"x".repeat(1025)}/a.m3u8`)).toBeUndefined();
  });

  it("names every HLS and DASH file, and nothing else", () => {
    expect(parseHlsFile("part-12-3.m4s")).toEqual({ type: "part", kind: "video", msn: 12, index: 3 });
    expect(parseHlsFile("audio-seg-0.m4s")).toEqual({ type: "segment", kind: "audio", msn: 0 });
    expect(parseHlsFile("audio-init.mp4")).toEqual({ type: "init", kind: "audio" });
    for (const bad of [
      "seg--1.m4s",
      "seg-01.m4s",
      "seg-1.mp4",
      "part-1.m4s",
      "video-seg-1.m4s",
      "seg-1234567890123456.m4s",
    ]) {
      expect(parseHlsFile(bad), bad).toBeUndefined();
    }
    expect(parseDashFile("seg-audio-7.m4s")).toEqual({ type: "segment", kind: "audio", number: 7 });
    expect(parseDashFile("init-video.m4s")).toEqual({ type: "init", kind: "video" });
    expect(parseDashFile("seg-7.m4s")).toBeUndefined();
  });

  it("parses delivery directives strictly", () => {
    expect(parseDeliveryDirectives({ _HLS_msn: "5", _HLS_part: "2", _HLS_skip: "YES" })).toEqual({
      msn: 5,
      part: 2,
      skip: "YES",
    });
    expect(parseDeliveryDirectives({ _HLS_skip: "v2" })).toEqual({ skip: "v2" });
    expect(parseDeliveryDirectives({})).toEqual({});
    expect(parseDeliveryDirectives({ _HLS_part: "1" })).toBe("_HLS_part requires _HLS_msn");
    for (const bad of [
      { _HLS_msn: "1.5" },
      { _HLS_msn: ["1", "2"] },
      { _HLS_msn: "9999999999999999" },
      { _HLS_skip: "no" },
    ]) {
      expect(typeof parseDeliveryDirectives(bad), JSON.stringify(bad)).toBe("string");
    }
  });

  it("carries credential parameters onto URIs, encoded", () => {
    expect(
      propagatedQuery({ token: "a b&c", other: "x", sig: "", exp: ["1", "2"] }, ["token", "exp", "sig"]),
    ).toBe("token=a%20b%26c&exp=1");
    expect(withQuery("init.mp4?v=2", "token=t")).toBe("init.mp4?v=2&token=t");
    expect(withQuery("seg-1.m4s", "")).toBe("seg-1.m4s");
  });
});

const apps: EgressApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

describe("limits", () => {
  it("follows only broadcasts under the prefix, and at most maxBroadcasts", async () => {
    const app = await startEgressApp({ prefix: "live", maxBroadcasts: 2, readyTimeoutMs: 100 });
    apps.push(app);
    const feeds = ["live/a", "other/b", "live/c", "live/d"].map((path) => new StepFeed(app.origin, path));
    await followed(app.hub, "live/a");
    await followed(app.hub, "live/c");
    await settle(50);
    expect(app.hub.paths()).toEqual(["live/a", "live/c"]);
    expect(app.hub.stats().map((s) => [s.path, s.ended, s.heldRequests])).toEqual([
      ["live/a", false, 0],
      ["live/c", false, 0],
    ]);
    expect((await app.app.inject("/hls/other/b/playlist.m3u8")).statusCode).toBe(404);
    for (const feed of feeds) feed.close();
  });

  it("answers 503 once maxHeldRequests requests are held", async () => {
    const app = await startEgressApp({ readyTimeoutMs: 300 });
    apps.push(app);
    const { hlsPlugin } = await import("../src/hls/plugin.ts");
    const Fastify = (await import("fastify")).default;
    const limited = Fastify();
    await limited.register(hlsPlugin, { egress: app.hub, maxHeldRequests: 2, blockingTimeoutMs: 2000 });
    const feed = new StepFeed(app.origin, "live/held");
    await followed(app.hub, "live/held");
    await feed.advanceTo(4_500);
    await settle();
    const egress = app.hub.get("live/held")!;
    const next = egress.video.open!.msn;
    const held = [0, 1].map(() => limited.inject(`/hls/live/held/playlist.m3u8?_HLS_msn=${next}`));
    await until(() => egress.signal.waiting >= 2, 2000, "two held requests");
    const third = await limited.inject(`/hls/live/held/playlist.m3u8?_HLS_msn=${next}`);
    expect(third.statusCode).toBe(503);
    await feed.advanceTo(feed.mediaMs + 2_500);
    expect((await Promise.all(held)).map((r) => r.statusCode)).toEqual([200, 200]);
    await limited.close();
    feed.close();
  });
});
