/**
 * Two nodes sharing one Redis hand a broadcast over.
 *
 *   redis-server --port 6390 --save '' --appendonly no &
 *   node --conditions=@lvqr/source examples/handover.ts redis://127.0.0.1:6390
 *
 * (Without `--conditions=@lvqr/source`, build first with `tsc -b`; the import then resolves to dist/.)
 */

import { BroadcastBusyError, ClusterNode, type RedisStore } from "@lvqr/cluster";

const url = process.argv[2] ?? "redis://127.0.0.1:6379";
const keyPrefix = `example-${process.pid}:`;

const a = await ClusterNode.start({
  nodeId: "node-a",
  redisUrl: url,
  keyPrefix,
  endpoints: { moq: "http://10.0.0.1:4443", hls: "http://10.0.0.1:8888" },
});
const b = await ClusterNode.start({
  nodeId: "node-b",
  redisUrl: url,
  keyPrefix,
  endpoints: { moq: "http://10.0.0.2:4443", hls: "http://10.0.0.2:8888" },
});
await (a.store as RedisStore).ready();
await (b.store as RedisStore).ready();

// A publisher starts "live/show" on node A: A claims it and reports media as frames arrive.
const claimA = await a.claims.claim("live/show");
const frames = setInterval(() => claimA.markMedia(), 33);
claimA.on("lost", (info) => console.log(`A lost live/show (${info.reason}); disconnect the local publisher`));
console.log(`A owns live/show with epoch ${claimA.epoch}`);

// Node B finds the owner (for relay-pull or a redirect) ...
const where = await b.ownerOf("live/show");
console.log(`B sees owner ${where?.record.nodeId} at ${where?.node?.endpoints.moq}`);

// ... and a second live publisher of the same name on B is refused ("busy").
try {
  await b.claims.claim("live/show");
} catch (err) {
  if (err instanceof BroadcastBusyError) console.log(`B refused: ${err.message}`);
  else throw err;
}

// The publisher moves: it stops on A (A releases) and starts on B (B claims, with a higher epoch).
clearInterval(frames);
await claimA.release();
const claimB = await b.claims.claim("live/show");
console.log(`B owns live/show with epoch ${claimB.epoch} (> ${claimA.epoch})`);
console.log(JSON.stringify(await a.broadcastsJson()));
console.log(JSON.stringify((await a.nodesJson()).map((n) => ({ id: n.id, endpoints: n.endpoints }))));

await claimB.release();
await Promise.all([a.close(), b.close()]);
