import HLS from "hls-parser";
import { beforeAll, describe, expect, it } from "vitest";
import {
  countSkippableSegments,
  type MediaPlaylistModel,
  type PlaylistSegment,
  renderMediaPlaylist,
  renderMultivariantPlaylist,
} from "../src/hls/playlist.ts";

beforeAll(() => {
  HLS.setOptions({ strictMode: true, silent: true });
});

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function part(
  msn: number,
  index: number,
  durationS = 0.2,
): { uri: string; durationS: number; independent: boolean } {
  return { uri: `part-${msn}-${index}.m4s`, durationS, independent: index === 0 };
}

function closed(
  msn: number,
  startS: number,
  options: { parts?: boolean; discontinuity?: boolean; map?: string } = {},
): PlaylistSegment {
  return {
    msn,
    uri: `seg-${msn}.m4s`,
    durationS: 2,
    pdtMs: T0 + startS * 1000,
    discontinuity: options.discontinuity ?? false,
    mapUri: options.map ?? "init.mp4",
    ...(options.parts ? { parts: Array.from({ length: 10 }, (_, i) => part(msn, i)) } : {}),
  };
}

const LIVE: MediaPlaylistModel = {
  targetDurationS: 2,
  partTargetS: 0.2,
  partHoldBackS: 0.6,
  holdBackS: 6,
  canSkipUntilS: 12,
  mediaSequence: 7,
  discontinuitySequence: 1,
  independentSegments: true,
  segments: [
    closed(7, 0),
    closed(8, 2, { discontinuity: true, map: "init.mp4?v=1" }),
    closed(9, 4, { parts: true, map: "init.mp4?v=1" }),
    {
      msn: 10,
      durationS: 0.4,
      pdtMs: T0 + 6000,
      discontinuity: false,
      mapUri: "init.mp4?v=1",
      parts: [part(10, 0), part(10, 1)],
    },
  ],
  preloadHintUri: "part-10-2.m4s",
  ended: false,
  renditionReports: [{ uri: "audio.m3u8", lastMsn: 10, lastPart: 1 }],
};

describe("renderMediaPlaylist", () => {
  it("renders a live LL-HLS playlist (golden)", () => {
    const text = renderMediaPlaylist(LIVE);
    expect(text).toBe(
      [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES,HOLD-BACK=6.000,PART-HOLD-BACK=0.600",
        "#EXT-X-PART-INF:PART-TARGET=0.200",
        "#EXT-X-MEDIA-SEQUENCE:7",
        "#EXT-X-DISCONTINUITY-SEQUENCE:1",
        '#EXT-X-MAP:URI="init.mp4"',
        "#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:05.678Z",
        "#EXTINF:2.00000,",
        "seg-7.m4s",
        "#EXT-X-DISCONTINUITY",
        '#EXT-X-MAP:URI="init.mp4?v=1"',
        "#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:07.678Z",
        "#EXTINF:2.00000,",
        "seg-8.m4s",
        "#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:09.678Z",
        ...Array.from(
          { length: 10 },
          (_, i) => `#EXT-X-PART:DURATION=0.20000,URI="part-9-${i}.m4s"${i === 0 ? ",INDEPENDENT=YES" : ""}`,
        ),
        "#EXTINF:2.00000,",
        "seg-9.m4s",
        "#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:11.678Z",
        '#EXT-X-PART:DURATION=0.20000,URI="part-10-0.m4s",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.20000,URI="part-10-1.m4s"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-10-2.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="audio.m3u8",LAST-MSN=10,LAST-PART=1',
        "",
      ].join("\n"),
    );
  });

  it("is accepted by hls-parser, which reads back parts, hint, report and PDT", () => {
    const parsed = HLS.parse(renderMediaPlaylist(LIVE)) as HLS.types.MediaPlaylist;
    expect(parsed.isMasterPlaylist).toBe(false);
    expect(parsed.targetDuration).toBe(2);
    expect(parsed.mediaSequenceBase).toBe(7);
    expect(parsed.discontinuitySequenceBase).toBe(1);
    expect(parsed.lowLatencyCompatibility).toMatchObject({
      canBlockReload: true,
      canSkipUntil: 12,
      partHoldBack: 0.6,
    });
    expect(parsed.partTargetDuration).toBe(0.2);
    const uris = parsed.segments.map((segment) => segment.uri);
    expect(uris.slice(0, 3)).toEqual(["seg-7.m4s", "seg-8.m4s", "seg-9.m4s"]);
    expect(parsed.segments[1]!.discontinuity).toBe(true);
    expect(parsed.segments[2]!.parts).toHaveLength(10);
    expect(parsed.prefetchSegments.length + (parsed.segments[3]?.parts?.length ?? 0)).toBeGreaterThan(0);
    expect(parsed.renditionReports[0]).toMatchObject({ uri: "audio.m3u8", lastMSN: 10, lastPart: 1 });
    expect(parsed.segments[0]!.programDateTime?.getTime()).toBe(T0);
  });

  it("ends with ENDLIST and no server control, hint or reports once ended", () => {
    const text = renderMediaPlaylist({ ...LIVE, segments: LIVE.segments.slice(0, 3), ended: true });
    expect(text.trimEnd().endsWith("#EXT-X-ENDLIST")).toBe(true);
    expect(text).not.toContain("PRELOAD-HINT");
    expect(text).not.toContain("SERVER-CONTROL");
    expect(text).not.toContain("RENDITION-REPORT");
    const parsed = HLS.parse(text) as HLS.types.MediaPlaylist;
    expect(parsed.endlist).toBe(true);
  });

  it("produces delta updates that skip segments older than CAN-SKIP-UNTIL", () => {
    const segments: PlaylistSegment[] = Array.from({ length: 10 }, (_, i) =>
      closed(100 + i, i * 2, { parts: i >= 8 }),
    );
    const model: MediaPlaylistModel = { ...LIVE, mediaSequence: 100, discontinuitySequence: 0, segments };
    // 20 s listed; everything that starts more than 12 s before the end can go: segments 100..103.
    expect(countSkippableSegments(model)).toBe(4);
    const delta = renderMediaPlaylist(model, "YES");
    expect(delta).toContain("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n");
    expect(delta).not.toContain("seg-103.m4s");
    expect(delta).toContain("seg-104.m4s");
    expect(delta).toContain("#EXT-X-MEDIA-SEQUENCE:100\n");
    // The map must still be stated for the segments that remain.
    expect(delta.indexOf("#EXT-X-SKIP")).toBeLessThan(delta.indexOf("#EXT-X-MAP"));
    const parsed = HLS.parse(delta) as HLS.types.MediaPlaylist;
    expect(parsed.skip).toBe(4);
    expect(parsed.segments[0]!.uri).toBe("seg-104.m4s");
    const v2 = renderMediaPlaylist(model, "v2");
    expect(v2).toContain('#EXT-X-SKIP:SKIPPED-SEGMENTS=4,RECENTLY-REMOVED-DATERANGES=""');
    expect(v2).toContain("#EXT-X-VERSION:10");
    // A short playlist has nothing to skip: the full playlist is returned.
    expect(renderMediaPlaylist(LIVE, "YES")).toBe(renderMediaPlaylist(LIVE));
  });
});

describe("renderMultivariantPlaylist", () => {
  it("renders video with an audio group (golden) that hls-parser accepts", () => {
    const text = renderMultivariantPlaylist({
      video: { uri: "playlist.m3u8", codec: "avc1.64001f", width: 1280, height: 720, frameRate: 30 },
      audio: { uri: "audio.m3u8", codec: "mp4a.40.2", channels: 2 },
      bandwidth: 2_812_345.6,
      averageBandwidth: 2_500_000,
    });
    expect(text).toBe(
      [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="default",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio.m3u8"',
        '#EXT-X-STREAM-INF:BANDWIDTH=2812346,AVERAGE-BANDWIDTH=2500000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"',
        "playlist.m3u8",
        "",
      ].join("\n"),
    );
    const parsed = HLS.parse(text) as HLS.types.MasterPlaylist;
    expect(parsed.isMasterPlaylist).toBe(true);
    expect(parsed.variants[0]).toMatchObject({
      uri: "playlist.m3u8",
      bandwidth: 2812346,
      codecs: "avc1.64001f,mp4a.40.2",
      resolution: { width: 1280, height: 720 },
      frameRate: 30,
    });
    expect(parsed.variants[0]!.audio[0]).toMatchObject({ uri: "audio.m3u8", groupId: "audio" });
  });

  it("points an audio-only broadcast's variant at the audio playlist", () => {
    const text = renderMultivariantPlaylist({
      audio: { uri: "audio.m3u8", codec: "mp4a.40.2" },
      bandwidth: 130000,
    });
    const parsed = HLS.parse(text) as HLS.types.MasterPlaylist;
    expect(parsed.variants[0]).toMatchObject({ uri: "audio.m3u8", codecs: "mp4a.40.2" });
    expect(text).not.toContain("EXT-X-MEDIA");
  });
});
