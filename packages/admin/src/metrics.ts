/**
 * The server's Prometheus metrics, owned by one {@link LvqrMetrics} per server. Callers use the
 * typed methods (`authFailure`, `bytesSent`, ...) instead of touching metric objects, so names and
 * labels stay as documented here.
 */

import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
  type RegistryContentType,
} from "@prometheus-io/client";
import { AdminError } from "./errors.ts";
import type { GlassToGlassSink } from "./slo.ts";

/**
 * Entry points whose auth failures are counted in `lvqr_auth_failures_total{entry}`. Other strings
 * are accepted too; these are the ones the server uses.
 */
export type AuthFailureEntry =
  | "admin"
  | "metrics"
  | "slo_client_sample"
  | "rtmp"
  | "moq"
  | "hls_live"
  | "dash_live"
  | "hls_signed_url"
  | "dash_signed_url"
  | "playback_signed_url";

/** Operations counted in `lvqr_streamkeys_changed_total{op}`. */
export type StreamKeyOp = "mint" | "revoke" | "rotate" | "expire";

/** Default buckets of the glass-to-glass histogram, in milliseconds (sub-second MoQ up to slow HLS). */
export const GLASS_TO_GLASS_BUCKETS_MS: readonly number[] = [
  50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 8000, 12000, 20000, 30000,
];

/** Options of {@link LvqrMetrics}. */
export interface LvqrMetricsOptions {
  /**
   * Also export the Prometheus client's process and Node.js runtime metrics (CPU, memory, file
   * descriptors, event-loop lag and utilisation, GC). Default true. They are collected once per
   * process and shared by every `LvqrMetrics`, because the client's collectors start timers and
   * observers that cannot be stopped.
   */
  processMetrics?: boolean;
  /** Buckets of `lvqr_subscriber_glass_to_glass_ms`; default {@link GLASS_TO_GLASS_BUCKETS_MS}. */
  glassToGlassBucketsMs?: readonly number[];
}

let processRegistry: Registry | undefined;

// One collector per process: each collectDefaultMetrics() call starts an unstoppable interval and
// a GC observer, so creating them per LvqrMetrics would leak in tests and multi-server processes.
function sharedProcessRegistry(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** DVR segments kept in files, as the metrics read them. */
export interface DvrFileUsage {
  readonly files: number;
  readonly bytes: number;
  readonly writeErrors: number;
}

/** What the metrics hold for one broadcast. */
interface BroadcastSeries {
  /** Protocols with a `lvqr_bytes_sent_total` series. */
  readonly protocols: Set<string>;
  /** Bytes sent per protocol that have not reached the counter yet. */
  readonly unsentBytes: Map<string, number>;
  /** The glass-to-glass histogram's child per transport. */
  readonly transports: Map<string, { observe(value: number): void }>;
}

/**
 * The named LVQR metrics in their own registry:
 *
 * - `lvqr_auth_failures_total{entry}`: denied auth checks per entry point.
 * - `lvqr_active_streams`: broadcasts being published.
 * - `lvqr_moq_connections_total`, `lvqr_active_moq_sessions`: MoQ sessions accepted / open.
 * - `lvqr_sessions{protocol}`: open subscriber sessions per protocol.
 * - `lvqr_bytes_received_total{broadcast}`: ingest bytes per broadcast.
 * - `lvqr_bytes_sent_total{broadcast,protocol}`: egress bytes per broadcast and protocol.
 * - `lvqr_subscriber_glass_to_glass_ms{broadcast,transport}`: latency histogram (fed by `LatencyTracker`).
 * - `lvqr_streamkeys_changed_total{op}`: stream-key mint / revoke / rotate / expire.
 * - `lvqr_slo_client_samples_total{transport}`: accepted client latency pushes.
 * - `lvqr_dvr_files`, `lvqr_dvr_bytes_on_disk`, `lvqr_dvr_write_errors_total`: DVR segments kept
 *   in files, once {@link LvqrMetrics.trackDvrFiles} names where to read them.
 *
 * Per-broadcast series live until {@link LvqrMetrics.forgetBroadcast} drops them, so call it when a
 * broadcast ends for good to keep the label set bounded.
 */
export class LvqrMetrics implements GlassToGlassSink {
  /** The registry holding the LVQR metrics (not the shared process metrics). */
  readonly registry: Registry;
  readonly #processMetrics: boolean;
  readonly #authFailures: Counter<"entry">;
  readonly #activeStreams: Gauge;
  readonly #moqConnections: Counter;
  readonly #activeMoqSessions: Gauge;
  readonly #sessions: Gauge<"protocol">;
  readonly #bytesReceived: Counter<"broadcast">;
  readonly #bytesSent: Counter<"broadcast" | "protocol">;
  readonly #glassToGlass: Histogram<"broadcast" | "transport">;
  readonly #streamKeysChanged: Counter<"op">;
  readonly #clientSamples: Counter<"transport">;
  #dvrFiles: (() => DvrFileUsage) | undefined;
  #dvrWriteErrorsSeen = 0;
  // Running totals for /api/v1/stats; unlike the labelled series they survive forgetBroadcast().
  #totalBytesReceived = 0;
  #totalBytesSent = 0;
  #streams = 0;
  readonly #sessionsByProtocol = new Map<string, number>();
  // Label values seen per broadcast, so forgetBroadcast() can remove every series of it.
  readonly #seriesByBroadcast = new Map<string, BroadcastSeries>();

  constructor(options: LvqrMetricsOptions = {}) {
    const buckets = options.glassToGlassBucketsMs ?? GLASS_TO_GLASS_BUCKETS_MS;
    if (
      buckets.length === 0 ||
      buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))
    ) {
      throw new AdminError(
        "ADMIN_INVALID_OPTIONS",
        "glassToGlassBucketsMs must be a non-empty list of finite, strictly increasing numbers",
      );
    }
    this.registry = new Registry();
    this.#processMetrics = options.processMetrics ?? true;
    const registers = [this.registry];
    this.#authFailures = new Counter({
      name: "lvqr_auth_failures_total",
      help: "Denied authentication or authorization checks, by entry point.",
      labelNames: ["entry"],
      registers,
    });
    this.#activeStreams = new Gauge({
      name: "lvqr_active_streams",
      help: "Broadcasts currently being published.",
      registers,
    });
    this.#moqConnections = new Counter({
      name: "lvqr_moq_connections_total",
      help: "MoQ sessions accepted since start.",
      registers,
    });
    this.#activeMoqSessions = new Gauge({
      name: "lvqr_active_moq_sessions",
      help: "MoQ sessions currently open.",
      registers,
    });
    this.#sessions = new Gauge({
      name: "lvqr_sessions",
      help: "Subscriber sessions currently open, by protocol.",
      labelNames: ["protocol"],
      registers,
    });
    this.#bytesReceived = new Counter({
      name: "lvqr_bytes_received_total",
      help: "Media bytes received from publishers, by broadcast.",
      labelNames: ["broadcast"],
      registers,
    });
    this.#bytesSent = new Counter({
      name: "lvqr_bytes_sent_total",
      help: "Media bytes sent to subscribers, by broadcast and protocol.",
      labelNames: ["broadcast", "protocol"],
      registers,
      // Sends are counted per frame and subscriber; they reach the counter when it is read.
      collect: () => this.#flushBytesSent(),
    });
    this.#glassToGlass = new Histogram({
      name: "lvqr_subscriber_glass_to_glass_ms",
      help: "Latency from ingest to availability or delivery, in milliseconds, by broadcast and transport.",
      labelNames: ["broadcast", "transport"],
      buckets: [...buckets],
      registers,
    });
    this.#streamKeysChanged = new Counter({
      name: "lvqr_streamkeys_changed_total",
      help: "Stream-key changes, by operation.",
      labelNames: ["op"],
      registers,
    });
    this.#clientSamples = new Counter({
      name: "lvqr_slo_client_samples_total",
      help: "Latency samples accepted from clients, by transport.",
      labelNames: ["transport"],
      registers,
    });
    const dvr = () => this.#dvrFiles?.();
    const dvrGauge = (name: string, help: string, pick: (usage: DvrFileUsage) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const usage = dvr();
          if (usage) this.set(pick(usage));
        },
      });
    dvrGauge("lvqr_dvr_files", "DVR segments kept in files rather than in memory.", (u) => u.files);
    dvrGauge("lvqr_dvr_bytes_on_disk", "Bytes of the DVR segments kept in files.", (u) => u.bytes);
    const errors = new Counter({
      name: "lvqr_dvr_write_errors_total",
      help: "DVR segments that could not be written to a file (they stay in memory).",
      registers,
      collect: () => {
        const seen = dvr()?.writeErrors ?? this.#dvrWriteErrorsSeen;
        if (seen > this.#dvrWriteErrorsSeen) errors.inc(seen - this.#dvrWriteErrorsSeen);
        this.#dvrWriteErrorsSeen = seen;
      },
    });
    if (this.#processMetrics) sharedProcessRegistry();
  }

  /** Where the DVR file gauges are read from at each scrape (e.g. a packager hub's `spill.stats`). */
  trackDvrFiles(read: () => DvrFileUsage): void {
    this.#dvrFiles = read;
  }

  /** The Content-Type of {@link LvqrMetrics.render}'s output (Prometheus text format 0.0.4). */
  get contentType(): RegistryContentType {
    return this.registry.contentType;
  }

  /** Counts one denied check at `entry`. */
  authFailure(entry: AuthFailureEntry | (string & {})): void {
    this.#authFailures.inc({ entry });
  }

  /** A broadcast started being published. */
  streamStarted(): void {
    this.#streams++;
    this.#activeStreams.inc();
  }

  /** A broadcast stopped being published. */
  streamEnded(): void {
    this.#streams--;
    this.#activeStreams.dec();
  }

  /** A MoQ session was accepted (counts it and raises the open-session gauge). */
  moqSessionOpened(): void {
    this.#moqConnections.inc();
    this.#activeMoqSessions.inc();
  }

  /** A MoQ session closed. */
  moqSessionClosed(): void {
    this.#activeMoqSessions.dec();
  }

  /** A subscriber session of `protocol` (`moq`, `hls`, `dash`, ...) opened. */
  sessionOpened(protocol: string): void {
    this.#sessionsByProtocol.set(protocol, (this.#sessionsByProtocol.get(protocol) ?? 0) + 1);
    this.#sessions.inc({ protocol });
  }

  /** A subscriber session of `protocol` closed. */
  sessionClosed(protocol: string): void {
    this.#sessionsByProtocol.set(protocol, (this.#sessionsByProtocol.get(protocol) ?? 0) - 1);
    this.#sessions.dec({ protocol });
  }

  /** Adds `bytes` received from the publisher of `broadcast`. */
  bytesReceived(broadcast: string, bytes: number): void {
    if (!(bytes > 0)) return;
    this.#series(broadcast);
    this.#totalBytesReceived += bytes;
    this.#bytesReceived.inc({ broadcast }, bytes);
  }

  /** Adds `bytes` sent to subscribers of `broadcast` over `protocol`. */
  bytesSent(broadcast: string, protocol: string, bytes: number): void {
    if (!(bytes > 0)) return;
    const pending = this.#series(broadcast).unsentBytes;
    pending.set(protocol, (pending.get(protocol) ?? 0) + bytes);
    this.#totalBytesSent += bytes;
  }

  #flushBytesSent(): void {
    for (const [broadcast, series] of this.#seriesByBroadcast) {
      for (const [protocol, bytes] of series.unsentBytes) {
        series.protocols.add(protocol);
        this.#bytesSent.inc({ broadcast, protocol }, bytes);
      }
      series.unsentBytes.clear();
    }
  }

  /** Observes one glass-to-glass latency sample (normally called by `LatencyTracker.record`). */
  observeGlassToGlass(broadcast: string, transport: string, ms: number): void {
    const series = this.#series(broadcast);
    let child = series.transports.get(transport);
    if (child === undefined) {
      // The labelled child, resolved once: every frame to every subscriber is a sample.
      child = this.#glassToGlass.labels({ broadcast, transport });
      series.transports.set(transport, child);
    }
    child.observe(ms);
  }

  /** Drops the histogram series of one (broadcast, transport) key. */
  forgetGlassToGlass(broadcast: string, transport: string): void {
    const series = this.#seriesByBroadcast.get(broadcast);
    if (series === undefined || !series.transports.delete(transport)) return;
    this.#glassToGlass.remove({ broadcast, transport });
  }

  /** Counts one stream-key change. */
  streamKeyChanged(op: StreamKeyOp): void {
    this.#streamKeysChanged.inc({ op });
  }

  /** Counts one accepted client latency sample. */
  clientSample(transport: string): void {
    this.#clientSamples.inc({ transport });
  }

  /**
   * Totals since this registry was created, for `/api/v1/stats`: bytes over all broadcasts (kept
   * when a broadcast's series are forgotten), open sessions per protocol and active streams.
   */
  totals(): {
    bytes_received: number;
    bytes_sent: number;
    active_streams: number;
    subscribers_by_protocol: Record<string, number>;
  } {
    return {
      bytes_received: this.#totalBytesReceived,
      bytes_sent: this.#totalBytesSent,
      active_streams: this.#streams,
      subscribers_by_protocol: Object.fromEntries(this.#sessionsByProtocol),
    };
  }

  /** Removes every per-broadcast series of `broadcast` (bytes and latency), bounding label growth. */
  forgetBroadcast(broadcast: string): void {
    const series = this.#seriesByBroadcast.get(broadcast);
    if (series === undefined) return;
    this.#seriesByBroadcast.delete(broadcast);
    this.#bytesReceived.remove({ broadcast });
    for (const protocol of series.protocols) this.#bytesSent.remove({ broadcast, protocol });
    for (const transport of series.transports.keys()) this.#glassToGlass.remove({ broadcast, transport });
  }

  /** The exposition text: the LVQR metrics, then the process metrics when enabled. */
  async render(): Promise<string> {
    const own = await this.registry.metrics();
    if (!this.#processMetrics) return own;
    const process = await sharedProcessRegistry().metrics();
    return own.endsWith("\n") || own === "" ? own + process : `${own}\n${process}`;
  }

  #series(broadcast: string): BroadcastSeries {
    let series = this.#seriesByBroadcast.get(broadcast);
    if (series === undefined) {
      series = { protocols: new Set(), unsentBytes: new Map(), transports: new Map() };
      this.#seriesByBroadcast.set(broadcast, series);
    }
    return series;
  }
}
