import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { buildExampleServer } from "../examples/basic-server.ts";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe("the README example", () => {
  it("serves health, SLO samples from its stand-in egress, client samples and metrics over HTTP", async () => {
    const app = await buildExampleServer("t0ken");
    closers.push(() => app.close());
    await app.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const auth = { authorization: "Bearer t0ken" };

    expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok");
    expect((await fetch(`${base}/api/v1/slo`)).status).toBe(401);

    const sample = { broadcast: "live/demo", transport: "moq", ingest_ts_ms: 10, render_ts_ms: 410 };
    const pushed = await fetch(`${base}/api/v1/slo/client-sample`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(sample),
    });
    expect(pushed.status).toBe(204);

    // The stand-in egress records every 500 ms; wait (generously) for one HLS sample.
    const deadline = Date.now() + 5_000;
    let slo: { broadcasts: Array<{ transport: string; p50_ms: number; sample_count: number }> } = {
      broadcasts: [],
    };
    while (Date.now() < deadline) {
      slo = (await (await fetch(`${base}/api/v1/slo`, { headers: auth })).json()) as typeof slo;
      if (slo.broadcasts.some((e) => e.transport === "hls")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const hls = slo.broadcasts.find((e) => e.transport === "hls")!;
    expect(hls.p50_ms).toBeGreaterThanOrEqual(150);
    expect(hls.p50_ms).toBeLessThanOrEqual(250);
    expect(slo.broadcasts.find((e) => e.transport === "moq")).toMatchObject({ p50_ms: 400, sample_count: 1 });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('lvqr_slo_client_samples_total{transport="moq"} 1');
    expect(metrics).toContain(
      'lvqr_subscriber_glass_to_glass_ms_count{broadcast="live/demo",transport="hls"}',
    );
    expect(metrics).toContain("process_resident_memory_bytes");
  });
});
