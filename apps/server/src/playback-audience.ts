/**
 * Who is watching over HTTP. HLS and DASH are request/response, so a "subscriber" is a client that
 * fetched something of a broadcast recently; this counts them (by address and user agent) and the
 * bytes served, per protocol and broadcast, for `/api/v1/stats`, `/api/v1/streams` and metrics.
 */

/** A viewer counts as watching for this long after its last request. */
const ACTIVE_WINDOW_MS = 10_000;
/** Clients remembered per broadcast and protocol; beyond this the oldest are forgotten. */
const MAX_CLIENTS = 50_000;

interface Audience {
  /** Client key → last request (Unix ms), in insertion order of the last update. */
  readonly clients: Map<string, number>;
  bytes: number;
}

/** Viewer counts and bytes sent per (protocol, broadcast) for the HTTP egresses. */
export class PlaybackAudience {
  readonly #audiences = new Map<string, Audience>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Notes a served response of `bytes` for `broadcast` to the client identified by `clientKey`. */
  record(protocol: string, broadcast: string, clientKey: string, bytes: number): void {
    const key = `${protocol}\u0000${broadcast}`;
    let audience = this.#audiences.get(key);
    if (!audience) {
      audience = { clients: new Map(), bytes: 0 };
      this.#audiences.set(key, audience);
    }
    audience.bytes += bytes;
    audience.clients.delete(clientKey);
    audience.clients.set(clientKey, this.#now());
    if (audience.clients.size > MAX_CLIENTS) {
      const oldest = audience.clients.keys().next().value;
      if (oldest !== undefined) audience.clients.delete(oldest);
    }
  }

  /** Clients that requested something of `broadcast` over `protocol` in the last 10 s. */
  viewers(protocol: string, broadcast: string): number {
    const audience = this.#audiences.get(`${protocol}\u0000${broadcast}`);
    if (!audience) return 0;
    this.#prune(audience);
    return audience.clients.size;
  }

  /** Bytes served for `broadcast` over `protocol` since it was first seen. */
  bytesSent(protocol: string, broadcast: string): number {
    return this.#audiences.get(`${protocol}\u0000${broadcast}`)?.bytes ?? 0;
  }

  /** Active viewers over `protocol` across every broadcast. */
  totalViewers(protocol: string): number {
    let total = 0;
    for (const [key, audience] of this.#audiences) {
      if (!key.startsWith(`${protocol}\u0000`)) continue;
      this.#prune(audience);
      total += audience.clients.size;
    }
    return total;
  }

  /** Drops what is known about `broadcast` (called some time after it ends). */
  forget(broadcast: string): void {
    for (const key of [...this.#audiences.keys()]) {
      if (key.endsWith(`\u0000${broadcast}`)) this.#audiences.delete(key);
    }
  }

  #prune(audience: Audience): void {
    const cutoff = this.#now() - ACTIVE_WINDOW_MS;
    // Entries are in order of last update, so stale ones are at the front.
    for (const [client, seen] of audience.clients) {
      if (seen >= cutoff) break;
      audience.clients.delete(client);
    }
  }
}
