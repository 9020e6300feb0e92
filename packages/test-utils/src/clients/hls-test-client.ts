/**
 * `HlsTestClient`: follows a live LL-HLS media playlist the way a low-latency player does, with
 * blocking playlist reload (`_HLS_msn` / `_HLS_part`), and records what it sees: segments and
 * parts with their durations, discontinuities, `#EXT-X-ENDLIST`. It fetches new segments (and,
 * on request, parts) and checks that each starts with a `moof` box, and can fetch the init
 * segment (`ftyp`). Records are bounded; every wait has a time limit and a message that says
 * what was seen.
 *
 * ```ts
 * await using hls = await HlsTestClient.open(server.hlsUrl("live/cam0"));
 * const segments = await hls.waitForSegments(3);
 * expect(segments.every((s) => s.firstBox === "moof")).toBe(true);
 * ```
 */
import { TestUtilsError } from "../errors.ts";
import { waitFor } from "../wait-for.ts";
import { expectFirstBox, firstBoxType, type HttpResponse, httpGet } from "./http-get.ts";
import {
  type MediaPlaylist,
  type MultivariantPlaylist,
  type PlaylistPartEntry,
  parseMediaPlaylist,
  parsePlaylist,
} from "./m3u8.ts";

/** Options of {@link HlsTestClient.open}. */
export interface HlsTestClientOptions {
  /** With a multivariant URL: follow the first video variant (default) or the default audio rendition. */
  readonly rendition?: "video" | "audio";
  /** Added as `?token=` to every request. */
  readonly token?: string;
  /** Extra request headers (e.g. `authorization`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Fetch every new segment and check it starts with `moof` (default true). */
  readonly fetchSegments?: boolean;
  /** Fetch every new part and check it starts with `moof` (default false). */
  readonly fetchParts?: boolean;
  /** Use blocking reload when the server offers it (default true); false polls every half target duration. */
  readonly blockingReload?: boolean;
  /** How long `open()` waits for the broadcast to have media (default 10 000 ms). */
  readonly openTimeoutMs?: number;
  /** Per-request limit (default 15 000 ms; a blocking reload may be held for 3 target durations). */
  readonly requestTimeoutMs?: number;
  /** Segment and part records kept (default 1000 each). */
  readonly maxRecords?: number;
  /**
   * Keep following after `#EXT-X-ENDLIST` (default false: stop, as a player does). LVQR makes an
   * ended playlist live again when the broadcast is republished; with this the client sees that
   * (polling every half target duration while the playlist is ended).
   */
  readonly followAfterEndList?: boolean;
}

/** A segment the client has seen. */
export interface HlsSegmentRecord {
  readonly msn: number;
  readonly uri: string;
  /** Absolute URL (with the token, if any). */
  readonly url: string;
  readonly durationS: number;
  readonly discontinuity: boolean;
  readonly discontinuitySequence: number;
  readonly programDateTimeMs: number | undefined;
  /** Parts the playlist listed for it when it completed. */
  readonly partCount: number;
  /** Bytes fetched (when segments are fetched). */
  bytes: number | undefined;
  /** Type of the first box of the fetched bytes ("moof" when all is well). */
  firstBox: string | undefined;
}

/** A part the client has seen. */
export interface HlsPartRecord {
  readonly msn: number;
  readonly index: number;
  readonly uri: string;
  readonly url: string;
  readonly durationS: number;
  readonly independent: boolean;
  bytes: number | undefined;
  firstBox: string | undefined;
}

/** Counters of an {@link HlsTestClient}. */
export interface HlsClientStats {
  playlistRequests: number;
  /** Playlist requests that carried `_HLS_msn`. */
  blockingRequests: number;
  segmentsSeen: number;
  partsSeen: number;
  segmentsFetched: number;
  partsFetched: number;
  bytesFetched: number;
  /** Segments preceded by `#EXT-X-DISCONTINUITY`. */
  discontinuities: number;
  /** Longest `#EXTINF` seen. */
  maxSegmentDurationS: number;
  /** Non-200 playlist answers (held requests that timed out with 503, for example). */
  retries: number;
  /** Times the playlist turned ended (`#EXT-X-ENDLIST` appeared). */
  endLists: number;
}

function withQuery(url: string, params: Readonly<Record<string, string | undefined>>): string {
  const target = new URL(url);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) target.searchParams.delete(key);
    else target.searchParams.set(key, value);
  }
  return target.toString();
}

/** Follows one media playlist until closed or `#EXT-X-ENDLIST`. */
export class HlsTestClient implements AsyncDisposable {
  /** The URL given to `open()`. */
  readonly url: string;
  /** The media playlist being followed. */
  readonly mediaUrl: string;
  /** The multivariant playlist, when `open()` was given one. */
  readonly multivariant: MultivariantPlaylist | undefined;
  /** Segments seen, oldest first (bounded). */
  readonly segments: HlsSegmentRecord[] = [];
  /** Parts seen, oldest first (bounded). */
  readonly parts: HlsPartRecord[] = [];
  readonly stats: HlsClientStats = {
    playlistRequests: 0,
    blockingRequests: 0,
    segmentsSeen: 0,
    partsSeen: 0,
    segmentsFetched: 0,
    partsFetched: 0,
    bytesFetched: 0,
    discontinuities: 0,
    maxSegmentDurationS: 0,
    retries: 0,
    endLists: 0,
  };
  /** Problems met while following (bad bytes, failed fetches), newest last (at most 100). */
  readonly errors: Error[] = [];
  #playlist: MediaPlaylist;
  readonly #options: HlsTestClientOptions;
  readonly #abort = new AbortController();
  #lastPart: [msn: number, index: number] = [-1, -1];
  #lastMsn: number;
  #endList = false;
  #endedPlaylist: MediaPlaylist | undefined;
  readonly #done: Promise<void>;

  private constructor(
    url: string,
    mediaUrl: string,
    multivariant: MultivariantPlaylist | undefined,
    first: MediaPlaylist,
    options: HlsTestClientOptions,
  ) {
    this.url = url;
    this.mediaUrl = mediaUrl;
    this.multivariant = multivariant;
    this.#options = options;
    this.#playlist = first;
    this.#lastMsn = first.mediaSequence - 1;
    this.#done = this.#follow(first);
  }

  /**
   * Opens a multivariant or media playlist URL, waiting (up to `openTimeoutMs`) while the server
   * answers 404/503 because the broadcast has no media yet, then follows the media playlist.
   */
  static async open(url: string, options: HlsTestClientOptions = {}): Promise<HlsTestClient> {
    const openTimeoutMs = options.openTimeoutMs ?? 10_000;
    const requestUrl = (u: string) => withQuery(u, { token: options.token });
    let text = "";
    let lastStatus = 0;
    // 404/503 mean "no media yet" and are waited out; any other status will not change by waiting.
    let refusal: TestUtilsError | undefined;
    await waitFor(
      async () => {
        const response = await httpGet(requestUrl(url), {
          timeoutMs: options.requestTimeoutMs ?? 15_000,
          ...(options.headers ? { headers: options.headers } : {}),
        });
        lastStatus = response.status;
        if (response.status === 200) {
          text = response.text();
          return true;
        }
        if (response.status === 404 || response.status === 503) return false;
        refusal = new TestUtilsError(
          "TEST_UTILS_HTTP",
          `GET ${url} answered ${response.status}: ${response.text().slice(0, 200)}`,
        );
        throw refusal;
      },
      {
        timeoutMs: openTimeoutMs,
        intervalMs: 100,
        failFast: (error) => error === refusal,
        message: `HLS playlist ${url} (last status ${lastStatus || "none"})`,
      },
    );
    const parsed = parsePlaylist(text);
    let multivariant: MultivariantPlaylist | undefined;
    let mediaUrl = url;
    let media: MediaPlaylist;
    if (parsed.kind === "multivariant") {
      multivariant = parsed;
      const uri =
        options.rendition === "audio"
          ? (
              parsed.renditions.find((r) => r.type === "AUDIO" && r.isDefault && r.uri) ??
              parsed.renditions.find((r) => r.type === "AUDIO" && r.uri)
            )?.uri
          : parsed.variants[0]?.uri;
      if (uri === undefined) {
        throw new TestUtilsError(
          "TEST_UTILS_PLAYLIST_INVALID",
          `${url} lists no ${options.rendition ?? "video"} playlist`,
        );
      }
      mediaUrl = new URL(uri, url).toString();
      const response = await httpGet(requestUrl(mediaUrl), {
        timeoutMs: options.requestTimeoutMs ?? 15_000,
        ...(options.headers ? { headers: options.headers } : {}),
      });
      if (response.status !== 200) {
        throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${mediaUrl} answered ${response.status}`);
      }
      media = parseMediaPlaylist(response.text());
    } else {
      media = parsed;
    }
    mediaUrl = withQuery(mediaUrl, { _HLS_msn: undefined, _HLS_part: undefined, _HLS_skip: undefined });
    return new HlsTestClient(url, mediaUrl, multivariant, media, options);
  }

  /** The newest media playlist received. */
  get playlist(): MediaPlaylist {
    return this.#playlist;
  }

  /** True while the newest playlist carries `#EXT-X-ENDLIST`. */
  get endList(): boolean {
    return this.#endList;
  }

  /** Resolves when following stops (ENDLIST or close). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Waits until `count` segments have been seen (and fetched, when fetching), and returns the records. */
  waitForSegments(count: number, options: { timeoutMs?: number } = {}): Promise<HlsSegmentRecord[]> {
    const fetching = this.#options.fetchSegments ?? true;
    return this.#waitFor(
      () => {
        const ready = this.segments.filter((s) => !fetching || s.bytes !== undefined);
        return ready.length >= count ? ready : undefined;
      },
      `${count} HLS segment(s)`,
      options.timeoutMs,
    );
  }

  /** Waits until `count` parts have been seen. */
  waitForParts(count: number, options: { timeoutMs?: number } = {}): Promise<HlsPartRecord[]> {
    return this.#waitFor(
      () => (this.stats.partsSeen >= count ? this.parts : undefined),
      `${count} HLS part(s)`,
      options.timeoutMs,
    );
  }

  /** Waits until a playlist with `#EXT-X-ENDLIST` has been seen, and returns it. */
  waitForEndList(options: { timeoutMs?: number } = {}): Promise<MediaPlaylist> {
    return this.#waitFor(() => this.#endedPlaylist, "#EXT-X-ENDLIST", options.timeoutMs);
  }

  /** Fetches the init segment named by `#EXT-X-MAP` and checks it starts with `ftyp`. */
  async fetchInit(): Promise<Uint8Array> {
    const uri = this.#playlist.segments.at(-1)?.mapUri ?? this.#playlist.mapUri;
    if (uri === undefined)
      throw new TestUtilsError("TEST_UTILS_PLAYLIST_INVALID", `${this.mediaUrl} has no EXT-X-MAP`);
    const response = await this.#get(this.#resolve(uri));
    expectFirstBox(response.body, "ftyp", `init segment ${uri}`);
    return response.body;
  }

  /** Fetches a segment (a record or a URI) and checks it starts with `moof`. */
  async fetchSegment(segment: HlsSegmentRecord | string): Promise<Uint8Array> {
    const url = typeof segment === "string" ? this.#resolve(segment) : segment.url;
    const response = await this.#get(url);
    expectFirstBox(response.body, "moof", `segment ${url}`);
    return response.body;
  }

  /** Stops following and aborts requests in flight. Idempotent. */
  async close(): Promise<void> {
    this.#abort.abort(new TestUtilsError("TEST_UTILS_CLOSED", "the HLS client was closed"));
    await this.#done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #waitFor<T>(value: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    return waitFor(
      () => {
        const problem = this.errors.find(
          (e) => e instanceof TestUtilsError && e.code === "TEST_UTILS_MEDIA_INVALID",
        );
        if (problem) throw problem;
        const result = value();
        if (result !== undefined) return result;
        if (this.#abort.signal.aborted)
          throw new TestUtilsError("TEST_UTILS_CLOSED", "the HLS client was closed");
        if (this.#endList && !this.#options.followAfterEndList) {
          throw new TestUtilsError("TEST_UTILS_CLOSED", "the playlist ended (EXT-X-ENDLIST)");
        }
        return undefined;
      },
      {
        timeoutMs,
        failFast: () => true,
        message: `${what} on ${this.mediaUrl} (seen ${this.stats.segmentsSeen} segments, ${this.stats.partsSeen} parts, ${this.stats.playlistRequests} playlist requests; last error: ${this.errors.at(-1)?.message ?? "none"})`,
      },
    ) as Promise<T>;
  }

  #resolve(uri: string): string {
    return withQuery(new URL(uri, this.mediaUrl).toString(), { token: this.#options.token });
  }

  #get(url: string, timeoutMs = this.#options.requestTimeoutMs ?? 15_000): Promise<HttpResponse> {
    return httpGet(url, {
      timeoutMs,
      signal: this.#abort.signal,
      ...(this.#options.headers ? { headers: this.#options.headers } : {}),
    }).then((response) => {
      if (response.status !== 200) {
        throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${url} answered ${response.status}`);
      }
      return response;
    });
  }

  #error(error: unknown): void {
    this.errors.push(error instanceof Error ? error : new Error(String(error)));
    if (this.errors.length > 100) this.errors.shift();
  }

  async #pause(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async #follow(first: MediaPlaylist): Promise<void> {
    try {
      await this.#apply(first);
      // After an answer other than 200 or 503 (400: asked too far ahead; 404: a part that will
      // never exist), the next reload is a plain one, to resynchronise with the playlist.
      let plain = false;
      while (!this.#abort.signal.aborted && (!this.#endList || this.#options.followAfterEndList)) {
        const playlist = this.#playlist;
        const blocking =
          !plain &&
          !playlist.endList &&
          (this.#options.blockingReload ?? true) &&
          playlist.serverControl.canBlockReload;
        plain = false;
        const next = blocking
          ? { _HLS_msn: String(playlist.nextMsn), _HLS_part: String(playlist.trailingParts.length) }
          : {};
        if (!blocking) {
          const intervalS = playlist.endList
            ? playlist.targetDurationS / 2
            : (playlist.partTargetS ?? playlist.targetDurationS / 2);
          await this.#pause(Math.max(100, intervalS * 1000));
        }
        if (this.#abort.signal.aborted) break;
        let response: HttpResponse;
        try {
          this.stats.playlistRequests++;
          if (blocking) this.stats.blockingRequests++;
          response = await httpGet(withQuery(this.mediaUrl, { ...next, token: this.#options.token }), {
            timeoutMs: this.#options.requestTimeoutMs ?? 15_000,
            signal: this.#abort.signal,
            ...(this.#options.headers ? { headers: this.#options.headers } : {}),
          });
        } catch (error) {
          if (this.#abort.signal.aborted) break;
          this.#error(error);
          await this.#pause(250);
          continue;
        }
        if (response.status !== 200) {
          // 503: a held request timed out, or no media yet.
          this.stats.retries++;
          if (response.status !== 503) {
            plain = true;
            this.#error(new TestUtilsError("TEST_UTILS_HTTP", `playlist reload answered ${response.status}`));
          }
          await this.#pause(Number(response.headers.get("retry-after") ?? 0) * 1000 || 100);
          continue;
        }
        try {
          await this.#apply(parseMediaPlaylist(response.text()));
        } catch (error) {
          if (this.#abort.signal.aborted) break;
          this.#error(error);
          await this.#pause(250);
        }
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#error(error);
    }
  }

  async #apply(playlist: MediaPlaylist): Promise<void> {
    if (playlist.nextMsn < this.#playlist.nextMsn && !playlist.endList) {
      this.#error(
        new TestUtilsError(
          "TEST_UTILS_PLAYLIST_INVALID",
          `playlist went backwards: next segment ${playlist.nextMsn} after ${this.#playlist.nextMsn}`,
        ),
      );
    }
    this.#playlist = playlist;
    const newSegments = playlist.segments.filter((s) => s.msn > this.#lastMsn);
    const newParts: HlsPartRecord[] = [];
    // Parts only move forward, so (msn, index) of the newest part seen is enough to spot new ones.
    const noteParts = (msn: number, parts: readonly PlaylistPartEntry[]) => {
      parts.forEach((part, index) => {
        const [lastMsn, lastIndex] = this.#lastPart;
        if (msn < lastMsn || (msn === lastMsn && index <= lastIndex)) return;
        this.#lastPart = [msn, index];
        const record: HlsPartRecord = {
          msn,
          index,
          uri: part.uri,
          url: this.#resolve(part.uri),
          durationS: part.durationS,
          independent: part.independent,
          bytes: undefined,
          firstBox: undefined,
        };
        newParts.push(record);
        this.parts.push(record);
        this.stats.partsSeen++;
      });
    };
    for (const segment of playlist.segments) noteParts(segment.msn, segment.parts);
    noteParts(playlist.nextMsn, playlist.trailingParts);
    const max = this.#options.maxRecords ?? 1000;
    while (this.parts.length > max) this.parts.shift();

    const newRecords: HlsSegmentRecord[] = [];
    for (const segment of newSegments) {
      const record: HlsSegmentRecord = {
        msn: segment.msn,
        uri: segment.uri,
        url: this.#resolve(segment.uri),
        durationS: segment.durationS,
        discontinuity: segment.discontinuity,
        discontinuitySequence: segment.discontinuitySequence,
        programDateTimeMs: segment.programDateTimeMs,
        partCount: segment.parts.length,
        bytes: undefined,
        firstBox: undefined,
      };
      this.#lastMsn = segment.msn;
      newRecords.push(record);
      this.segments.push(record);
      while (this.segments.length > max) this.segments.shift();
      this.stats.segmentsSeen++;
      if (segment.discontinuity) this.stats.discontinuities++;
      this.stats.maxSegmentDurationS = Math.max(this.stats.maxSegmentDurationS, segment.durationS);
    }
    if (this.#options.fetchParts) {
      for (const part of newParts) await this.#fetchInto(part, "part");
    }
    if (this.#options.fetchSegments ?? true) {
      for (const record of newRecords) await this.#fetchInto(record, "segment");
    }
    if (playlist.endList && !this.#endList) {
      this.stats.endLists++;
      this.#endedPlaylist = playlist;
    }
    this.#endList = playlist.endList;
  }

  async #fetchInto(record: HlsSegmentRecord | HlsPartRecord, kind: "segment" | "part"): Promise<void> {
    try {
      const response = await this.#get(record.url);
      record.bytes = response.body.byteLength;
      record.firstBox = firstBoxType(response.body);
      this.stats.bytesFetched += response.body.byteLength;
      if (kind === "segment") this.stats.segmentsFetched++;
      else this.stats.partsFetched++;
      expectFirstBox(response.body, "moof", `${kind} ${record.uri}`);
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#error(error);
    }
  }
}
