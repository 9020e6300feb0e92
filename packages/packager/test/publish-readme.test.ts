/**
 * The README's "publish a file and serve it as LL-HLS and DASH" wiring, run as written (ports 0,
 * the committed fixture), fetched over real HTTP, so the README cannot silently go stale.
 */
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { OriginProducer } from "@lvqr/moq-lite";
import Fastify from "fastify";
import { expect, test } from "vitest";
import { dashPlugin, demuxMp4, EgressHub, hlsPlugin, publishMp4 } from "../src/index.ts";
import { AV_FIXTURE } from "./support/feed-fixture.ts";

test("publish a file into an Origin and serve HLS and DASH", async () => {
  const origin = new OriginProducer();
  const media = demuxMp4(new Uint8Array(await readFile(AV_FIXTURE)));
  const playback = publishMp4(origin, "live/clip", media, { realtime: true, loop: true });

  const egress = new EgressHub({ origin: origin.consume() });
  const hls = Fastify();
  await hls.register(hlsPlugin, { egress });
  await hls.listen({ host: "127.0.0.1", port: 0 });
  const dash = Fastify();
  await dash.register(dashPlugin, { egress });
  await dash.listen({ host: "127.0.0.1", port: 0 });
  const hlsBase = `http://127.0.0.1:${(hls.server.address() as AddressInfo).port}`;
  const dashBase = `http://127.0.0.1:${(dash.server.address() as AddressInfo).port}`;
  try {
    // The first segment closes after one GOP at least the target duration; poll generously.
    const deadline = Date.now() + 15_000;
    let master: Response | undefined;
    while (Date.now() < deadline) {
      master = await fetch(`${hlsBase}/hls/live/clip/master.m3u8`);
      if (master.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(master?.status).toBe(200);
    const text = await master!.text();
    expect(text).toContain("avc1.64001e");
    expect(text).toContain("mp4a.40.2");
    expect(text).toContain("RESOLUTION=640x360");

    const mpd = await fetch(`${dashBase}/dash/live/clip/manifest.mpd`);
    expect(mpd.status).toBe(200);
    const xml = await mpd.text();
    expect(xml).toContain('type="dynamic"');
    expect(xml).toContain("avc1.64001e");
  } finally {
    await playback.stop();
    await Promise.all([hls.close(), dash.close()]);
    egress.close();
  }
}, 30_000);
