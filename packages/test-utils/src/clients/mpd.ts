/**
 * MPEG-DASH MPD reading for the test client: a small bounded XML element reader (elements and
 * attributes; text, comments, processing instructions and CDATA skipped) and the parts of the
 * MPD a live client needs: type, update period, Periods, AdaptationSets, Representations and
 * their `SegmentTemplate` (inherited from the AdaptationSet when the Representation has none),
 * expanded into numbered segments from the `SegmentTimeline` or from `duration`.
 */
import { TestUtilsError } from "../errors.ts";

/** Largest MPD accepted. */
export const MAX_MPD_BYTES: number = 4 * 1024 * 1024;
const MAX_ELEMENTS = 100_000;
const MAX_DEPTH = 32;
/** Segments one Representation may expand to (an `r` of a billion would otherwise hang the client). */
const MAX_SEGMENTS_PER_REPRESENTATION = 100_000;

/** An XML element: name without prefix, attributes, children. */
export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
}

function fail(message: string): never {
  throw new TestUtilsError("TEST_UTILS_MPD_INVALID", message);
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10));
    return ENTITIES[entity] ?? whole;
  });
}

/** Reads the element tree of an XML document (bounded; throws `TEST_UTILS_MPD_INVALID`). */
export function readXml(text: string): XmlElement {
  if (text.length > MAX_MPD_BYTES) fail(`document is larger than ${MAX_MPD_BYTES} bytes`);
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let count = 0;
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    if (lt < 0) break;
    if (text.startsWith("<!--", lt)) {
      const end = text.indexOf("-->", lt + 4);
      if (end < 0) fail("unterminated comment");
      i = end + 3;
      continue;
    }
    if (text.startsWith("<![CDATA[", lt)) {
      const end = text.indexOf("]]>", lt + 9);
      if (end < 0) fail("unterminated CDATA section");
      i = end + 3;
      continue;
    }
    if (text.startsWith("<?", lt) || text.startsWith("<!", lt)) {
      const end = text.indexOf(">", lt + 2);
      if (end < 0) fail("unterminated declaration");
      i = end + 1;
      continue;
    }
    const gt = findTagEnd(text, lt + 1);
    const inner = text.slice(lt + 1, gt);
    i = gt + 1;
    if (inner.startsWith("/")) {
      const name = localName(inner.slice(1).trim());
      const open = stack.pop();
      if (!open || open.name !== name)
        fail(`closing tag </${name}> does not match <${open?.name ?? "nothing"}>`);
      continue;
    }
    const selfClosing = inner.endsWith("/");
    const body = selfClosing ? inner.slice(0, -1) : inner;
    const nameMatch = /^[^\s/>]+/.exec(body);
    if (!nameMatch) fail(`malformed tag <${body.slice(0, 40)}>`);
    const element: XmlElement = {
      name: localName(nameMatch[0]),
      attributes: readAttributes(body.slice(nameMatch[0].length)),
      children: [],
    };
    if (++count > MAX_ELEMENTS) fail(`document has more than ${MAX_ELEMENTS} elements`);
    const parent = stack.at(-1);
    if (parent) parent.children.push(element);
    else if (root) fail("document has more than one root element");
    else root = element;
    if (!selfClosing) {
      stack.push(element);
      if (stack.length > MAX_DEPTH) fail(`elements nest deeper than ${MAX_DEPTH}`);
    }
  }
  if (stack.length > 0) fail(`element <${stack.at(-1)!.name}> is not closed`);
  if (!root) fail("document has no root element");
  return root;
}

function findTagEnd(text: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === ">") {
      return i;
    }
  }
  return fail("unterminated tag");
}

function localName(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(colon + 1);
}

function readAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const pattern = /([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
  let consumed = 0;
  for (const match of text.matchAll(pattern)) {
    if (text.slice(consumed, match.index).trim() !== "") fail(`malformed attributes "${text.slice(0, 60)}"`);
    out.set(localName(match[1]!), decodeEntities(match[3] ?? match[4] ?? ""));
    consumed = match.index + match[0].length;
  }
  if (text.slice(consumed).trim() !== "") fail(`malformed attributes "${text.slice(0, 60)}"`);
  return out;
}

/** Parses an ISO 8601 duration (`PT1.5S`, `P1DT2H`) into seconds. */
export function parseIsoDuration(value: string): number {
  const match =
    /^(-)?P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(
      value.trim(),
    );
  if (!match || value.trim() === "P" || value.trim().endsWith("T"))
    fail(`"${value}" is not an ISO 8601 duration`);
  const [, sign, d, h, m, s] = match;
  const seconds = Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(s ?? 0);
  return sign ? -seconds : seconds;
}

/** One addressable segment of a Representation. */
export interface MpdSegment {
  readonly number: number;
  /** Start in the Representation's timescale (from the timeline, or number × duration). */
  readonly time: number;
  readonly duration: number;
  /** Duration in seconds. */
  readonly durationS: number;
  /** The media URI with `$Number$` / `$Time$` / `$RepresentationID$` / `$Bandwidth$` filled in. */
  readonly uri: string;
}

/** A Representation with its segments expanded. */
export interface MpdRepresentation {
  readonly id: string;
  readonly bandwidth: number | undefined;
  readonly codecs: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly initialization: string | undefined;
  readonly timescale: number;
  readonly segments: readonly MpdSegment[];
}

/** An AdaptationSet. */
export interface MpdAdaptationSet {
  readonly id: string | undefined;
  /** `video`, `audio`, ... (from contentType, else from mimeType). */
  readonly contentType: string | undefined;
  readonly mimeType: string | undefined;
  readonly representations: readonly MpdRepresentation[];
}

/** A Period. */
export interface MpdPeriod {
  readonly id: string | undefined;
  readonly startS: number | undefined;
  readonly adaptationSets: readonly MpdAdaptationSet[];
}

/** The parts of an MPD a live test client needs. */
export interface Mpd {
  readonly type: "static" | "dynamic";
  readonly minimumUpdatePeriodS: number | undefined;
  readonly timeShiftBufferDepthS: number | undefined;
  readonly suggestedPresentationDelayS: number | undefined;
  readonly availabilityStartTimeMs: number | undefined;
  readonly mediaPresentationDurationS: number | undefined;
  readonly periods: readonly MpdPeriod[];
}

function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

function optionalInt(element: XmlElement, name: string): number | undefined {
  const value = element.attributes.get(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    fail(`${element.name}@${name} "${value}" is not a non-negative integer`);
  return n;
}

function optionalDuration(element: XmlElement, name: string): number | undefined {
  const value = element.attributes.get(name);
  return value === undefined ? undefined : parseIsoDuration(value);
}

/** Fills a SegmentTemplate identifier pattern (`$Number%05d$` style widths included). */
export function fillTemplate(
  template: string,
  values: { number?: number; time?: number; representationId: string; bandwidth?: number },
): string {
  return template.replace(
    /\$(Number|Time|RepresentationID|Bandwidth|)(%0(\d+)d)?\$/g,
    (_, id: string, _f, width) => {
      if (id === "") return "$";
      const value =
        id === "Number"
          ? values.number
          : id === "Time"
            ? values.time
            : id === "Bandwidth"
              ? values.bandwidth
              : values.representationId;
      if (value === undefined) fail(`template "${template}" uses $${id}$ but it has no value`);
      const text = String(value);
      return width === undefined ? text : text.padStart(Number(width), "0");
    },
  );
}

function expandSegments(
  template: XmlElement,
  representationId: string,
  bandwidth: number | undefined,
): MpdSegment[] {
  const media = template.attributes.get("media");
  if (media === undefined) return [];
  const timescale = optionalInt(template, "timescale") ?? 1;
  if (timescale === 0) fail("SegmentTemplate@timescale is 0");
  const startNumber = optionalInt(template, "startNumber") ?? 1;
  const out: MpdSegment[] = [];
  const timeline = child(template, "SegmentTimeline");
  const push = (time: number, duration: number) => {
    if (out.length >= MAX_SEGMENTS_PER_REPRESENTATION) {
      fail(`a Representation expands to more than ${MAX_SEGMENTS_PER_REPRESENTATION} segments`);
    }
    const number = startNumber + out.length;
    out.push({
      number,
      time,
      duration,
      durationS: duration / timescale,
      uri: fillTemplate(media, {
        number,
        time,
        representationId,
        ...(bandwidth === undefined ? {} : { bandwidth }),
      }),
    });
  };
  if (timeline) {
    let time = 0;
    for (const s of timeline.children.filter((c) => c.name === "S")) {
      const t = optionalInt(s, "t");
      const d = optionalInt(s, "d");
      if (d === undefined) fail("SegmentTimeline S has no d");
      const r = Number(s.attributes.get("r") ?? 0);
      if (!Number.isInteger(r) || r < 0)
        fail(`SegmentTimeline S@r "${s.attributes.get("r")}" is not supported`);
      if (t !== undefined) time = t;
      for (let k = 0; k <= r; k++) {
        push(time, d);
        time += d;
      }
    }
  } else {
    const duration = optionalInt(template, "duration");
    if (duration === undefined) fail("SegmentTemplate has neither a SegmentTimeline nor a duration");
    // Without a timeline the number of available segments depends on the clock; list one.
    push(0, duration);
  }
  return out;
}

/** Parses an MPD. */
export function parseMpd(text: string): Mpd {
  const root = readXml(text);
  if (root.name !== "MPD") fail(`root element is <${root.name}>, not <MPD>`);
  const type = root.attributes.get("type") ?? "static";
  if (type !== "static" && type !== "dynamic") fail(`MPD@type "${type}" is neither static nor dynamic`);
  const ast = root.attributes.get("availabilityStartTime");
  const astMs = ast === undefined ? undefined : Date.parse(ast);
  if (astMs !== undefined && !Number.isFinite(astMs)) fail(`availabilityStartTime "${ast}" is not a date`);
  const periods: MpdPeriod[] = root.children
    .filter((c) => c.name === "Period")
    .map((period) => {
      const periodTemplate = child(period, "SegmentTemplate");
      return {
        id: period.attributes.get("id"),
        startS: optionalDuration(period, "start"),
        adaptationSets: period.children
          .filter((c) => c.name === "AdaptationSet")
          .map((set): MpdAdaptationSet => {
            const setTemplate = child(set, "SegmentTemplate") ?? periodTemplate;
            const mimeType = set.attributes.get("mimeType");
            return {
              id: set.attributes.get("id"),
              contentType: set.attributes.get("contentType") ?? mimeType?.split("/")[0],
              mimeType,
              representations: set.children
                .filter((c) => c.name === "Representation")
                .map((rep): MpdRepresentation => {
                  const id = rep.attributes.get("id");
                  if (id === undefined) fail("Representation has no id");
                  const bandwidth = optionalInt(rep, "bandwidth");
                  const template = child(rep, "SegmentTemplate") ?? setTemplate;
                  const initialization = template?.attributes.get("initialization");
                  return {
                    id,
                    bandwidth,
                    codecs: rep.attributes.get("codecs") ?? set.attributes.get("codecs"),
                    width: optionalInt(rep, "width") ?? optionalInt(set, "width"),
                    height: optionalInt(rep, "height") ?? optionalInt(set, "height"),
                    initialization:
                      initialization === undefined
                        ? undefined
                        : fillTemplate(initialization, {
                            representationId: id,
                            ...(bandwidth === undefined ? {} : { bandwidth }),
                          }),
                    timescale: template ? (optionalInt(template, "timescale") ?? 1) : 1,
                    segments: template ? expandSegments(template, id, bandwidth) : [],
                  };
                }),
            };
          }),
      };
    });
  if (periods.length === 0) fail("MPD has no Period");
  return {
    type,
    minimumUpdatePeriodS: optionalDuration(root, "minimumUpdatePeriod"),
    timeShiftBufferDepthS: optionalDuration(root, "timeShiftBufferDepth"),
    suggestedPresentationDelayS: optionalDuration(root, "suggestedPresentationDelay"),
    availabilityStartTimeMs: astMs,
    mediaPresentationDurationS: optionalDuration(root, "mediaPresentationDuration"),
    periods,
  };
}
