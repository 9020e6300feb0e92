/**
 * Which renditions of a hang catalog the HLS/DASH projections serve: the first CMAF video and
 * the first CMAF audio rendition (other containers carry no init segment and cannot be served
 * as fMP4). Their init segments are decoded and parsed here, so a rendition is only selected when
 * its bytes are usable.
 */

import {
  type HangAudioConfig,
  type HangCatalog,
  type HangVideoConfig,
  parseHangCatalog,
} from "../catalog.ts";
import { type InitSegmentInfo, parseInitSegment } from "../cmaf/init-segment.ts";

/** A selected rendition: its track name, init segment bytes and what they say. */
export interface CmafRendition {
  readonly trackName: string;
  readonly init: Uint8Array;
  readonly info: InitSegmentInfo;
}

/** The renditions to serve, or undefined when the document is not a usable catalog. */
export interface RenditionSelection {
  readonly video?: CmafRendition;
  readonly audio?: CmafRendition;
}

/** Selects the first usable CMAF video and audio renditions of a catalog document. */
export function selectCmafRenditions(document: unknown): RenditionSelection | undefined {
  let catalog: HangCatalog;
  try {
    catalog = parseHangCatalog(document);
  } catch {
    return undefined;
  }
  const video = pick(catalog.video?.renditions, "video");
  const audio = pick(catalog.audio?.renditions, "audio");
  if (!video && !audio) return undefined;
  return { ...(video ? { video } : {}), ...(audio ? { audio } : {}) };
}

function pick(
  renditions: Readonly<Record<string, HangVideoConfig | HangAudioConfig>> | undefined,
  kind: "video" | "audio",
): CmafRendition | undefined {
  if (!renditions) return undefined;
  for (const [trackName, config] of Object.entries(renditions)) {
    const container = config.container;
    // A rendition in another broadcast (`broadcast: "../x"`) is not ours to follow.
    if (container.kind !== "cmaf" || config.broadcast !== undefined) continue;
    let init: Uint8Array;
    let info: InitSegmentInfo;
    try {
      init = Uint8Array.from(Buffer.from(container.init, "base64"));
      info = parseInitSegment(init);
    } catch {
      continue;
    }
    if (info.kind !== kind) continue;
    return { trackName, init, info };
  }
  return undefined;
}
