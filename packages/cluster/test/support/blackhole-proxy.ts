/**
 * A userspace TCP proxy that can turn into a blackhole: while `blackhole(true)` is in effect,
 * connections stay open but every byte in either direction is dropped and closes are not passed on,
 * which is what a network partition looks like to both ends (no RST, no FIN, just silence). New
 * connections are accepted and then starve the same way. `blackhole(false)` heals it: data flows
 * again on connections that survived and on new ones.
 */

import net from "node:net";

/** A TCP proxy to one upstream address, with a partition switch. */
export class BlackholeProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #upstreamHost: string;
  readonly #upstreamPort: number;
  #holed = false;
  /** Bytes dropped while partitioned (both directions). */
  dropped = 0;

  private constructor(upstreamHost: string, upstreamPort: number) {
    this.#upstreamHost = upstreamHost;
    this.#upstreamPort = upstreamPort;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Starts a proxy on an ephemeral loopback port in front of `upstreamHost:upstreamPort`. */
  static async start(upstreamPort: number, upstreamHost = "127.0.0.1"): Promise<BlackholeProxy> {
    const proxy = new BlackholeProxy(upstreamHost, upstreamPort);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  /** The proxy's port on 127.0.0.1. */
  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** `redis://127.0.0.1:<proxy port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get partitioned(): boolean {
    return this.#holed;
  }

  /** Starts (true) or ends (false) the partition. */
  blackhole(on: boolean): void {
    this.#holed = on;
  }

  #accept(client: net.Socket): void {
    const upstream = net.connect(this.#upstreamPort, this.#upstreamHost);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on("data", (chunk: Buffer) => {
        if (this.#holed) {
          this.dropped += chunk.length;
          return;
        }
        if (!to.destroyed) to.write(chunk);
      });
      from.on("end", () => {
        if (!this.#holed && !to.destroyed) to.end();
      });
      from.on("close", () => {
        this.#sockets.delete(from);
        if (!this.#holed) to.destroy();
      });
      from.on("error", () => {});
    };
    forward(client, upstream);
    forward(upstream, client);
  }

  /** Closes the listener and every proxied connection. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
