/**
 * Minimal HTTP viewers that behave like players on the wire, for tests that need many of them or
 * need to see every response: an LL-HLS follower (blocking playlist reloads on the preload hint,
 * then the hinted part, as hls.js in low-latency mode does) and a DASH follower (MPD refresh every
 * `minimumUpdatePeriod`, then the newest segment of each representation).
 */

/** One fetch failure, with when it happened. */
export interface ViewerError {
  readonly atMs: number;
  readonly message: string;
}

/** Fetches with a deadline; a server that never answers must not hang a test. */
async function fetchWithTimeout(
  url: string,
  timeoutMs: number,
  headers?: Record<string, string>,
): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs), ...(headers ? { headers } : {}) });
}

/** Follows one LL-HLS media playlist until it ends or `stop()` is called. */
export class LlHlsFollower {
  readonly playlistUrl: string;
  /** Playlists received, newest last (at most 50 kept). */
  readonly playlists: Array<{ atMs: number; text: string }> = [];
  readonly errors: ViewerError[] = [];
  /** Unix ms when a playlist with `#EXT-X-ENDLIST` first arrived. */
  endlistAtMs: number | undefined;
  partsFetched = 0;
  bytes = 0;
  readonly done: Promise<void>;
  #stopped = false;
  readonly #query: string;

  /** `query` (e.g. `token=...`) is added to every request. */
  constructor(playlistUrl: string, options: { query?: string } = {}) {
    this.playlistUrl = playlistUrl;
    this.#query = options.query ?? "";
    this.done = this.#run();
  }

  #url(base: string, extra = ""): string {
    const query = [this.#query, extra].filter((part) => part !== "").join("&");
    return query === "" ? base : `${base}?${query}`;
  }

  async #run(): Promise<void> {
    let hint: { msn: number; part: number; uri: string } | undefined;
    while (!this.#stopped) {
      const directive = hint ? `_HLS_msn=${hint.msn}&_HLS_part=${hint.part}` : "";
      let text: string;
      try {
        // A hinted part is requested alongside the blocking reload, as players do.
        const partRequest = hint
          ? this.#fetchPart(new URL(hint.uri, this.playlistUrl).toString())
          : undefined;
        const response = await fetchWithTimeout(this.#url(this.playlistUrl, directive), 15_000);
        text = await response.text();
        if (!response.ok) throw new Error(`playlist ${response.status}: ${text.slice(0, 200)}`);
        await partRequest;
      } catch (error) {
        if (this.#stopped) return;
        this.errors.push({ atMs: Date.now(), message: (error as Error).message });
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      this.playlists.push({ atMs: Date.now(), text });
      if (this.playlists.length > 50) this.playlists.shift();
      if (text.includes("#EXT-X-ENDLIST")) {
        this.endlistAtMs ??= Date.now();
        return;
      }
      const match = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text);
      const parts = match ? /part-(\d+)-(\d+)\.m4s/.exec(match[1]!) : null;
      hint = match && parts ? { msn: Number(parts[1]), part: Number(parts[2]), uri: match[1]! } : undefined;
      if (!hint) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async #fetchPart(url: string): Promise<void> {
    const response = await fetchWithTimeout(this.#url(url.split("?")[0]!), 15_000);
    const body = await response.arrayBuffer();
    if (response.ok) {
      this.partsFetched++;
      this.bytes += body.byteLength;
    }
  }

  /** The newest playlist text. */
  get latest(): string | undefined {
    return this.playlists[this.playlists.length - 1]?.text;
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }
}

/** Follows a live DASH manifest until it turns static or `stop()` is called. */
export class DashFollower {
  readonly manifestUrl: string;
  readonly manifests: Array<{ atMs: number; text: string }> = [];
  readonly errors: ViewerError[] = [];
  /** Unix ms when a `type="static"` MPD first arrived. */
  staticAtMs: number | undefined;
  segmentsFetched = 0;
  bytes = 0;
  readonly done: Promise<void>;
  #stopped = false;
  readonly #fetched = new Set<string>();

  constructor(manifestUrl: string) {
    this.manifestUrl = manifestUrl;
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let text: string;
      try {
        const response = await fetchWithTimeout(this.manifestUrl, 10_000);
        text = await response.text();
        if (!response.ok) throw new Error(`manifest ${response.status}: ${text.slice(0, 200)}`);
      } catch (error) {
        if (this.#stopped) return;
        this.errors.push({ atMs: Date.now(), message: (error as Error).message });
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      this.manifests.push({ atMs: Date.now(), text });
      if (this.manifests.length > 50) this.manifests.shift();
      if (/type="static"/.test(text)) {
        this.staticAtMs ??= Date.now();
        return;
      }
      try {
        for (const url of newestSegments(text, this.manifestUrl)) {
          if (this.#fetched.has(url)) continue;
          this.#fetched.add(url);
          const response = await fetchWithTimeout(url, 10_000);
          const body = await response.arrayBuffer();
          if (response.ok) {
            this.segmentsFetched++;
            this.bytes += body.byteLength;
          }
        }
      } catch (error) {
        if (!this.#stopped) this.errors.push({ atMs: Date.now(), message: (error as Error).message });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  get latest(): string | undefined {
    return this.manifests[this.manifests.length - 1]?.text;
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }
}

/** Undoes the XML escapes an MPD attribute may carry (`&#38;` or `&amp;` in a propagated query). */
function xmlAttribute(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/**
 * The URL of the newest complete segment of each SegmentTemplate in `mpd` (SegmentTimeline with
 * `$Number$`): the template's startNumber plus the number of `S` entries (counting `r`) minus one.
 */
export function newestSegments(mpd: string, manifestUrl: string): string[] {
  const urls: string[] = [];
  for (const template of mpd.matchAll(/<SegmentTemplate\b([^>]*)>([\s\S]*?)<\/SegmentTemplate>/g)) {
    const attributes = template[1]!;
    const media = /media="([^"]+)"/.exec(attributes)?.[1];
    const startNumber = Number(/startNumber="(\d+)"/.exec(attributes)?.[1] ?? "1");
    if (!media) continue;
    let count = 0;
    for (const s of template[2]!.matchAll(/<S\b([^>]*)\/>/g))
      count += 1 + Number(/\br="(\d+)"/.exec(s[1]!)?.[1] ?? "0");
    if (count === 0) continue;
    urls.push(
      new URL(
        xmlAttribute(media).replace("$Number$", String(startNumber + count - 1)),
        manifestUrl,
      ).toString(),
    );
  }
  return urls;
}

/** The initialization URL of every SegmentTemplate in `mpd`. */
export function mediaUris(mpd: string, manifestUrl: string): string[] {
  return [...mpd.matchAll(/<SegmentTemplate\b[^>]*\binitialization="([^"]+)"/g)].map((match) =>
    new URL(xmlAttribute(match[1]!), manifestUrl).toString(),
  );
}
