/**
 * Child process of webtransport.test.ts: a relay on its defaults (WebTransport enabled) that
 * prints, after each step, whether `@fails-components/webtransport` has been imported so far.
 * Module loading is watched with `module.registerHooks`, so the answer is Node's own.
 *
 *   node --conditions=@lvqr/source test/lazy-webtransport-relay.ts
 */
import { get } from "node:https";
import { registerHooks } from "node:module";

/** The library's files (the HTTP/3 addon is another package and does not match). */
const LIBRARY_FILES = "/@fails-components/webtransport/";
let imported = false;
registerHooks({
  load(url, context, nextLoad) {
    if (url.includes(LIBRARY_FILES)) imported = true;
    return nextLoad(url, context);
  },
});

const { connectMoq, OriginProducer, serveMoq } = await import("@lvqr/moq-lite");

function report(step: string, extra: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ step, imported, ...extra }));
}

const origin = new OriginProducer();
const server = await serveMoq({ port: 0, host: "127.0.0.1", origin });
const port = server.address!.port;
report("listening", { transports: server.transports });

const websocket = await connectMoq(`ws://127.0.0.1:${port}/room`);
await websocket.close();
report("websocket session");

// The first TLS connection: an HTTPS request for the certificate hash.
const sha256 = await new Promise<string>((resolve, reject) => {
  get(`https://127.0.0.1:${port}/certificate.sha256`, { rejectUnauthorized: false }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      body += chunk;
    });
    res.on("end", () => resolve(body));
  }).on("error", reject);
});
report("tls connection", { sha256Matches: sha256 === server.certificateSha256 });

const webTransport = await connectMoq(`http://127.0.0.1:${port}/room`, { transport: "webtransport" });
report("webtransport session", { transport: webTransport.transport });
await webTransport.close();
await server.close();
report("closed");
