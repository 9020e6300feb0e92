/**
 * Catalogs that describe a broadcast's tracks.
 *
 * - The hang catalog (`catalog.json`, @moq/hang 0.3.x): WebCodecs decoder configs per rendition,
 *   here always with the CMAF container, whose init segment travels base64 inside the catalog.
 *   {@link buildHangCatalog} writes it; {@link parseHangCatalog} validates one from any publisher
 *   (the HLS/DASH projections read it) with the same rules as hang's `RootSchema`, bounded.
 * - The reference server's `.catalog` JSON (moq-js style), written by {@link buildMoqJsCatalog}.
 */

import type { ResolvedAudioTrack, ResolvedVideoTrack } from "./cmaf/init-segment.ts";
import { PackagerError } from "./errors.ts";

/** How a rendition's frames are laid out. Only `cmaf` is produced or projected by this package. */
export type HangContainer =
  | { readonly kind: "cmaf" /** Standard base64 of the init segment (ftyp + moov). */; readonly init: string }
  | { readonly kind: "legacy" }
  | { readonly kind: "loc" }
  /** A container kind this version does not know; kept verbatim, never decoded. */
  | { readonly kind: "unknown"; readonly raw: Readonly<Record<string, unknown>> };

/** Timeline track reference (hang `TimelineSchema`). */
export interface HangTimeline {
  /** The companion track mapping each group to its start timestamp. */
  readonly track: string;
  /** Units per second of the records (hang's default is 1000). */
  readonly timescale?: number;
  /** Wall-clock time of pts 0, in `timescale` units since 2020-01-01T00:00:00Z. */
  readonly wall?: number;
}

/** A video rendition (mirrors WebCodecs VideoDecoderConfig). */
export interface HangVideoConfig {
  readonly codec: string;
  readonly container: HangContainer;
  /** Hex of the avcC / hvcC / av1C record. */
  readonly description?: string;
  readonly codedWidth?: number;
  readonly codedHeight?: number;
  readonly displayAspectWidth?: number;
  readonly displayAspectHeight?: number;
  readonly framerate?: number;
  readonly bitrate?: number;
  readonly optimizeForLatency?: boolean;
  /** Maximum reorder delay in ms (B-frames). */
  readonly jitter?: number;
  /** The track lives in another broadcast at this relative path. */
  readonly broadcast?: string;
  readonly timeline?: HangTimeline;
}

/** An audio rendition (mirrors WebCodecs AudioDecoderConfig). */
export interface HangAudioConfig {
  readonly codec: string;
  readonly container: HangContainer;
  /** Hex of the AudioSpecificConfig. */
  readonly description?: string;
  readonly sampleRate: number;
  readonly numberOfChannels: number;
  readonly bitrate?: number;
  readonly jitter?: number;
  readonly broadcast?: string;
  readonly timeline?: HangTimeline;
}

/** A hang catalog. Unknown top-level sections pass through untouched, as in hang. */
export interface HangCatalog {
  readonly video?: {
    /** Track name → config. */
    readonly renditions: Readonly<Record<string, HangVideoConfig>>;
    readonly display?: { readonly width: number; readonly height: number };
    readonly rotation?: number;
    readonly flip?: boolean;
  };
  readonly audio?: {
    readonly renditions: Readonly<Record<string, HangAudioConfig>>;
  };
  readonly [section: string]: unknown;
}

/** Largest catalog text {@link parseHangCatalog} accepts (an init segment is a few hundred bytes). */
export const MAX_CATALOG_BYTES: number = 1024 * 1024;
/** Renditions per section {@link parseHangCatalog} accepts. */
export const MAX_CATALOG_RENDITIONS = 64;

function fail(path: string, problem: string): never {
  throw new PackagerError("PACKAGER_INVALID_CATALOG", `catalog ${path} ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_U53 = Number.MAX_SAFE_INTEGER;

function optionalU53(config: Record<string, unknown>, key: string, path: string): number | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_U53) {
    fail(`${path}.${key}`, "must be a non-negative integer");
  }
  return value;
}

function optionalNumber(config: Record<string, unknown>, key: string, path: string): number | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) fail(`${path}.${key}`, "must be a finite number");
  return value;
}

function optionalBoolean(config: Record<string, unknown>, key: string, path: string): boolean | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") fail(`${path}.${key}`, "must be a boolean");
  return value;
}

function optionalString(config: Record<string, unknown>, key: string, path: string): string | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") fail(`${path}.${key}`, "must be a string");
  return value;
}

function parseContainer(value: unknown, path: string): HangContainer {
  if (value === undefined) return { kind: "legacy" };
  if (!isRecord(value) || typeof value["kind"] !== "string")
    fail(path, "must be an object with a string kind");
  switch (value["kind"]) {
    case "legacy":
      return { kind: "legacy" };
    case "loc":
      return { kind: "loc" };
    case "cmaf": {
      const init = value["init"];
      if (typeof init !== "string" || init.length === 0 || init.length % 4 !== 0 || !BASE64.test(init)) {
        fail(`${path}.init`, "must be a non-empty standard base64 string");
      }
      return { kind: "cmaf", init };
    }
    default:
      return { kind: "unknown", raw: { ...value } };
  }
}

function parseTimeline(value: unknown, path: string): HangTimeline | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value) || typeof value["track"] !== "string")
    fail(path, "must be an object with a string track");
  const timescale = optionalU53(value, "timescale", path);
  const wall = optionalU53(value, "wall", path);
  return {
    track: value["track"],
    ...(timescale === undefined ? {} : { timescale }),
    ...(wall === undefined ? {} : { wall }),
  };
}

/** Fields common to audio and video renditions. */
function parseCommon(config: Record<string, unknown>, path: string) {
  const codec = config["codec"];
  if (typeof codec !== "string") fail(`${path}.codec`, "must be a string");
  const description = optionalString(config, "description", path);
  if (description !== undefined && !HEX.test(description)) fail(`${path}.description`, "must be hex");
  const broadcast = optionalString(config, "broadcast", path);
  const timeline = parseTimeline(config["timeline"], `${path}.timeline`);
  const bitrate = optionalU53(config, "bitrate", path);
  const jitter = optionalU53(config, "jitter", path);
  return {
    codec,
    container: parseContainer(config["container"], `${path}.container`),
    ...(description === undefined ? {} : { description }),
    ...(bitrate === undefined ? {} : { bitrate }),
    ...(jitter === undefined ? {} : { jitter }),
    ...(broadcast === undefined ? {} : { broadcast }),
    ...(timeline === undefined ? {} : { timeline }),
  };
}

function parseVideoConfig(value: unknown, path: string): HangVideoConfig {
  if (!isRecord(value)) fail(path, "must be an object");
  const out: Record<string, unknown> = parseCommon(value, path);
  for (const key of ["codedWidth", "codedHeight", "displayAspectWidth", "displayAspectHeight"]) {
    const n = optionalU53(value, key, path);
    if (n !== undefined) out[key] = n;
  }
  const framerate = optionalNumber(value, "framerate", path);
  if (framerate !== undefined) out["framerate"] = framerate;
  const optimizeForLatency = optionalBoolean(value, "optimizeForLatency", path);
  if (optimizeForLatency !== undefined) out["optimizeForLatency"] = optimizeForLatency;
  return out as unknown as HangVideoConfig;
}

function parseAudioConfig(value: unknown, path: string): HangAudioConfig {
  if (!isRecord(value)) fail(path, "must be an object");
  const common = parseCommon(value, path);
  const sampleRate = optionalU53(value, "sampleRate", path);
  const numberOfChannels = optionalU53(value, "numberOfChannels", path);
  if (sampleRate === undefined) fail(`${path}.sampleRate`, "is required");
  if (numberOfChannels === undefined) fail(`${path}.numberOfChannels`, "is required");
  return { ...common, sampleRate, numberOfChannels };
}

/** Reads a renditions map, or hang's legacy array / single-object forms. */
function parseRenditions<T>(
  section: unknown,
  path: string,
  parseConfig: (value: unknown, path: string) => T,
): { renditions: Record<string, T>; rest: Record<string, unknown> } {
  const renditions: Record<string, T> = Object.create(null);
  const add = (name: unknown, config: unknown, at: string) => {
    if (typeof name !== "string") fail(`${at}.track.name`, "must be a string");
    if (Object.keys(renditions).length >= MAX_CATALOG_RENDITIONS) {
      fail(path, `lists more than ${MAX_CATALOG_RENDITIONS} renditions`);
    }
    renditions[name] = parseConfig(config, `${path}.renditions.${name}`);
  };
  const legacyEntry = (entry: unknown, at: string) => {
    if (!isRecord(entry) || !isRecord(entry["track"])) fail(at, "must be {track: {name}, config}");
    add(entry["track"]["name"], entry["config"], at);
  };
  if (Array.isArray(section)) {
    if (section.length > MAX_CATALOG_RENDITIONS)
      fail(path, `lists more than ${MAX_CATALOG_RENDITIONS} renditions`);
    for (const [i, entry] of section.entries()) legacyEntry(entry, `${path}[${i}]`);
    return { renditions: { ...renditions }, rest: {} };
  }
  if (!isRecord(section)) fail(path, "must be an object");
  if (!("renditions" in section) && "track" in section) {
    legacyEntry(section, path);
    return { renditions: { ...renditions }, rest: {} };
  }
  const map = section["renditions"];
  if (!isRecord(map)) fail(`${path}.renditions`, "must be an object of track name to config");
  for (const name of Object.keys(map)) add(name, map[name], path);
  const { renditions: _ignored, ...rest } = section;
  return { renditions: { ...renditions }, rest };
}

function parseText(json: unknown): unknown {
  let text: string;
  if (json instanceof Uint8Array) {
    if (json.byteLength > MAX_CATALOG_BYTES)
      fail("text", `is ${json.byteLength} bytes, above ${MAX_CATALOG_BYTES}`);
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(json);
    } catch {
      fail("text", "is not valid UTF-8");
    }
  } else if (typeof json === "string") {
    text = json;
    if (text.length > MAX_CATALOG_BYTES)
      fail("text", `is ${text.length} characters, above ${MAX_CATALOG_BYTES}`);
  } else {
    return json;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    fail("text", `is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/**
 * Validates a hang catalog: a parsed JSON value, or its UTF-8 bytes / text (a `catalog.json`
 * frame). Applies hang 0.3's rules (codec required, hex description, integer sizes, sampleRate and
 * numberOfChannels required for audio, a `cmaf` container needs a base64 init) and converts the
 * legacy array forms. Throws PACKAGER_INVALID_CATALOG naming the offending field.
 */
export function parseHangCatalog(json: unknown): HangCatalog {
  const root = parseText(json);
  if (!isRecord(root)) fail("root", "must be a JSON object");
  const out: Record<string, unknown> = { ...root };
  if (root["video"] !== undefined) {
    const { renditions, rest } = parseRenditions(root["video"], "video", parseVideoConfig);
    const video: Record<string, unknown> = { renditions };
    if (rest["display"] !== undefined) {
      const display = rest["display"];
      if (!isRecord(display)) fail("video.display", "must be an object");
      const width = optionalU53(display, "width", "video.display");
      const height = optionalU53(display, "height", "video.display");
      if (width === undefined || height === undefined) fail("video.display", "needs width and height");
      video["display"] = { width, height };
    }
    const rotation = optionalNumber(rest, "rotation", "video");
    if (rotation !== undefined) video["rotation"] = rotation;
    const flip = optionalBoolean(rest, "flip", "video");
    if (flip !== undefined) video["flip"] = flip;
    out["video"] = video;
  } else {
    delete out["video"];
  }
  if (root["audio"] !== undefined) {
    out["audio"] = { renditions: parseRenditions(root["audio"], "audio", parseAudioConfig).renditions };
  } else {
    delete out["audio"];
  }
  return out as HangCatalog;
}

/** A CMAF rendition picked from a catalog, with its init segment decoded. */
export interface CmafRendition<T extends HangVideoConfig | HangAudioConfig> {
  /** Track name. */
  readonly name: string;
  readonly config: T;
  /** The init segment bytes (ftyp + moov). */
  readonly init: Uint8Array;
}

/**
 * The first CMAF rendition of `kind` that lives in this broadcast (no `broadcast` redirect), with
 * its init decoded; undefined when there is none.
 */
export function selectCmafRendition(
  catalog: HangCatalog,
  kind: "video",
): CmafRendition<HangVideoConfig> | undefined;
export function selectCmafRendition(
  catalog: HangCatalog,
  kind: "audio",
): CmafRendition<HangAudioConfig> | undefined;
export function selectCmafRendition(
  catalog: HangCatalog,
  kind: "video" | "audio",
): CmafRendition<HangVideoConfig | HangAudioConfig> | undefined {
  const renditions: Readonly<Record<string, HangVideoConfig | HangAudioConfig>> | undefined =
    catalog[kind]?.renditions;
  if (!renditions) return undefined;
  for (const name of Object.keys(renditions)) {
    const config = renditions[name]!;
    if (config.container.kind !== "cmaf" || config.broadcast !== undefined) continue;
    return { name, config, init: new Uint8Array(Buffer.from(config.container.init, "base64")) };
  }
  return undefined;
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** A video rendition to describe in {@link buildHangCatalog}. */
export interface CatalogVideoInput {
  /** Track name (default `video`). */
  readonly name?: string;
  readonly track: ResolvedVideoTrack;
  /** The init segment written for the track. */
  readonly init: Uint8Array;
  readonly framerate?: number;
  /** Bits per second. */
  readonly bitrate?: number;
  /** Maximum composition delay in ms (B-frame reordering). */
  readonly jitter?: number;
}

/** An audio rendition to describe in {@link buildHangCatalog}. */
export interface CatalogAudioInput {
  /** Track name (default `audio`). */
  readonly name?: string;
  readonly track: ResolvedAudioTrack;
  readonly init: Uint8Array;
  readonly bitrate?: number;
}

function definedOnly<T extends Record<string, unknown>>(value: T): T {
  for (const key of Object.keys(value)) if (value[key] === undefined) delete value[key];
  return value;
}

/** Builds a hang catalog for CMAF renditions (tracks `video` and `audio` by default). */
export function buildHangCatalog(input: {
  video?: CatalogVideoInput;
  audio?: CatalogAudioInput;
}): HangCatalog {
  const catalog: Record<string, unknown> = {};
  if (input.video) {
    const { track, init } = input.video;
    const config: HangVideoConfig = definedOnly({
      codec: track.codecString,
      container: { kind: "cmaf" as const, init: toBase64(init) },
      description: toHex(track.description),
      codedWidth: track.width || undefined,
      codedHeight: track.height || undefined,
      framerate: input.video.framerate,
      bitrate: input.video.bitrate === undefined ? undefined : Math.round(input.video.bitrate),
      optimizeForLatency: true,
      jitter: input.video.jitter === undefined ? undefined : Math.ceil(input.video.jitter),
    });
    catalog["video"] = { renditions: { [input.video.name ?? "video"]: config } };
  }
  if (input.audio) {
    const { track, init } = input.audio;
    const config: HangAudioConfig = definedOnly({
      codec: track.codecString,
      container: { kind: "cmaf" as const, init: toBase64(init) },
      description: toHex(track.description),
      sampleRate: track.sampleRate,
      numberOfChannels: track.channels,
      bitrate: input.audio.bitrate === undefined ? undefined : Math.round(input.audio.bitrate),
    });
    catalog["audio"] = { renditions: { [input.audio.name ?? "audio"]: config } };
  }
  return catalog as HangCatalog;
}

/** The reference server's `.catalog` JSON. */
export interface MoqJsCatalog {
  readonly version: 1;
  readonly tracks: readonly Readonly<Record<string, string | number>>[];
}

/**
 * The reference layout's `.catalog` (moq-js style): version 1 and a track list, video (`0.mp4`)
 * before audio (`1.mp4`), each listed once its config is known. H.264 codecs use uppercase hex
 * (`avc1.64001F`) as the reference does. Serialise with plain `JSON.stringify` (compact).
 */
export function buildMoqJsCatalog(input: {
  video?: ResolvedVideoTrack;
  audio?: ResolvedAudioTrack;
}): MoqJsCatalog {
  const tracks: Record<string, string | number>[] = [];
  if (input.video) {
    const codec =
      input.video.codec === "h264"
        ? `avc1.${input.video.codecString.slice(5).toUpperCase()}`
        : input.video.codecString;
    tracks.push({ name: "0.mp4", packaging: "cmaf", renderGroup: 0, codec, mimeType: "video/mp4" });
  }
  if (input.audio) {
    tracks.push({
      name: "1.mp4",
      packaging: "cmaf",
      renderGroup: 1,
      codec: input.audio.codecString,
      mimeType: "audio/mp4",
      samplerate: input.audio.sampleRate,
      channelCount: input.audio.channels,
    });
  }
  return { version: 1, tracks };
}
