import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DvrSpill } from "../src/egress/dvr-spill.ts";
import type { EgressHub } from "../src/egress/hub.ts";
import type { SegmentRecord } from "../src/egress/rendition.ts";
import { type EgressApp, followed, StepFeed, startEgressApp, until } from "./egress-harness.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "lvqr-dvr-test-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Copies of every segment's bytes (and part bytes) as they close, before any spill. */
function recordClosedSegments(hub: EgressHub): Map<SegmentRecord, { bytes: Buffer; parts: Buffer[] }> {
  const copies = new Map<SegmentRecord, { bytes: Buffer; parts: Buffer[] }>();
  hub.addListener({
    segment(_broadcast, _rendition, segment) {
      copies.set(segment, {
        bytes: Buffer.from(segment.bytes),
        parts: segment.parts.map((part) => Buffer.from(part.bytes)),
      });
    },
  });
  return copies;
}

async function startSpilling(directory: string): Promise<EgressApp & { url: string }> {
  const app = await startEgressApp({ listen: true, dvrWindowS: 12, dvrSpill: { directory, memoryS: 4 } });
  cleanups.push(() => app.close());
  return app;
}

describe("DVR spill to disk", () => {
  it("keeps the live edge in memory, moves older segments to files, and serves them byte for byte", async () => {
    const directory = path.join(scratchDir(), "spill");
    const { origin, hub, url } = await startSpilling(directory);
    const copies = recordClosedSegments(hub);
    const feed = new StepFeed(origin, "live/dvr");
    cleanups.push(() => feed.close());
    await followed(hub, "live/dvr");
    await feed.advanceTo(30_000);
    await until(() => (hub.get("live/dvr")?.video.nextMsn ?? 0) >= 14, 5000, "segments");
    const egress = hub.get("live/dvr")!;
    await until(() => hub.spill!.stats.files >= 4, 5000, "spilled files");

    for (const rendition of [egress.video, egress.audio]) {
      const segments = rendition.segments;
      let newerS = 0;
      for (let i = segments.length - 1; i >= 0; i--) {
        const segment = segments[i]!;
        if (newerS < 4) {
          // The newest 4 s stay in memory.
          expect(segment.spilled, `${rendition.kind} ${segment.msn}`).toBeUndefined();
          expect(segment.bytes.byteLength).toBe(segment.size);
        }
        newerS += segment.durationTicks / segment.init.timescale;
      }
      const spilled = segments.filter((segment) => segment.spilled !== undefined);
      expect(spilled.length, rendition.kind).toBeGreaterThan(0);
      for (const segment of spilled) {
        expect(segment.bytes.byteLength).toBe(0);
        expect(segment.parts.every((part) => part.bytes.byteLength === 0)).toBe(true);
        expect(statSync(segment.spilled!.file).size).toBe(segment.size);
        const copy = copies.get(segment)!;
        expect(Buffer.from(await DvrSpill.segmentBytes(segment)).equals(copy.bytes)).toBe(true);
        for (const part of segment.parts) {
          const bytes = Buffer.from(await DvrSpill.partBytes(segment, part.index));
          expect(bytes.equals(copy.parts[part.index]!), `part ${segment.msn}.${part.index}`).toBe(true);
        }
      }
    }

    // Evicted segments' files are deleted: what is on disk is exactly the retained spilled segments.
    const retained = [...egress.video.segments, ...egress.audio.segments].filter((s) => s.spilled);
    expect(readdirSync(directory).sort()).toEqual(retained.map((s) => path.basename(s.spilled!.file)).sort());
    expect(hub.spill!.stats.files).toBe(retained.length);
    expect(hub.stats()[0]!.bytesOnDisk).toBe(retained.reduce((n, s) => n + s.size, 0));
    expect(hub.stats()[0]!.bytesOnDisk).toBeLessThan(hub.stats()[0]!.bytes);

    // Over HTTP: HLS segments and parts, DASH segments, all from the files.
    const oldVideo = egress.video.segments.find((s) => s.spilled)!;
    const oldAudio = egress.audio.segments.find((s) => s.spilled)!;
    const get = async (file: string) => {
      const response = await fetch(`${url}/${file}`);
      expect(response.status, file).toBe(200);
      return Buffer.from(await response.arrayBuffer());
    };
    expect((await get(`hls/live/dvr/seg-${oldVideo.msn}.m4s`)).equals(copies.get(oldVideo)!.bytes)).toBe(
      true,
    );
    expect(
      (await get(`hls/live/dvr/audio-seg-${oldAudio.msn}.m4s`)).equals(copies.get(oldAudio)!.bytes),
    ).toBe(true);
    expect(
      (await get(`hls/live/dvr/part-${oldVideo.msn}-1.m4s`)).equals(copies.get(oldVideo)!.parts[1]!),
    ).toBe(true);
    expect(
      (await get(`dash/live/dvr/seg-video-${oldVideo.msn}.m4s`)).equals(copies.get(oldVideo)!.bytes),
    ).toBe(true);

    // Closing the hub removes the directory.
    hub.close();
    await hub.closed;
    expect(existsSync(directory)).toBe(false);
  });

  it("keeps segments in memory when the files cannot be written, and still serves them", async () => {
    const blocker = path.join(scratchDir(), "not-a-directory");
    writeFileSync(blocker, "");
    const { origin, hub, url } = await startSpilling(path.join(blocker, "spill"));
    const feed = new StepFeed(origin, "live/nodisk");
    cleanups.push(() => feed.close());
    await followed(hub, "live/nodisk");
    await feed.advanceTo(16_000);
    await until(() => hub.spill!.stats.writeErrors > 0, 5000, "a failed write");
    const egress = hub.get("live/nodisk")!;
    const first = egress.video.segments[0]!;
    expect(first.spilled).toBeUndefined();
    expect(first.bytes.byteLength).toBe(first.size);
    const response = await fetch(`${url}/hls/live/nodisk/seg-${first.msn}.m4s`);
    expect(response.status).toBe(200);
    expect((await response.arrayBuffer()).byteLength).toBe(first.size);
  });

  it("answers 404 for a spilled segment whose file has gone", async () => {
    const directory = path.join(scratchDir(), "spill");
    const { origin, hub, url } = await startSpilling(directory);
    const feed = new StepFeed(origin, "live/gone");
    cleanups.push(() => feed.close());
    await followed(hub, "live/gone");
    await feed.advanceTo(16_000);
    await until(() => hub.spill!.stats.files >= 1, 5000, "a spilled file");
    const spilled = hub.get("live/gone")!.video.segments.find((s) => s.spilled)!;
    rmSync(spilled.spilled!.file);
    const response = await fetch(`${url}/hls/live/gone/seg-${spilled.msn}.m4s`);
    expect(response.status).toBe(404);
    expect(await response.text()).toMatch(/no longer available/);
  });

  it("rejects a negative memory window", () => {
    expect(() => new DvrSpill({ directory: "unused", memoryS: -1 })).toThrow(/memoryS -1 is invalid/);
  });
});
