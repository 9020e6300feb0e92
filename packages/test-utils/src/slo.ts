/**
 * Reading the latency SLO API (`GET /api/v1/slo`) of a server: `slo()` returns the rows,
 * `waitForSlo()` polls until a (broadcast, transport) row has enough samples.
 */
import type { SloEntry } from "@lvqr/admin";
import { httpGet } from "./clients/http-get.ts";
import { TestUtilsError } from "./errors.ts";
import type { TestServer } from "./test-server.ts";
import { waitFor } from "./wait-for.ts";

/** Options of {@link slo}. */
export interface SloOptions {
  /** Admin bearer token, when the server has one. */
  readonly token?: string;
  readonly timeoutMs?: number;
}

function sloUrl(target: TestServer | string): string {
  if (typeof target === "string") return new URL("/api/v1/slo", target).toString();
  return target.adminUrl("/api/v1/slo");
}

/**
 * Reads `/api/v1/slo` from a TestServer or an admin base URL (`http://host:port`). Rejects
 * with `TEST_UTILS_HTTP` (naming the status) unless the server answers 200 with the documented shape.
 */
export async function slo(target: TestServer | string, options: SloOptions = {}): Promise<SloEntry[]> {
  const url = sloUrl(target);
  const response = await httpGet(url, {
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } }),
  });
  if (response.status !== 200) {
    throw new TestUtilsError(
      "TEST_UTILS_HTTP",
      `GET ${url} answered ${response.status}: ${response.text().slice(0, 200)}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(response.text());
  } catch (error) {
    throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${url} did not answer JSON`, { cause: error });
  }
  const rows = (body as { broadcasts?: unknown }).broadcasts;
  if (!Array.isArray(rows))
    throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${url} answered without a "broadcasts" array`);
  return rows as SloEntry[];
}

/** Polls `/api/v1/slo` until the row for (broadcast, transport) has at least `minSamples` samples. */
export function waitForSlo(
  target: TestServer | string,
  match: { broadcast: string; transport: string; minSamples?: number },
  options: SloOptions & { waitMs?: number } = {},
): Promise<SloEntry> {
  const minSamples = match.minSamples ?? 1;
  let last: SloEntry[] = [];
  return waitFor(
    async () => {
      last = await slo(target, options);
      return last.find(
        (row) =>
          row.broadcast === match.broadcast &&
          row.transport === match.transport &&
          row.sample_count >= minSamples,
      );
    },
    {
      timeoutMs: options.waitMs ?? 15_000,
      intervalMs: 100,
      message: `an SLO row for ${match.broadcast} over ${match.transport} with ${minSamples}+ samples (rows: ${last.map((r) => `${r.broadcast}/${r.transport}:${r.sample_count}`).join(", ") || "none"})`,
    },
  );
}
