/**
 * The publishing side of the ingest benchmark, run as a separate process so the parent measures
 * only the server's CPU. Usage: publisher-child.ts <rtmp url> <seconds> <bits/s> <realtime 0|1> [publishers]
 * With several publishers, each publishes `<url>-<i>` on its own connection, their frame clocks
 * spread across one frame interval as independent encoders' would be.
 * With a `tcp://host:port` URL it writes the same chunk stream to a plain socket (no handshake,
 * no commands): the baseline of what reading that traffic costs Node itself.
 */
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import {
  buildAacSequenceHeaderTag,
  buildAvcSequenceHeaderTag,
  ChunkStreamWriter,
  RtmpPublisher,
} from "../src/index.ts";
import { mediaTags } from "./media-stream.ts";

const [url, secondsArg, bitsArg, realtimeArg, publishersArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const realtime = realtimeArg === "1";
const tags = mediaTags(seconds, Number(bitsArg));

if (url!.startsWith("tcp://")) {
  const target = new URL(url!);
  const socket = connect(Number(target.port), target.hostname);
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.setNoDelay(true);
  const writer = new ChunkStreamWriter();
  writer.setChunkSize(4096);
  process.send?.({ started: true });
  const start = performance.now();
  let bytes = 0;
  for (const tag of tags) {
    const wait = start + tag.timestamp - performance.now();
    if (realtime && wait > 0) await new Promise((r) => setTimeout(r, wait));
    const chunk = writer.encode({
      chunkStreamId: tag.type === 9 ? 6 : 4,
      typeId: tag.type,
      streamId: 1,
      timestamp: tag.timestamp,
      payload: tag.body,
    });
    bytes += chunk.byteLength;
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
  process.send?.({ done: true, tags: tags.length, bytes, ms: performance.now() - start });
  process.exit(0);
}

const fixtures = new URL("../test/fixtures/", import.meta.url);
const publisherCount = Number(publishersArg ?? "1");
const publishers = await Promise.all(
  Array.from({ length: publisherCount }, async (_, i) => {
    const publisher = await RtmpPublisher.connect(publisherCount === 1 ? url! : `${url}-${i}`);
    await publisher.sendVideo(
      0,
      buildAvcSequenceHeaderTag(new Uint8Array(readFileSync(new URL("avc-baseline-320x240.avcC", fixtures)))),
    );
    await publisher.sendAudio(
      0,
      buildAacSequenceHeaderTag(new Uint8Array(readFileSync(new URL("aac-lc-44100-mono.asc", fixtures)))),
    );
    return publisher;
  }),
);
process.send?.({ started: true });
const start = performance.now();
await Promise.all(
  publishers.map(async (publisher, i) => {
    // Independent encoders do not share a frame clock: offset each within one frame interval.
    const offset = realtime ? ((i * 1000) / 30 / publisherCount) % (1000 / 30) : 0;
    for (const tag of tags) {
      if (realtime) {
        const wait = start + offset + tag.timestamp - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (tag.type === 9) await publisher.sendVideo(tag.timestamp, tag.body);
      else await publisher.sendAudio(tag.timestamp, tag.body);
    }
    await publisher.close();
  }),
);
process.send?.({
  done: true,
  tags: tags.length * publisherCount,
  bytes: publishers.reduce((n, p) => n + p.sent.bytesSent, 0),
  ms: performance.now() - start,
});
