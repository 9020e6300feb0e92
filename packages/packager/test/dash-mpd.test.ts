import { describe, expect, it } from "vitest";
import { type MpdModel, renderMpd } from "../src/dash/mpd.ts";

const AST = Date.UTC(2026, 0, 2, 3, 4, 5, 0);

const LIVE: MpdModel = {
  dynamic: true,
  availabilityStartMs: AST,
  publishTimeMs: AST + 30_250,
  minBufferTimeS: 2,
  minimumUpdatePeriodS: 1,
  timeShiftBufferDepthS: 120,
  suggestedPresentationDelayS: 6,
  maxSegmentDurationS: 2.002,
  periods: [
    {
      id: "p0",
      startS: 0,
      adaptationSets: [
        {
          id: 0,
          contentType: "video",
          mimeType: "video/mp4",
          representationId: "video",
          codecs: "avc1.64001f",
          bandwidth: 2_600_123.4,
          width: 1280,
          height: 720,
          frameRate: 30000 / 1001,
          timescale: 90000,
          presentationTimeOffset: 900,
          initialization: "init-video.m4s",
          media: "seg-video-$Number$.m4s?token=a%24b",
          startNumber: 4,
          timeline: [
            { t: 900, d: 180180 },
            { t: 181080, d: 180180 },
            { t: 361260, d: 180180 },
            // A gap (lost frames): the next entry restates its start.
            { t: 600000, d: 90000 },
          ],
        },
        {
          id: 1,
          contentType: "audio",
          mimeType: "audio/mp4",
          representationId: "audio",
          codecs: "mp4a.40.2",
          bandwidth: 131072,
          sampleRate: 48000,
          channels: 2,
          timescale: 48000,
          presentationTimeOffset: 480,
          initialization: "init-audio.m4s",
          media: "seg-audio-$Number$.m4s",
          startNumber: 4,
          timeline: [
            { t: 480, d: 96256 },
            { t: 96736, d: 95232 },
          ],
        },
      ],
    },
  ],
  utcTimings: [
    { schemeIdUri: "urn:mpeg:dash:utc:http-iso:2014", value: "http://127.0.0.1:8889/dash/time" },
    { schemeIdUri: "urn:mpeg:dash:utc:direct:2014", value: "2026-01-02T03:04:35.250Z" },
  ],
};

describe("renderMpd", () => {
  it("renders a dynamic MPD with a run-length SegmentTimeline (golden)", () => {
    expect(renderMpd(LIVE)).toBe(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" availabilityStartTime="2026-01-02T03:04:05.000Z" publishTime="2026-01-02T03:04:35.250Z" minimumUpdatePeriod="PT1S" timeShiftBufferDepth="PT120S" suggestedPresentationDelay="PT6S" maxSegmentDuration="PT2.002S" minBufferTime="PT2S">',
        '  <Period id="p0" start="PT0S">',
        '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">',
        '      <Representation id="video" codecs="avc1.64001f" bandwidth="2600123" width="1280" height="720" frameRate="30000/1001">',
        '        <SegmentTemplate timescale="90000" presentationTimeOffset="900" initialization="init-video.m4s" media="seg-video-$Number$.m4s?token=a%24b" startNumber="4">',
        "          <SegmentTimeline>",
        '            <S t="900" d="180180" r="2"/>',
        '            <S t="600000" d="90000"/>',
        "          </SegmentTimeline>",
        "        </SegmentTemplate>",
        "      </Representation>",
        "    </AdaptationSet>",
        '    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1" lang="und">',
        '      <Representation id="audio" codecs="mp4a.40.2" bandwidth="131072" audioSamplingRate="48000">',
        '        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>',
        '        <SegmentTemplate timescale="48000" presentationTimeOffset="480" initialization="init-audio.m4s" media="seg-audio-$Number$.m4s" startNumber="4">',
        "          <SegmentTimeline>",
        '            <S t="480" d="96256"/>',
        '            <S d="95232"/>',
        "          </SegmentTimeline>",
        "        </SegmentTemplate>",
        "      </Representation>",
        "    </AdaptationSet>",
        "  </Period>",
        '  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="http://127.0.0.1:8889/dash/time"/>',
        '  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2026-01-02T03:04:35.250Z"/>',
        "</MPD>",
        "",
      ].join("\n"),
    );
  });

  it("renders a static MPD without live attributes once ended", () => {
    const text = renderMpd({ ...LIVE, dynamic: false, mediaPresentationDurationS: 8.5, utcTimings: [] });
    expect(text).toContain('type="static"');
    expect(text).toContain('mediaPresentationDuration="PT8.500S"');
    for (const attribute of [
      "availabilityStartTime",
      "minimumUpdatePeriod",
      "timeShiftBufferDepth",
      "UTCTiming",
    ]) {
      expect(text).not.toContain(attribute);
    }
  });

  it("escapes attribute values", () => {
    const set = LIVE.periods[0]!.adaptationSets[1]!;
    const text = renderMpd({
      ...LIVE,
      periods: [{ id: 'x"<&', startS: 12.3456, adaptationSets: [{ ...set, media: "a&b<c>" }] }],
    });
    expect(text).toContain('<Period id="x&#34;&#60;&#38;" start="PT12.346S">');
    expect(text).toContain('media="a&#38;b&#60;c&#62;"');
  });
});
