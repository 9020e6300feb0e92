/**
 * A MoQ viewer built on the official `@moq/lite` client (0.2.2, over WebSocket in Node): finds a
 * broadcast by announcement, reads its hang `catalog.json`, and records the groups of any track
 * with their arrival times. It checks what arrives against the catalog (CMAF fragments whose decode
 * times advance), and its arrival times anchor the media timeline to the wall clock for latency.
 */

import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { waitFor } from "@lvqr/test-utils";
import * as Lite from "@moq/lite";
import { firstBoxType, fragmentDecodeTime, initTimescale } from "./bmff.ts";

/** The part of a hang catalog rendition these tests read. */
export interface CatalogRendition {
  readonly codec: string;
  readonly container?: { readonly kind: string; readonly init?: string };
  readonly codedWidth?: number;
  readonly codedHeight?: number;
  readonly sampleRate?: number;
  readonly numberOfChannels?: number;
}

/** A hang catalog (`catalog.json`). */
export interface HangCatalog {
  readonly video?: { readonly renditions: Record<string, CatalogRendition> };
  readonly audio?: { readonly renditions: Record<string, CatalogRendition> };
}

/** One received group. */
export interface ReceivedGroup {
  readonly sequence: number;
  readonly frames: number;
  readonly bytes: number;
  /** Box type the first frame starts with (`moof` for CMAF media). */
  readonly firstBox: string;
  /** Decode time of the first frame in seconds (CMAF tracks with a known timescale). */
  readonly firstDecodeSeconds: number | undefined;
  /** Wall clock (Unix ms) when the first frame arrived. */
  readonly firstArrivalMs: number;
}

/** Arrival of one CMAF fragment: its decode time against the wall clock. */
export interface FrameArrival {
  readonly decodeSeconds: number;
  readonly arrivalMs: number;
}

const MAX_ARRIVALS = 20_000;

/** Records the groups of one subscription. Stop it with `close()`. */
export class TrackRecorder {
  readonly name: string;
  readonly groups: ReceivedGroup[] = [];
  /** Decode time vs arrival of every fragment (the most recent 20 000). */
  readonly arrivals: FrameArrival[] = [];
  /** The first error the subscription ended with, if it ended. */
  error: unknown;
  readonly #track: Lite.Track;

  constructor(track: Lite.Track, timescale: number | undefined) {
    this.name = track.name;
    this.#track = track;
    void this.#run(timescale);
  }

  async #run(timescale: number | undefined): Promise<void> {
    try {
      for (;;) {
        const group = await this.#track.recvGroup();
        if (!group) return;
        void this.#readGroup(group, timescale);
      }
    } catch (error) {
      this.error ??= error;
    }
  }

  async #readGroup(group: Lite.Group, timescale: number | undefined): Promise<void> {
    let frames = 0;
    let bytes = 0;
    let firstBox = "";
    let firstDecodeSeconds: number | undefined;
    let firstArrivalMs = 0;
    try {
      for (;;) {
        const frame = await group.readFrame();
        if (!frame) break;
        const now = Date.now();
        if (frames === 0) {
          firstBox = firstBoxType(frame);
          firstArrivalMs = now;
        }
        if (timescale !== undefined && firstBoxType(frame) === "moof") {
          const decodeSeconds = fragmentDecodeTime(frame) / timescale;
          if (frames === 0) firstDecodeSeconds = decodeSeconds;
          this.arrivals.push({ decodeSeconds, arrivalMs: now });
          if (this.arrivals.length > MAX_ARRIVALS)
            this.arrivals.splice(0, this.arrivals.length - MAX_ARRIVALS);
        }
        frames++;
        bytes += frame.byteLength;
      }
    } catch (error) {
      this.error ??= error;
      return;
    }
    this.groups.push({
      sequence: group.sequence,
      frames,
      bytes,
      firstBox,
      firstDecodeSeconds,
      firstArrivalMs,
    });
  }

  /** Resolves once `count` complete groups have arrived. */
  async waitForGroups(count: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.groups.length >= count, {
      timeoutMs,
      message: `${count} groups on ${this.name}`,
    });
  }

  /**
   * The wall-clock time (Unix ms) at which media time 0 arrived, estimated from fragments that
   * arrived in `[fromMs, toMs]`: a low percentile of arrival minus decode time, since delivery
   * delays only ever add to it.
   */
  anchorMs(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number | undefined {
    const offsets = this.arrivals
      .filter((a) => a.arrivalMs >= fromMs && a.arrivalMs <= toMs)
      .map((a) => a.arrivalMs - a.decodeSeconds * 1000)
      .sort((a, b) => a - b);
    if (offsets.length === 0) return undefined;
    return offsets[Math.floor(offsets.length * 0.05)];
  }

  close(): void {
    this.#track.close();
  }
}

/** An official @moq/lite connection used as a viewer. */
export class LiteViewer {
  readonly connection: Lite.Connection.Established;
  readonly #active = new Set<string>();
  readonly #recorders: TrackRecorder[] = [];

  private constructor(connection: Lite.Connection.Established) {
    this.connection = connection;
    const announced = connection.announced(Lite.Path.empty());
    void (async () => {
      try {
        for (;;) {
          const entry = await announced.next();
          if (!entry) return;
          if (entry.active) this.#active.add(entry.path);
          else this.#active.delete(entry.path);
        }
      } catch {
        // The connection closed.
      }
    })();
  }

  /** Connects to a MoQ URL (`http://host:port/<root>?token=...`). */
  static async connect(url: string): Promise<LiteViewer> {
    return new LiteViewer(await Lite.Connection.connect(new URL(url)));
  }

  /** The negotiated moq-lite version. */
  get version(): string {
    return this.connection.version;
  }

  /** Resolves once `broadcast` is announced as active. */
  async waitAnnounced(broadcast: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.#active.has(broadcast), { timeoutMs, message: `announcement of ${broadcast}` });
  }

  /** Whether `broadcast` is currently announced as active. */
  isAnnounced(broadcast: string): boolean {
    return this.#active.has(broadcast);
  }

  /** Subscribes to `catalog.json` and returns the first catalog (frame 0 of the newest group). */
  async readCatalog(broadcast: string, timeoutMs = 20_000): Promise<HangCatalog> {
    const track = this.connection.consume(Lite.Path.from(broadcast)).subscribe("catalog.json", 100);
    try {
      const group = await withTimeout(track.recvGroup(), timeoutMs, `a catalog.json group of ${broadcast}`);
      if (!group) throw new Error(`catalog.json of ${broadcast} ended without a group`);
      const frame = await withTimeout(group.readFrame(), timeoutMs, "the catalog frame");
      if (!frame) throw new Error(`the catalog.json group of ${broadcast} has no frame`);
      return JSON.parse(new TextDecoder().decode(frame)) as HangCatalog;
    } finally {
      track.close();
    }
  }

  /**
   * Subscribes to `track` of `broadcast` and records its groups. With `rendition` (the catalog
   * entry of a CMAF track) it also reads decode times.
   */
  record(broadcast: string, track: string, priority: number, rendition?: CatalogRendition): TrackRecorder {
    const init = rendition?.container?.kind === "cmaf" ? rendition.container.init : undefined;
    const timescale = init === undefined ? undefined : initTimescale(Buffer.from(init, "base64"));
    const recorder = new TrackRecorder(
      this.connection.consume(Lite.Path.from(broadcast)).subscribe(track, priority),
      timescale,
    );
    this.#recorders.push(recorder);
    return recorder;
  }

  close(): void {
    for (const recorder of this.#recorders.splice(0)) recorder.close();
    this.connection.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The HTTP status a MoQ WebSocket upgrade to `url` gets (101 when the session is accepted),
 * offering the `qmux-00` subprotocol as the official clients do. The socket is closed right after.
 */
export function moqUpgradeStatus(url: string, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        "sec-websocket-protocol": "qmux-00",
      },
      timeout: timeoutMs,
    });
    request.on("upgrade", (response, socket) => {
      socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    request.on("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer to the upgrade of ${url}`)));
    request.on("error", reject);
    request.end();
  });
}
