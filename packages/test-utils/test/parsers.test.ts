import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  fillTemplate,
  isTestUtilsError,
  parseAttributeList,
  parseIsoDuration,
  parseMediaPlaylist,
  parseMpd,
  parseMultivariantPlaylist,
  parsePlaylist,
  readXml,
  waitFor,
} from "../src/index.ts";

const LL_HLS = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600,CAN-SKIP-UNTIL=12.0
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
#EXT-X-PART:DURATION=0.200,URI="part-7-0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="part-7-1.m4s"
#EXTINF:2.000,
seg-7.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4?v=2"
#EXTINF:1.500,live
seg-8.m4s
# a comment
#EXT-X-PART:DURATION=0.200,URI="part-9-0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-9-1.m4s"
#EXT-X-RENDITION-REPORT:URI="audio.m3u8",LAST-MSN=8,LAST-PART=3
`;

describe("HLS playlist reader", () => {
  it("reads an LL-HLS media playlist: segments, parts, discontinuities, hints, reports", () => {
    const p = parseMediaPlaylist(LL_HLS);
    expect(p).toMatchObject({
      version: 9,
      targetDurationS: 2,
      mediaSequence: 7,
      discontinuitySequence: 2,
      nextMsn: 9,
      partTargetS: 0.2,
      serverControl: { canBlockReload: true, partHoldBackS: 0.6, canSkipUntilS: 12 },
      preloadHint: { type: "PART", uri: "part-9-1.m4s" },
      endList: false,
      mapUri: "init.mp4",
      renditionReports: [{ uri: "audio.m3u8", lastMsn: 8, lastPart: 3 }],
    });
    expect(
      p.segments.map((s) => [s.msn, s.uri, s.durationS, s.discontinuity, s.discontinuitySequence]),
    ).toEqual([
      [7, "seg-7.m4s", 2, false, 2],
      [8, "seg-8.m4s", 1.5, true, 3],
    ]);
    expect(p.segments[0]!.parts).toEqual([
      { uri: "part-7-0.m4s", durationS: 0.2, independent: true, gap: false },
      { uri: "part-7-1.m4s", durationS: 0.2, independent: false, gap: false },
    ]);
    expect(p.segments[0]!.programDateTimeMs).toBe(Date.parse("2026-01-01T00:00:00Z"));
    expect(p.segments[1]!.mapUri).toBe("init.mp4?v=2");
    expect(p.trailingParts.map((x) => x.uri)).toEqual(["part-9-0.m4s"]);
    expect(parsePlaylist(LL_HLS).kind).toBe("media");
  });

  it("numbers segments after an EXT-X-SKIP and sees ENDLIST", () => {
    const p = parseMediaPlaylist(
      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:2,\ns13.m4s\n#EXT-X-ENDLIST\n",
    );
    expect(p.segments[0]!.msn).toBe(13);
    expect(p.skippedSegments).toBe(3);
    expect(p.endList).toBe(true);
    expect(p.nextMsn).toBe(14);
  });

  it("reads a multivariant playlist with an audio group", () => {
    const m = parseMultivariantPlaylist(`#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,URI="audio.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=300000,AVERAGE-BANDWIDTH=250000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="audio"
playlist.m3u8
`);
    expect(m.variants).toEqual([
      {
        uri: "playlist.m3u8",
        bandwidth: 300000,
        averageBandwidth: 250000,
        codecs: "avc1.64001e,mp4a.40.2",
        resolution: { width: 640, height: 360 },
        frameRate: 30,
        audioGroup: "audio",
      },
    ]);
    expect(m.renditions).toEqual([
      { type: "AUDIO", groupId: "audio", name: "audio", uri: "audio.m3u8", isDefault: true },
    ]);
  });

  it("parses attribute lists with quoted commas and rejects junk", () => {
    expect([...parseAttributeList('A=1,B="x,y",C=0x1F')]).toEqual([
      ["A", "1"],
      ["B", "x,y"],
      ["C", "0x1F"],
    ]);
    expect(() => parseAttributeList('A="open')).toThrow(/unterminated/);
    expect(() => parseAttributeList("lower=1")).toThrow(/invalid/);
    expect(() => parseAttributeList('A="x"junk')).toThrow(/junk/);
  });

  it.each([
    ["no header", "#EXT-X-TARGETDURATION:2\n", /does not start with #EXTM3U/],
    ["no target duration", "#EXTM3U\n#EXTINF:2,\ns.m4s\n", /no EXT-X-TARGETDURATION/],
    ["a URI without EXTINF", "#EXTM3U\n#EXT-X-TARGETDURATION:2\ns.m4s\n", /not preceded by #EXTINF/],
    ["a bad duration", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\ns.m4s\n", /not a number/],
    ["a dangling EXTINF", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n", /has no URI/],
    ["a part without URI", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=0.2\n", /no URI/],
    [
      "a late media sequence",
      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns\n#EXT-X-MEDIA-SEQUENCE:3\n",
      /after the first/,
    ],
  ])("rejects a media playlist with %s", (_, text, message) => {
    expect(() => parseMediaPlaylist(text)).toThrow(message);
  });

  it("throws nothing but its own error on arbitrary text", () => {
    const line = fc.oneof(
      fc.constantFrom(
        "#EXTM3U",
        "#EXT-X-TARGETDURATION:2",
        "#EXTINF:2,",
        "seg.m4s",
        "#EXT-X-ENDLIST",
        "#EXT-X-STREAM-INF:BANDWIDTH=1",
      ),
      fc.string({ maxLength: 40 }).map((s) => `#EXT-X-PART:${s}`),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
        try {
          parsePlaylist(lines.join("\n"));
        } catch (error) {
          if (!isTestUtilsError(error, "TEST_UTILS_PLAYLIST_INVALID")) throw error;
        }
      }),
      { numRuns: 500 },
    );
  });
});

const MPD = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a live MPD -->
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z"
     minimumUpdatePeriod="PT1S" timeShiftBufferDepth="PT2M" suggestedPresentationDelay="PT4.5S">
  <Period id="p0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4">
      <Representation id="v" bandwidth="300000" codecs="avc1.64001e" width="640" height="360">
        <SegmentTemplate timescale="90000" initialization="init-video.m4s" media="seg-video-$Number$.m4s" startNumber="5">
          <SegmentTimeline><S t="900000" d="192000" r="2"/><S d="96000"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" mimeType="audio/mp4" codecs="mp4a.40.2">
      <SegmentTemplate timescale="48000" duration="96000" initialization="a-$RepresentationID$.m4s" media="a-$RepresentationID$-$Time%08d$.m4s"/>
      <Representation id="a" bandwidth="64000"/>
    </AdaptationSet>
  </Period>
</MPD>`;

describe("MPD reader", () => {
  it("reads a live MPD with a SegmentTimeline, repeats and inherited templates", () => {
    const mpd = parseMpd(MPD);
    expect(mpd).toMatchObject({
      type: "dynamic",
      minimumUpdatePeriodS: 1,
      timeShiftBufferDepthS: 120,
      suggestedPresentationDelayS: 4.5,
      availabilityStartTimeMs: Date.parse("2026-01-01T00:00:00Z"),
    });
    const [video, audio] = mpd.periods[0]!.adaptationSets;
    expect(video!.contentType).toBe("video");
    const rep = video!.representations[0]!;
    expect(rep).toMatchObject({
      id: "v",
      bandwidth: 300000,
      width: 640,
      height: 360,
      initialization: "init-video.m4s",
    });
    expect(rep.segments.map((s) => [s.number, s.time, s.uri])).toEqual([
      [5, 900000, "seg-video-5.m4s"],
      [6, 1092000, "seg-video-6.m4s"],
      [7, 1284000, "seg-video-7.m4s"],
      [8, 1476000, "seg-video-8.m4s"],
    ]);
    expect(rep.segments[3]!.durationS).toBeCloseTo(96000 / 90000, 9);
    expect(audio!.contentType).toBe("audio");
    expect(audio!.representations[0]).toMatchObject({ initialization: "a-a.m4s", codecs: "mp4a.40.2" });
    expect(audio!.representations[0]!.segments.map((s) => [s.uri, s.durationS])).toEqual([
      ["a-a-00000000.m4s", 2],
    ]);
  });

  it("fills templates with widths and reads ISO durations", () => {
    expect(
      fillTemplate("s-$RepresentationID$-$Number%05d$-$$.m4s", { number: 42, representationId: "v" }),
    ).toBe("s-v-00042-$.m4s");
    expect(parseIsoDuration("PT1H2M3.5S")).toBe(3723.5);
    expect(parseIsoDuration("P1D")).toBe(86400);
    expect(() => parseIsoDuration("PT")).toThrow(/ISO 8601/);
  });

  it.each([
    ["another root", "<Foo/>", /not <MPD>/],
    ["no period", '<MPD type="static"/>', /no Period/],
    ["a bad type", '<MPD type="live"><Period/></MPD>', /neither static nor dynamic/],
    ["mismatched tags", "<MPD><Period></MPD>", /does not match/],
    ["an unclosed element", "<MPD><Period>", /not closed/],
    ["a bad attribute", "<MPD type=static><Period/></MPD>", /malformed attributes/],
    ["two roots", "<MPD/><MPD/>", /more than one root/],
  ])("rejects an MPD with %s", (_, text, message) => {
    expect(() => parseMpd(text)).toThrow(message);
  });

  it("bounds nesting and timeline repeats", () => {
    expect(() => readXml(`${"<a>".repeat(40)}${"</a>".repeat(40)}`)).toThrow(/deeper than/);
    const huge = MPD.replace('r="2"', 'r="1000000000"');
    expect(() => parseMpd(huge)).toThrow(/more than 100000 segments/);
  });

  it("throws nothing but its own error on arbitrary markup", () => {
    const token = fc.oneof(
      fc.constantFrom(
        "<MPD>",
        "</MPD>",
        "<Period>",
        "</Period>",
        '<S d="1" r="2"/>',
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
      ),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 20 }), (tokens) => {
        try {
          parseMpd(tokens.join(""));
        } catch (error) {
          if (!isTestUtilsError(error, "TEST_UTILS_MPD_INVALID")) throw error;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("waitFor", () => {
  it("resolves with the first truthy value", async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? `done after ${n}` : undefined), { intervalMs: 1 })).toBe(
      "done after 3",
    );
  });

  it("says what it waited for, for how long, and what it last saw", async () => {
    const error = await waitFor(() => false, {
      timeoutMs: 60,
      message: "3 segments",
    }).catch((e) => e);
    expect(isTestUtilsError(error, "TEST_UTILS_TIMEOUT")).toBe(true);
    expect(error.message).toMatch(
      /timed out after \d+ ms waiting for 3 segments \(\d+ polls\); it last returned false/,
    );
    const thrown = await waitFor(
      () => {
        throw new RangeError("playlist not ready");
      },
      { timeoutMs: 30 },
    ).catch((e) => e);
    expect(thrown.message).toMatch(/its last poll threw RangeError: playlist not ready/);
    expect(thrown.cause).toBeInstanceOf(RangeError);
  });

  it("fails at once on an error failFast accepts", async () => {
    const started = performance.now();
    const refused = new Error("refused");
    await expect(
      waitFor(
        () => {
          throw refused;
        },
        { timeoutMs: 5000, failFast: (e) => e === refused },
      ),
    ).rejects.toBe(refused);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("stops when aborted", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("enough")), 20);
    await expect(waitFor(() => false, { timeoutMs: 5000, signal: controller.signal })).rejects.toThrow(
      "enough",
    );
  });
});
