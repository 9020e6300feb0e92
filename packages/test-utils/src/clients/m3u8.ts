/**
 * HLS playlist reading for the test client: multivariant and media playlists with the LL-HLS
 * tags (parts, preload hints, server control, skips, rendition reports). Bounded (size, lines,
 * attribute count) and strict where a test should notice: a media playlist without
 * `#EXT-X-TARGETDURATION`, an `#EXTINF` without a URI or a duration that is not a number is an
 * error, never a guess. Unknown tags are ignored, as RFC 8216 asks.
 */
import { TestUtilsError } from "../errors.ts";

/** Largest playlist text accepted. */
export const MAX_PLAYLIST_BYTES: number = 4 * 1024 * 1024;
const MAX_LINES = 200_000;
const MAX_ATTRIBUTES = 64;

/** One `#EXT-X-PART`. */
export interface PlaylistPartEntry {
  readonly uri: string;
  readonly durationS: number;
  readonly independent: boolean;
  readonly gap: boolean;
}

/** One segment (`#EXTINF` + URI) with the parts listed before it. */
export interface PlaylistSegmentEntry {
  /** Media sequence number. */
  readonly msn: number;
  readonly uri: string;
  readonly durationS: number;
  /** Preceded by `#EXT-X-DISCONTINUITY`. */
  readonly discontinuity: boolean;
  /** Discontinuity sequence number this segment belongs to. */
  readonly discontinuitySequence: number;
  /** `#EXT-X-PROGRAM-DATE-TIME` in Unix ms, when given. */
  readonly programDateTimeMs: number | undefined;
  /** The `#EXT-X-MAP` URI in force. */
  readonly mapUri: string | undefined;
  readonly parts: readonly PlaylistPartEntry[];
}

/** A parsed media playlist. */
export interface MediaPlaylist {
  readonly kind: "media";
  readonly version: number | undefined;
  readonly targetDurationS: number;
  readonly mediaSequence: number;
  readonly discontinuitySequence: number;
  /** Complete segments, oldest first. */
  readonly segments: readonly PlaylistSegmentEntry[];
  /** Parts after the last complete segment: the segment being filled (its msn is `nextMsn`). */
  readonly trailingParts: readonly PlaylistPartEntry[];
  /** Sequence number after the last complete segment. */
  readonly nextMsn: number;
  readonly partTargetS: number | undefined;
  readonly serverControl: {
    readonly canBlockReload: boolean;
    readonly canSkipUntilS: number | undefined;
    readonly partHoldBackS: number | undefined;
    readonly holdBackS: number | undefined;
  };
  readonly preloadHint: { readonly type: string; readonly uri: string } | undefined;
  /** Segments skipped by a delta update (`#EXT-X-SKIP`). */
  readonly skippedSegments: number;
  readonly renditionReports: readonly {
    readonly uri: string;
    readonly lastMsn?: number;
    readonly lastPart?: number;
  }[];
  readonly endList: boolean;
  /** `#EXT-X-MAP` URI of the first segment (or the only one). */
  readonly mapUri: string | undefined;
}

/** One `#EXT-X-STREAM-INF` variant. */
export interface PlaylistVariant {
  readonly uri: string;
  readonly bandwidth: number;
  readonly averageBandwidth: number | undefined;
  readonly codecs: string | undefined;
  readonly resolution: { readonly width: number; readonly height: number } | undefined;
  readonly frameRate: number | undefined;
  readonly audioGroup: string | undefined;
}

/** One `#EXT-X-MEDIA` rendition. */
export interface PlaylistRendition {
  readonly type: string;
  readonly groupId: string;
  readonly name: string;
  readonly uri: string | undefined;
  readonly isDefault: boolean;
}

/** A parsed multivariant (master) playlist. */
export interface MultivariantPlaylist {
  readonly kind: "multivariant";
  readonly variants: readonly PlaylistVariant[];
  readonly renditions: readonly PlaylistRendition[];
}

function fail(message: string): never {
  throw new TestUtilsError("TEST_UTILS_PLAYLIST_INVALID", message);
}

/** Parses an attribute list (`KEY=value,KEY="quoted, value"`). */
export function parseAttributeList(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    if (out.size >= MAX_ATTRIBUTES) fail(`attribute list has more than ${MAX_ATTRIBUTES} attributes`);
    const eq = text.indexOf("=", i);
    if (eq < 0) fail(`attribute list "${text.slice(0, 80)}" has a name without a value`);
    const name = text.slice(i, eq).trim();
    if (!/^[A-Z0-9-]+$/.test(name)) fail(`attribute name "${name.slice(0, 40)}" is invalid`);
    let value: string;
    if (text[eq + 1] === '"') {
      const close = text.indexOf('"', eq + 2);
      if (close < 0) fail(`attribute ${name} has an unterminated quoted string`);
      value = text.slice(eq + 2, close);
      i = close + 1;
    } else {
      const comma = text.indexOf(",", eq + 1);
      value = text.slice(eq + 1, comma < 0 ? text.length : comma).trim();
      i = comma < 0 ? text.length : comma;
    }
    out.set(name, value);
    if (text[i] === ",") i++;
    else if (i < text.length) fail(`attribute list "${text.slice(0, 80)}" has junk after ${name}`);
  }
  return out;
}

function number(value: string | undefined, what: string): number {
  const n = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isFinite(n))
    fail(`${what} "${value}" is not a number`);
  return n;
}

function integer(value: string | undefined, what: string): number {
  const n = number(value, what);
  if (!Number.isSafeInteger(n) || n < 0) fail(`${what} "${value}" is not a non-negative integer`);
  return n;
}

function lines(text: string): string[] {
  if (text.length > MAX_PLAYLIST_BYTES) fail(`playlist is larger than ${MAX_PLAYLIST_BYTES} bytes`);
  const all = text.split(/\r?\n/);
  if (all.length > MAX_LINES) fail(`playlist has more than ${MAX_LINES} lines`);
  if (all[0]?.replace(/^\uFEFF/, "").trim() !== "#EXTM3U") fail("playlist does not start with #EXTM3U");
  return all.map((l) => l.trim());
}

function tagValue(line: string): string {
  const colon = line.indexOf(":");
  return colon < 0 ? "" : line.slice(colon + 1);
}

function tagName(line: string): string {
  const colon = line.indexOf(":");
  return colon < 0 ? line : line.slice(0, colon);
}

/** Parses either kind of playlist. */
export function parsePlaylist(text: string): MediaPlaylist | MultivariantPlaylist {
  return /^#EXT-X-STREAM-INF:/m.test(text) ? parseMultivariantPlaylist(text) : parseMediaPlaylist(text);
}

/** Parses a multivariant playlist. */
export function parseMultivariantPlaylist(text: string): MultivariantPlaylist {
  const all = lines(text);
  const variants: PlaylistVariant[] = [];
  const renditions: PlaylistRendition[] = [];
  for (let i = 1; i < all.length; i++) {
    const line = all[i]!;
    const name = tagName(line);
    if (name === "#EXT-X-STREAM-INF") {
      const attrs = parseAttributeList(tagValue(line));
      let j = i + 1;
      while (j < all.length && (all[j] === "" || all[j]!.startsWith("#"))) j++;
      const uri = all[j];
      if (uri === undefined) fail("#EXT-X-STREAM-INF is not followed by a URI");
      const resolution = attrs.get("RESOLUTION");
      const match = resolution === undefined ? null : /^(\d+)x(\d+)$/.exec(resolution);
      if (resolution !== undefined && !match) fail(`RESOLUTION "${resolution}" is not WIDTHxHEIGHT`);
      variants.push({
        uri,
        bandwidth: integer(attrs.get("BANDWIDTH"), "BANDWIDTH"),
        averageBandwidth: attrs.has("AVERAGE-BANDWIDTH")
          ? integer(attrs.get("AVERAGE-BANDWIDTH"), "AVERAGE-BANDWIDTH")
          : undefined,
        codecs: attrs.get("CODECS"),
        resolution: match ? { width: Number(match[1]), height: Number(match[2]) } : undefined,
        frameRate: attrs.has("FRAME-RATE") ? number(attrs.get("FRAME-RATE"), "FRAME-RATE") : undefined,
        audioGroup: attrs.get("AUDIO"),
      });
      i = j;
    } else if (name === "#EXT-X-MEDIA") {
      const attrs = parseAttributeList(tagValue(line));
      const type = attrs.get("TYPE");
      const groupId = attrs.get("GROUP-ID");
      const renditionName = attrs.get("NAME");
      if (!type || !groupId || !renditionName) fail("#EXT-X-MEDIA needs TYPE, GROUP-ID and NAME");
      renditions.push({
        type,
        groupId,
        name: renditionName,
        uri: attrs.get("URI"),
        isDefault: attrs.get("DEFAULT") === "YES",
      });
    }
  }
  if (variants.length === 0) fail("multivariant playlist lists no variant");
  return { kind: "multivariant", variants, renditions };
}

/** Parses a media playlist. */
export function parseMediaPlaylist(text: string): MediaPlaylist {
  const all = lines(text);
  let version: number | undefined;
  let targetDurationS: number | undefined;
  let mediaSequence = 0;
  let discontinuitySequence = 0;
  let partTargetS: number | undefined;
  let canBlockReload = false;
  let canSkipUntilS: number | undefined;
  let partHoldBackS: number | undefined;
  let holdBackS: number | undefined;
  let preloadHint: MediaPlaylist["preloadHint"];
  let skippedSegments = 0;
  let endList = false;
  const renditionReports: { uri: string; lastMsn?: number; lastPart?: number }[] = [];
  const segments: PlaylistSegmentEntry[] = [];
  let parts: PlaylistPartEntry[] = [];
  let pendingDuration: number | undefined;
  let pendingDiscontinuity = false;
  let pendingPdt: number | undefined;
  let mapUri: string | undefined;
  let firstMapUri: string | undefined;
  let discontinuities = 0;
  let sawSegmentTag = false;

  for (let i = 1; i < all.length; i++) {
    const line = all[i]!;
    if (line === "") continue;
    if (!line.startsWith("#")) {
      if (pendingDuration === undefined) fail(`URI "${line.slice(0, 80)}" is not preceded by #EXTINF`);
      if (pendingDiscontinuity) discontinuities++;
      segments.push({
        msn: mediaSequence + skippedSegments + segments.length,
        uri: line,
        durationS: pendingDuration,
        discontinuity: pendingDiscontinuity,
        discontinuitySequence: discontinuitySequence + discontinuities,
        programDateTimeMs: pendingPdt,
        mapUri,
        parts,
      });
      parts = [];
      pendingDuration = undefined;
      pendingDiscontinuity = false;
      pendingPdt = undefined;
      continue;
    }
    if (!line.startsWith("#EXT")) continue; // a comment
    const name = tagName(line);
    const value = tagValue(line);
    switch (name) {
      case "#EXT-X-VERSION":
        version = integer(value, "EXT-X-VERSION");
        break;
      case "#EXT-X-TARGETDURATION":
        targetDurationS = integer(value, "EXT-X-TARGETDURATION");
        break;
      case "#EXT-X-MEDIA-SEQUENCE":
        if (sawSegmentTag) fail("EXT-X-MEDIA-SEQUENCE appears after the first segment");
        mediaSequence = integer(value, "EXT-X-MEDIA-SEQUENCE");
        break;
      case "#EXT-X-DISCONTINUITY-SEQUENCE":
        discontinuitySequence = integer(value, "EXT-X-DISCONTINUITY-SEQUENCE");
        break;
      case "#EXT-X-PART-INF":
        partTargetS = number(parseAttributeList(value).get("PART-TARGET"), "PART-TARGET");
        break;
      case "#EXT-X-SERVER-CONTROL": {
        const attrs = parseAttributeList(value);
        canBlockReload = attrs.get("CAN-BLOCK-RELOAD") === "YES";
        if (attrs.has("CAN-SKIP-UNTIL"))
          canSkipUntilS = number(attrs.get("CAN-SKIP-UNTIL"), "CAN-SKIP-UNTIL");
        if (attrs.has("PART-HOLD-BACK"))
          partHoldBackS = number(attrs.get("PART-HOLD-BACK"), "PART-HOLD-BACK");
        if (attrs.has("HOLD-BACK")) holdBackS = number(attrs.get("HOLD-BACK"), "HOLD-BACK");
        break;
      }
      case "#EXT-X-MAP": {
        const uri = parseAttributeList(value).get("URI");
        if (!uri) fail("EXT-X-MAP has no URI");
        mapUri = uri;
        firstMapUri ??= uri;
        break;
      }
      case "#EXTINF": {
        sawSegmentTag = true;
        const comma = value.indexOf(",");
        pendingDuration = number(comma < 0 ? value : value.slice(0, comma), "EXTINF duration");
        if (pendingDuration < 0) fail(`EXTINF duration ${pendingDuration} is negative`);
        break;
      }
      case "#EXT-X-DISCONTINUITY":
        sawSegmentTag = true;
        pendingDiscontinuity = true;
        break;
      case "#EXT-X-PROGRAM-DATE-TIME": {
        const ms = Date.parse(value);
        if (!Number.isFinite(ms)) fail(`EXT-X-PROGRAM-DATE-TIME "${value}" is not a date`);
        pendingPdt = ms;
        break;
      }
      case "#EXT-X-PART": {
        sawSegmentTag = true;
        const attrs = parseAttributeList(value);
        const uri = attrs.get("URI");
        if (!uri) fail("EXT-X-PART has no URI");
        parts.push({
          uri,
          durationS: number(attrs.get("DURATION"), "EXT-X-PART DURATION"),
          independent: attrs.get("INDEPENDENT") === "YES",
          gap: attrs.get("GAP") === "YES",
        });
        break;
      }
      case "#EXT-X-PRELOAD-HINT": {
        const attrs = parseAttributeList(value);
        const uri = attrs.get("URI");
        const type = attrs.get("TYPE");
        if (!uri || !type) fail("EXT-X-PRELOAD-HINT needs TYPE and URI");
        preloadHint = { type, uri };
        break;
      }
      case "#EXT-X-SKIP":
        if (segments.length > 0) fail("EXT-X-SKIP appears after a segment");
        skippedSegments = integer(parseAttributeList(value).get("SKIPPED-SEGMENTS"), "SKIPPED-SEGMENTS");
        break;
      case "#EXT-X-RENDITION-REPORT": {
        const attrs = parseAttributeList(value);
        const uri = attrs.get("URI");
        if (!uri) fail("EXT-X-RENDITION-REPORT has no URI");
        renditionReports.push({
          uri,
          ...(attrs.has("LAST-MSN") ? { lastMsn: integer(attrs.get("LAST-MSN"), "LAST-MSN") } : {}),
          ...(attrs.has("LAST-PART") ? { lastPart: integer(attrs.get("LAST-PART"), "LAST-PART") } : {}),
        });
        break;
      }
      case "#EXT-X-ENDLIST":
        endList = true;
        break;
      case "#EXT-X-STREAM-INF":
        fail("this is a multivariant playlist, not a media playlist");
    }
  }
  if (targetDurationS === undefined) fail("media playlist has no EXT-X-TARGETDURATION");
  if (pendingDuration !== undefined) fail("the last #EXTINF has no URI");
  return {
    kind: "media",
    version,
    targetDurationS,
    mediaSequence,
    discontinuitySequence,
    segments,
    trailingParts: parts,
    nextMsn: mediaSequence + skippedSegments + segments.length,
    partTargetS,
    serverControl: { canBlockReload, canSkipUntilS, partHoldBackS, holdBackS },
    preloadHint,
    skippedSegments,
    renditionReports,
    endList,
    mapUri: firstMapUri,
  };
}
