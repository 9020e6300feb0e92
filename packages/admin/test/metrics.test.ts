import { describe, expect, it } from "vitest";
import { AdminError, LvqrMetrics } from "../src/index.ts";

describe("LvqrMetrics", () => {
  it("exports every named metric with its labels", async () => {
    const m = new LvqrMetrics({ processMetrics: false });
    m.authFailure("rtmp");
    m.authFailure("rtmp");
    m.authFailure("hls_live");
    m.streamStarted();
    m.streamStarted();
    m.streamEnded();
    m.moqSessionOpened();
    m.moqSessionOpened();
    m.moqSessionClosed();
    m.sessionOpened("hls");
    m.sessionOpened("moq");
    m.sessionOpened("moq");
    m.sessionClosed("moq");
    m.bytesReceived("live/a", 1000);
    m.bytesReceived("live/a", 500);
    m.bytesSent("live/a", "hls", 4000);
    m.bytesSent("live/a", "moq", 10);
    m.streamKeyChanged("mint");
    m.streamKeyChanged("rotate");
    m.clientSample("moq");
    m.observeGlassToGlass("live/a", "hls", 900);
    const text = await m.render();
    for (const line of [
      'lvqr_auth_failures_total{entry="rtmp"} 2',
      'lvqr_auth_failures_total{entry="hls_live"} 1',
      "lvqr_active_streams 1",
      "lvqr_moq_connections_total 2",
      "lvqr_active_moq_sessions 1",
      'lvqr_sessions{protocol="hls"} 1',
      'lvqr_sessions{protocol="moq"} 1',
      'lvqr_bytes_received_total{broadcast="live/a"} 1500',
      'lvqr_bytes_sent_total{broadcast="live/a",protocol="hls"} 4000',
      'lvqr_bytes_sent_total{broadcast="live/a",protocol="moq"} 10',
      'lvqr_streamkeys_changed_total{op="mint"} 1',
      'lvqr_streamkeys_changed_total{op="rotate"} 1',
      'lvqr_slo_client_samples_total{transport="moq"} 1',
      'lvqr_subscriber_glass_to_glass_ms_count{broadcast="live/a",transport="hls"} 1',
      "# TYPE lvqr_subscriber_glass_to_glass_ms histogram",
    ]) {
      expect(text).toContain(line);
    }
    expect(text).not.toContain("process_cpu");
    expect(m.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
  });

  it("adds bytes sent between scrapes exactly once, and forgets them with the broadcast", async () => {
    const m = new LvqrMetrics({ processMetrics: false });
    for (let i = 0; i < 1000; i++) m.bytesSent("live/b", "moq", 7);
    expect(await m.render()).toContain('lvqr_bytes_sent_total{broadcast="live/b",protocol="moq"} 7000');
    m.bytesSent("live/b", "moq", 3);
    m.bytesSent("live/b", "dash", 5);
    const second = await m.render();
    expect(second).toContain('lvqr_bytes_sent_total{broadcast="live/b",protocol="moq"} 7003');
    expect(second).toContain('lvqr_bytes_sent_total{broadcast="live/b",protocol="dash"} 5');
    expect(await m.render()).toContain('lvqr_bytes_sent_total{broadcast="live/b",protocol="moq"} 7003');
    m.bytesSent("live/b", "moq", 11);
    m.observeGlassToGlass("live/b", "moq", 5);
    m.forgetBroadcast("live/b");
    const forgotten = await m.render();
    expect(forgotten).not.toContain('broadcast="live/b"');
    m.observeGlassToGlass("live/b", "moq", 6);
    expect(await m.render()).toContain(
      'lvqr_subscriber_glass_to_glass_ms_count{broadcast="live/b",transport="moq"} 1',
    );
  });

  it("reads the DVR file usage at each scrape once told where", async () => {
    const m = new LvqrMetrics({ processMetrics: false });
    expect(await m.render()).toContain("lvqr_dvr_files 0");
    let usage = { files: 3, bytes: 2_000_000, writeErrors: 0 };
    m.trackDvrFiles(() => usage);
    let text = await m.render();
    expect(text).toContain("lvqr_dvr_files 3");
    expect(text).toContain("lvqr_dvr_bytes_on_disk 2000000");
    expect(text).toContain("lvqr_dvr_write_errors_total 0");
    usage = { files: 1, bytes: 700_000, writeErrors: 2 };
    text = await m.render();
    expect(text).toContain("lvqr_dvr_files 1");
    expect(text).toContain("lvqr_dvr_bytes_on_disk 700000");
    expect(text).toContain("lvqr_dvr_write_errors_total 2");
    expect(await m.render()).toContain("lvqr_dvr_write_errors_total 2");
  });

  it("keeps running totals for the stats route that survive forgetBroadcast", () => {
    const m = new LvqrMetrics({ processMetrics: false });
    m.streamStarted();
    m.bytesReceived("a", 100);
    m.bytesReceived("b", 50);
    m.bytesSent("a", "hls", 1000);
    m.bytesSent("b", "moq", 10);
    m.sessionOpened("hls");
    m.sessionOpened("hls");
    m.sessionOpened("moq");
    m.sessionClosed("hls");
    m.forgetBroadcast("a");
    expect(m.totals()).toEqual({
      bytes_received: 150,
      bytes_sent: 1010,
      active_streams: 1,
      subscribers_by_protocol: { hls: 1, moq: 1 },
    });
  });

  it("ignores zero, negative and NaN byte counts instead of throwing", async () => {
    const m = new LvqrMetrics({ processMetrics: false });
    m.bytesReceived("b", 0);
    m.bytesReceived("b", -5);
    m.bytesSent("b", "hls", Number.NaN);
    expect(await m.render()).not.toContain('broadcast="b"');
  });

  it("forgetBroadcast removes every per-broadcast series and nothing else", async () => {
    const m = new LvqrMetrics({ processMetrics: false });
    m.bytesReceived("old", 1);
    m.bytesSent("old", "hls", 1);
    m.bytesSent("old", "dash", 1);
    m.observeGlassToGlass("old", "moq", 1);
    m.bytesReceived("new", 1);
    m.forgetBroadcast("old");
    m.forgetBroadcast("never-seen");
    const text = await m.render();
    expect(text).not.toContain('"old"');
    expect(text).toContain('lvqr_bytes_received_total{broadcast="new"} 1');
  });

  it("appends the shared process metrics when enabled", async () => {
    const a = new LvqrMetrics();
    const b = new LvqrMetrics();
    a.authFailure("admin");
    const text = await a.render();
    expect(text).toContain('lvqr_auth_failures_total{entry="admin"} 1');
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(text).toContain("nodejs_heap_size_used_bytes");
    // The second instance shares the process collector and keeps its own LVQR metrics.
    const other = await b.render();
    expect(other).toContain("process_cpu_user_seconds_total");
    expect(other).not.toContain('entry="admin"');
  });

  it("rejects unusable histogram buckets", () => {
    expect(() => new LvqrMetrics({ processMetrics: false, glassToGlassBucketsMs: [] })).toThrow(AdminError);
    expect(() => new LvqrMetrics({ processMetrics: false, glassToGlassBucketsMs: [5, 5] })).toThrow(
      /increasing/,
    );
  });
});
