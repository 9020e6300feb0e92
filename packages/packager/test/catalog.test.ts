import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  buildHangCatalog,
  buildMoqJsCatalog,
  type HangCatalog,
  PackagerError,
  parseHangCatalog,
  parseInitSegment,
  type ResolvedAudioTrack,
  type ResolvedVideoTrack,
  resolveTrackConfig,
  selectCmafRendition,
  writeInitSegment,
} from "../src/index.ts";
import { loadFixture } from "./support/feed-fixture.ts";
import { loadHangCatalog } from "./support/load-hang.ts";

const fixture = loadFixture();
const video = resolveTrackConfig(fixture.video!) as ResolvedVideoTrack;
const audio = resolveTrackConfig(fixture.audio!) as ResolvedAudioTrack;
const videoInit = writeInitSegment(video);
const audioInit = writeInitSegment(audio);

function catalogFor(): HangCatalog {
  return buildHangCatalog({
    video: { track: video, init: videoInit, framerate: 30, bitrate: 280_000.4, jitter: 66.7 },
    audio: { track: audio, init: audioInit, bitrate: 64_000 },
  });
}

function expectInvalid(json: unknown, field?: string): void {
  try {
    parseHangCatalog(json);
  } catch (err) {
    expect(err).toBeInstanceOf(PackagerError);
    expect((err as PackagerError).code).toBe("PACKAGER_INVALID_CATALOG");
    if (field) expect((err as Error).message).toContain(field);
    return;
  }
  throw new Error(`expected ${JSON.stringify(json)} to be rejected`);
}

describe("buildHangCatalog", () => {
  test("describes CMAF renditions the way the reference document's example does", () => {
    const catalog = catalogFor();
    expect(catalog).toEqual({
      video: {
        renditions: {
          video: {
            codec: "avc1.64001e",
            container: { kind: "cmaf", init: Buffer.from(videoInit).toString("base64") },
            description: Buffer.from(fixture.video!.description).toString("hex"),
            codedWidth: 640,
            codedHeight: 360,
            framerate: 30,
            bitrate: 280_000,
            optimizeForLatency: true,
            jitter: 67,
          },
        },
      },
      audio: {
        renditions: {
          audio: {
            codec: "mp4a.40.2",
            container: { kind: "cmaf", init: Buffer.from(audioInit).toString("base64") },
            description: "119056e500",
            sampleRate: 48000,
            numberOfChannels: 2,
            bitrate: 64_000,
          },
        },
      },
    });
  });

  test("the official @moq/hang RootSchema accepts it, unchanged", async () => {
    const { RootSchema } = await loadHangCatalog();
    const json = JSON.parse(JSON.stringify(catalogFor()));
    const result = RootSchema.safeParse(json);
    expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
    expect(result.data).toEqual(json);
  });

  test("round-trips through parseHangCatalog, and the init decodes back to the same track", () => {
    const text = new TextEncoder().encode(JSON.stringify(catalogFor()));
    const parsed = parseHangCatalog(text);
    expect(parsed).toEqual(catalogFor());
    const rendition = selectCmafRendition(parsed, "video")!;
    expect(rendition.name).toBe("video");
    expect([...rendition.init]).toEqual([...videoInit]);
    expect(parseInitSegment(rendition.init).codecString).toBe(rendition.config.codec);
    expect(selectCmafRendition(parsed, "audio")!.config.sampleRate).toBe(48000);
  });
});

describe("parseHangCatalog", () => {
  test("accepts what hang accepts: the wire reference example, legacy array forms, extra sections", () => {
    const example = {
      video: {
        renditions: {
          video: {
            codec: "avc1.64001f",
            container: { kind: "legacy" },
            description: "0164001fffe1",
            codedWidth: 1280,
            codedHeight: 720,
            framerate: 30,
            bitrate: 3000000,
          },
        },
      },
      audio: {
        renditions: {
          audio: {
            codec: "mp4a.40.2",
            container: { kind: "legacy" },
            description: "1210",
            sampleRate: 44100,
            numberOfChannels: 2,
            bitrate: 128000,
          },
        },
      },
      scte35: { anything: true },
    };
    expect(parseHangCatalog(example)).toEqual(example);
    const legacy = parseHangCatalog({
      video: [{ track: { name: "hd" }, config: { codec: "avc1.64001f", codedWidth: 1920 } }],
      audio: { track: { name: "en" }, config: { codec: "opus", sampleRate: 48000, numberOfChannels: 2 } },
    });
    expect(legacy.video!.renditions["hd"]).toEqual({
      codec: "avc1.64001f",
      container: { kind: "legacy" },
      codedWidth: 1920,
    });
    expect(legacy.audio!.renditions["en"]!.sampleRate).toBe(48000);
    expect(selectCmafRendition(legacy, "video")).toBeUndefined();
    const unknown = parseHangCatalog({
      video: { renditions: { v: { codec: "x", container: { kind: "future", n: 1 } } } },
    });
    expect(unknown.video!.renditions["v"]!.container).toEqual({
      kind: "unknown",
      raw: { kind: "future", n: 1 },
    });
  });

  test("rejects what the egress cannot use, naming the field", () => {
    const good = JSON.parse(JSON.stringify(catalogFor()));
    const mutate = (edit: (c: typeof good) => void) => {
      const copy = JSON.parse(JSON.stringify(good));
      edit(copy);
      return copy;
    };
    expectInvalid(
      mutate((c) => delete c.video.renditions.video.codec),
      "video.renditions.video.codec",
    );
    expectInvalid(
      mutate((c) => delete c.video.renditions.video.container.init),
      "container.init",
    );
    expectInvalid(
      mutate((c) => (c.video.renditions.video.container.init = "not base64!")),
      "container.init",
    );
    expectInvalid(
      mutate((c) => (c.video.renditions.video.description = "xyz")),
      "description",
    );
    expectInvalid(
      mutate((c) => (c.video.renditions.video.codedWidth = -1)),
      "codedWidth",
    );
    expectInvalid(
      mutate((c) => (c.video.renditions.video.codedWidth = 1.5)),
      "codedWidth",
    );
    expectInvalid(
      mutate((c) => delete c.audio.renditions.audio.numberOfChannels),
      "numberOfChannels",
    );
    expectInvalid(
      mutate((c) => delete c.audio.renditions.audio.sampleRate),
      "sampleRate",
    );
    expectInvalid(
      mutate((c) => (c.audio.renditions = [])),
      "audio",
    );
    expectInvalid("{", "not JSON");
    expectInvalid(new Uint8Array([0xff, 0xfe]), "UTF-8");
    expectInvalid([], "root");
    expectInvalid(null, "root");
  });

  test("agrees with hang's RootSchema on every mutation of a valid catalog (differential)", async () => {
    const { RootSchema } = await loadHangCatalog();
    const good = JSON.parse(JSON.stringify(catalogFor()));
    const values = [
      undefined,
      null,
      0,
      -1,
      1.5,
      2 ** 60,
      "",
      "zz",
      "0a",
      true,
      [],
      {},
      { kind: "cmaf" },
      { kind: "legacy" },
    ];
    const paths = [
      ["video"],
      ["video", "renditions"],
      ["video", "renditions", "video"],
      ["video", "renditions", "video", "codec"],
      ["video", "renditions", "video", "container"],
      ["video", "renditions", "video", "description"],
      ["video", "renditions", "video", "codedWidth"],
      ["video", "renditions", "video", "framerate"],
      ["video", "renditions", "video", "bitrate"],
      ["video", "renditions", "video", "optimizeForLatency"],
      ["video", "display"],
      ["video", "rotation"],
      ["audio", "renditions", "audio", "sampleRate"],
      ["audio", "renditions", "audio", "numberOfChannels"],
      ["audio", "renditions", "audio", "description"],
      ["audio", "renditions", "audio", "jitter"],
    ];
    let compared = 0;
    for (const at of paths) {
      for (const value of values) {
        const copy = JSON.parse(JSON.stringify(good));
        let parent = copy;
        for (const key of at.slice(0, -1)) parent = parent[key];
        if (value === undefined) delete parent[at[at.length - 1]!];
        else parent[at[at.length - 1]!] = value;
        const ours = (() => {
          try {
            parseHangCatalog(copy);
            return true;
          } catch (err) {
            if (!(err instanceof PackagerError)) throw err;
            return false;
          }
        })();
        // The one deliberate difference, left out of this set: we refuse a cmaf container whose init is "".
        const hangs = RootSchema.safeParse(copy).success;
        expect(ours, `${at.join(".")} = ${JSON.stringify(value)}`).toBe(hangs);
        compared++;
      }
    }
    expect(compared).toBe(paths.length * values.length);
  });

  test("hostile input (any JSON value, any text, deep nesting, oversized) raises only PackagerError", () => {
    const attempt = (input: unknown) => {
      try {
        parseHangCatalog(input);
      } catch (err) {
        if (!(err instanceof PackagerError)) throw err;
      }
    };
    fc.assert(fc.property(fc.jsonValue(), attempt), { numRuns: 2000 });
    fc.assert(fc.property(fc.string(), attempt), { numRuns: 1000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), attempt), { numRuns: 1000 });
    fc.assert(
      fc.property(
        fc.record({
          video: fc.record({ renditions: fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }) }),
          audio: fc.oneof(
            fc.jsonValue(),
            fc.record({ renditions: fc.dictionary(fc.string(), fc.jsonValue()) }),
          ),
        }),
        attempt,
      ),
      { numRuns: 2000 },
    );
    attempt(`${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    attempt({
      video: {
        renditions: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`r${i}`, { codec: "a" }])),
      },
    });
    expectInvalid("x".repeat(2 * 1024 * 1024), "above");
    // An own "__proto__" rendition name is just a name: validated, and never a prototype.
    expectInvalid(JSON.parse('{"video":{"renditions":{"__proto__":{"codec":1}}}}'), "codec");
    const named = parseHangCatalog(
      JSON.parse('{"video":{"renditions":{"__proto__":{"codec":"avc1.64001f"}}}}'),
    );
    expect(Object.keys(named.video!.renditions)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(named.video!.renditions)).toBe(Object.prototype);
  });
});

describe("the reference .catalog", () => {
  test("moq-js style: version 1, video then audio, uppercase avc1 hex", () => {
    expect(JSON.stringify(buildMoqJsCatalog({ video, audio }))).toBe(
      '{"version":1,"tracks":[' +
        '{"name":"0.mp4","packaging":"cmaf","renderGroup":0,"codec":"avc1.64001E","mimeType":"video/mp4"},' +
        '{"name":"1.mp4","packaging":"cmaf","renderGroup":1,"codec":"mp4a.40.2","mimeType":"audio/mp4","samplerate":48000,"channelCount":2}]}',
    );
    expect(buildMoqJsCatalog({ audio }).tracks).toHaveLength(1);
  });
});
