/**
 * `DashTestClient`: follows a live MPD (reloading it every `minimumUpdatePeriod`), records every
 * segment it lists per Period and Representation, fetches each new segment and checks it starts
 * with `moof` (init segments: `ftyp`), and stops when the MPD turns `static`. Records are
 * bounded; waits have time limits and say what was seen.
 *
 * ```ts
 * await using dash = await DashTestClient.open(server.dashUrl("live/cam0"));
 * await dash.waitForSegments(2, { contentType: "video" });
 * ```
 */
import { TestUtilsError } from "../errors.ts";
import { waitFor } from "../wait-for.ts";
import { expectFirstBox, firstBoxType, type HttpResponse, httpGet } from "./http-get.ts";
import { type Mpd, parseMpd } from "./mpd.ts";

/** Options of {@link DashTestClient.open}. */
export interface DashTestClientOptions {
  /** Added as `?token=` to every request. */
  readonly token?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Fetch every new segment (and each init once) and check its first box (default true). */
  readonly fetchSegments?: boolean;
  /** Only follow these content types (default every AdaptationSet). */
  readonly contentTypes?: readonly string[];
  /** How long `open()` waits for the MPD to exist (default 10 000 ms). */
  readonly openTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** MPD reload interval (default the MPD's `minimumUpdatePeriod`, kept within 100..2000 ms). */
  readonly pollIntervalMs?: number;
  /** Segment records kept (default 2000). */
  readonly maxRecords?: number;
  /**
   * Keep following after the MPD turns `static` (default false). LVQR makes it `dynamic` again,
   * with a new Period, when the broadcast is republished; with this the client sees that.
   */
  readonly followAfterStatic?: boolean;
}

/** A segment the client has seen. */
export interface DashSegmentRecord {
  /** Period id (or its index when the MPD gives none). */
  readonly period: string;
  readonly contentType: string | undefined;
  readonly representationId: string;
  readonly number: number;
  readonly durationS: number;
  readonly uri: string;
  readonly url: string;
  bytes: number | undefined;
  firstBox: string | undefined;
}

/** Counters of a {@link DashTestClient}. */
export interface DashClientStats {
  mpdRequests: number;
  segmentsSeen: number;
  segmentsFetched: number;
  initsFetched: number;
  bytesFetched: number;
  /** Distinct Periods seen (a republish adds one). */
  periods: number;
  /** Times the MPD turned `static` (the broadcast ended). */
  statics: number;
}

function withToken(url: string, token: string | undefined): string {
  if (token === undefined) return url;
  const target = new URL(url);
  target.searchParams.set("token", token);
  return target.toString();
}

/** Follows one MPD until closed or static. */
export class DashTestClient implements AsyncDisposable {
  readonly url: string;
  readonly segments: DashSegmentRecord[] = [];
  readonly stats: DashClientStats = {
    mpdRequests: 0,
    segmentsSeen: 0,
    segmentsFetched: 0,
    initsFetched: 0,
    bytesFetched: 0,
    periods: 0,
    statics: 0,
  };
  /** Problems met while following, newest last (at most 100). */
  readonly errors: Error[] = [];
  #mpd: Mpd;
  readonly #options: DashTestClientOptions;
  readonly #abort = new AbortController();
  readonly #highest = new Map<string, number>();
  readonly #periods = new Set<string>();
  readonly #inits = new Set<string>();
  #static = false;
  #staticMpd: Mpd | undefined;
  readonly #done: Promise<void>;

  private constructor(url: string, first: Mpd, options: DashTestClientOptions) {
    this.url = url;
    this.#mpd = first;
    this.#options = options;
    this.#done = this.#follow(first);
  }

  /** Opens an MPD URL, waiting (up to `openTimeoutMs`) while it answers 404/503, then follows it. */
  static async open(url: string, options: DashTestClientOptions = {}): Promise<DashTestClient> {
    let text = "";
    let lastStatus = 0;
    // 404/503 mean "no media yet" and are waited out; any other status will not change by waiting.
    let refusal: TestUtilsError | undefined;
    await waitFor(
      async () => {
        const response = await httpGet(withToken(url, options.token), {
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
        timeoutMs: options.openTimeoutMs ?? 10_000,
        intervalMs: 100,
        failFast: (error) => error === refusal,
        message: `DASH MPD ${url} (last status ${lastStatus || "none"})`,
      },
    );
    return new DashTestClient(url, parseMpd(text), options);
  }

  /** The newest MPD. */
  get mpd(): Mpd {
    return this.#mpd;
  }

  /** True while the newest MPD is `static` (the broadcast ended). */
  get isStatic(): boolean {
    return this.#static;
  }

  /** Resolves when following stops. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Waits until `count` segments (of `contentType`, if given) have been seen and fetched. */
  waitForSegments(
    count: number,
    options: { contentType?: string; timeoutMs?: number } = {},
  ): Promise<DashSegmentRecord[]> {
    const fetching = this.#options.fetchSegments ?? true;
    return this.#waitFor(
      () => {
        const ready = this.segments.filter(
          (s) =>
            (options.contentType === undefined || s.contentType === options.contentType) &&
            (!fetching || s.bytes !== undefined),
        );
        return ready.length >= count ? ready : undefined;
      },
      `${count} DASH ${options.contentType ?? ""} segment(s)`.replace("  ", " "),
      options.timeoutMs,
      false,
    );
  }

  /** Waits until a `static` MPD has been seen, and returns it. */
  waitForStatic(options: { timeoutMs?: number } = {}): Promise<Mpd> {
    return this.#waitFor(() => this.#staticMpd, "a static MPD", options.timeoutMs, true);
  }

  /** Fetches the newest Period's init segment for `contentType` (default video) and checks it starts with `ftyp`. */
  async fetchInit(contentType = "video"): Promise<Uint8Array> {
    const period = this.#mpd.periods.at(-1)!;
    const representation = period.adaptationSets.find((s) => s.contentType === contentType)
      ?.representations[0];
    if (representation?.initialization === undefined) {
      throw new TestUtilsError(
        "TEST_UTILS_MPD_INVALID",
        `${this.url} has no ${contentType} initialization segment`,
      );
    }
    const response = await this.#get(this.#resolve(representation.initialization));
    expectFirstBox(response.body, "ftyp", `${contentType} init segment`);
    return response.body;
  }

  /** Fetches a segment and checks it starts with `moof`. */
  async fetchSegment(segment: DashSegmentRecord): Promise<Uint8Array> {
    const response = await this.#get(segment.url);
    expectFirstBox(response.body, "moof", `segment ${segment.url}`);
    return response.body;
  }

  /** Stops following and aborts requests in flight. Idempotent. */
  async close(): Promise<void> {
    this.#abort.abort(new TestUtilsError("TEST_UTILS_CLOSED", "the DASH client was closed"));
    await this.#done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #waitFor<T>(
    value: () => T | undefined,
    what: string,
    timeoutMs = 20_000,
    allowStatic: boolean,
  ): Promise<T> {
    return waitFor(
      () => {
        const problem = this.errors.find(
          (e) => e instanceof TestUtilsError && e.code === "TEST_UTILS_MEDIA_INVALID",
        );
        if (problem) throw problem;
        const result = value();
        if (result !== undefined) return result;
        if (this.#abort.signal.aborted)
          throw new TestUtilsError("TEST_UTILS_CLOSED", "the DASH client was closed");
        if (this.#static && !allowStatic && !this.#options.followAfterStatic) {
          throw new TestUtilsError("TEST_UTILS_CLOSED", "the MPD turned static");
        }
        return undefined;
      },
      {
        timeoutMs,
        failFast: () => true,
        message: `${what} on ${this.url} (seen ${this.stats.segmentsSeen} segments in ${this.stats.periods} period(s), ${this.stats.mpdRequests} MPD requests; last error: ${this.errors.at(-1)?.message ?? "none"})`,
      },
    ) as Promise<T>;
  }

  #resolve(uri: string): string {
    return withToken(new URL(uri, this.url).toString(), this.#options.token);
  }

  #get(url: string): Promise<HttpResponse> {
    return httpGet(url, {
      timeoutMs: this.#options.requestTimeoutMs ?? 15_000,
      signal: this.#abort.signal,
      ...(this.#options.headers ? { headers: this.#options.headers } : {}),
    }).then((response) => {
      if (response.status !== 200)
        throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${url} answered ${response.status}`);
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

  async #follow(first: Mpd): Promise<void> {
    try {
      await this.#apply(first);
      while (!this.#abort.signal.aborted && (!this.#static || this.#options.followAfterStatic)) {
        const update = this.#options.pollIntervalMs ?? (this.#mpd.minimumUpdatePeriodS ?? 1) * 1000;
        await this.#pause(Math.min(2000, Math.max(100, update)));
        if (this.#abort.signal.aborted) break;
        try {
          this.stats.mpdRequests++;
          const response = await this.#get(withToken(this.url, this.#options.token));
          await this.#apply(parseMpd(response.text()));
        } catch (error) {
          if (this.#abort.signal.aborted) break;
          this.#error(error);
        }
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#error(error);
    }
  }

  async #apply(mpd: Mpd): Promise<void> {
    this.#mpd = mpd;
    const fetch = this.#options.fetchSegments ?? true;
    const wanted = this.#options.contentTypes;
    const fresh: DashSegmentRecord[] = [];
    for (const [periodIndex, period] of mpd.periods.entries()) {
      const periodId = period.id ?? String(periodIndex);
      if (!this.#periods.has(periodId)) {
        this.#periods.add(periodId);
        this.stats.periods++;
      }
      for (const set of period.adaptationSets) {
        if (wanted !== undefined && !wanted.includes(set.contentType ?? "")) continue;
        for (const representation of set.representations) {
          // Segment numbers only grow within a Representation, so a high-water mark is enough.
          const key = `${periodId}/${representation.id}`;
          const highest = this.#highest.get(key) ?? Number.NEGATIVE_INFINITY;
          for (const segment of representation.segments) {
            if (segment.number <= highest) continue;
            this.#highest.set(key, segment.number);
            const record: DashSegmentRecord = {
              period: periodId,
              contentType: set.contentType,
              representationId: representation.id,
              number: segment.number,
              durationS: segment.durationS,
              uri: segment.uri,
              url: this.#resolve(segment.uri),
              bytes: undefined,
              firstBox: undefined,
            };
            fresh.push(record);
            this.segments.push(record);
            this.stats.segmentsSeen++;
          }
          if (fetch && representation.initialization !== undefined) {
            const initUrl = this.#resolve(representation.initialization);
            if (!this.#inits.has(initUrl)) {
              this.#inits.add(initUrl);
              await this.#fetchInit(initUrl);
            }
          }
        }
      }
    }
    const max = this.#options.maxRecords ?? 2000;
    while (this.segments.length > max) this.segments.shift();
    if (fetch) {
      for (const record of fresh) {
        try {
          const response = await this.#get(record.url);
          record.bytes = response.body.byteLength;
          record.firstBox = firstBoxType(response.body);
          this.stats.segmentsFetched++;
          this.stats.bytesFetched += response.body.byteLength;
          expectFirstBox(response.body, "moof", `DASH segment ${record.uri}`);
        } catch (error) {
          if (!this.#abort.signal.aborted) this.#error(error);
        }
      }
    }
    if (mpd.type === "static" && !this.#static) {
      this.stats.statics++;
      this.#staticMpd = mpd;
    }
    this.#static = mpd.type === "static";
  }

  async #fetchInit(url: string): Promise<void> {
    try {
      const response = await this.#get(url);
      this.stats.initsFetched++;
      this.stats.bytesFetched += response.body.byteLength;
      expectFirstBox(response.body, "ftyp", `DASH init segment ${url}`);
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#error(error);
    }
  }
}
