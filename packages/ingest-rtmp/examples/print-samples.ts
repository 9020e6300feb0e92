/**
 * A bare RTMP server that prints what publishers send.
 *
 *   node examples/print-samples.ts [port]        (default 1935)
 *   ffmpeg -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine \
 *     -c:v libx264 -g 60 -c:a aac -f flv "rtmp://127.0.0.1:1935/live/demo?key=secret"
 *
 * Publishes are allowed when the stream's `key` query parameter is "secret".
 */
import { RtmpServer } from "../src/index.ts";

const port = Number(process.argv[2] ?? 1935);

const server = new RtmpServer({
  authorize: async ({ app, stream, query }) =>
    query.get("key") === "secret"
      ? { allow: true }
      : {
          allow: false,
          status: "NetStream.Publish.Unauthorized",
          description: `wrong key for ${app}/${stream}`,
        },
  logger: {
    debug: () => {},
    info: (fields, msg) => console.log(`[info] ${msg}`, fields),
    warn: (fields, msg) => console.log(`[warn] ${msg}`, fields),
    error: (fields, msg) => console.log(`[error] ${msg}`, fields),
  },
});

server.on("publish", (session) => {
  console.log(`publish ${session.name} from ${session.remoteAddress} (${session.handshake} handshake)`);
  session.on("config", (config) => {
    if (config.kind === "video")
      console.log(`  video ${config.codecString} ${config.width}x${config.height}`);
    else console.log(`  audio ${config.codecString} ${config.sampleRate} Hz, ${config.channels} ch`);
  });
  session.on("metadata", (metadata) => console.log("  metadata", metadata));
  session.on("sample", (s) => {
    const flag = s.keyframe && s.kind === "video" ? " key" : "";
    console.log(
      `  ${s.kind} dts ${s.dts} pts ${s.pts} ${s.data.byteLength} bytes${flag}${s.discontinuity ? " (discontinuity)" : ""}`,
    );
  });
  session.on("end", (reason, error) =>
    console.log(`end ${session.name}: ${reason}${error ? ` (${error.code}: ${error.message})` : ""}`),
  );
});
server.on("reject", (r) => console.log(`rejected ${r.app}/${r.stream}: ${r.status} ${r.description}`));

const address = await server.listen(port);
console.log(
  `RTMP server on port ${address.port}; publish to rtmp://127.0.0.1:${address.port}/live/<name>?key=secret`,
);
process.once("SIGINT", () => void server.close().then(() => process.exit(0)));
