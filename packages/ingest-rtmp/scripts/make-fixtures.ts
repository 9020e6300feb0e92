/**
 * Regenerates test/fixtures from real encoder output (ffmpeg with libx264, libx265, libaom-av1
 * and its native AAC encoder), and records the client-to-server bytes of a short real ffmpeg
 * RTMP publish through a recording proxy. ffprobe's view of each encoding goes to
 * expected.json, which the codec tests compare the parsers against.
 *
 *   node packages/ingest-rtmp/scripts/make-fixtures.ts
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseFlvFile, RtmpServer } from "../src/index.ts";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "test", "fixtures");
const work = mkdtempSync(join(tmpdir(), "ingest-rtmp-fixtures-"));

function ffmpeg(args: string[]): void {
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: "inherit" });
}

function ffprobeStream(file: string, select: string): Record<string, unknown> {
  const out = execFileSync("ffprobe", [
    "-v",
    "error",
    "-select_streams",
    select,
    "-show_streams",
    "-of",
    "json",
    file,
  ]);
  const stream = JSON.parse(out.toString()).streams[0];
  const keep = ["codec_name", "profile", "level", "width", "height", "sample_rate", "channels", "pix_fmt"];
  return Object.fromEntries(keep.filter((k) => stream[k] !== undefined).map((k) => [k, stream[k]]));
}

// Finds a box (e.g. hvcC, av1C) anywhere in an MP4 by its type, and returns its payload.
function findBox(file: Uint8Array, type: string): Uint8Array {
  const t = Buffer.from(type, "latin1");
  const at = Buffer.from(file).indexOf(t);
  if (at < 4) throw new Error(`no ${type} box`);
  const size = new DataView(file.buffer, file.byteOffset).getUint32(at - 4);
  return file.subarray(at + 4, at - 4 + size);
}

const expected: Record<string, Record<string, unknown>> = {};

function avcFixture(name: string, args: string[]): void {
  const flv = join(work, `${name}.flv`);
  ffmpeg([
    "-f",
    "lavfi",
    "-i",
    `testsrc2=size=${args[0]}:rate=30`,
    "-t",
    "0.2",
    "-c:v",
    "libx264",
    ...args.slice(1),
    "-an",
    flv,
  ]);
  const tag = parseFlvFile(readFileSync(flv)).find((t) => t.type === 9 && t.body[1] === 0)!;
  writeFileSync(join(fixtures, `${name}.avcC`), tag.body.subarray(5));
  expected[name] = ffprobeStream(flv, "v:0");
}

function aacFixture(name: string, rate: number, channels: number): void {
  const flv = join(work, `${name}.flv`);
  ffmpeg([
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=440:sample_rate=${rate}`,
    "-ac",
    String(channels),
    "-t",
    "0.2",
    "-c:a",
    "aac",
    flv,
  ]);
  const tag = parseFlvFile(readFileSync(flv)).find((t) => t.type === 8 && t.body[1] === 0)!;
  writeFileSync(join(fixtures, `${name}.asc`), tag.body.subarray(2));
  expected[name] = ffprobeStream(flv, "a:0");
}

function mp4Fixture(name: string, box: string, args: string[]): void {
  const mp4 = join(work, `${name}.mp4`);
  ffmpeg([
    "-f",
    "lavfi",
    "-i",
    `testsrc2=size=${args[0]}:rate=30`,
    "-t",
    "0.2",
    ...args.slice(1),
    "-an",
    mp4,
  ]);
  writeFileSync(join(fixtures, `${name}.${box}`), findBox(readFileSync(mp4), box));
  expected[name] = ffprobeStream(mp4, "v:0");
}

avcFixture("avc-baseline-320x240", ["320x240", "-profile:v", "baseline", "-preset", "ultrafast"]);
avcFixture("avc-high-1920x1080", ["1920x1080", "-profile:v", "high", "-preset", "veryfast", "-level", "4.0"]);
avcFixture("avc-high444-176x144", [
  "176x144",
  "-profile:v",
  "high444",
  "-pix_fmt",
  "yuv444p",
  "-preset",
  "ultrafast",
]);
aacFixture("aac-lc-44100-mono", 44100, 1);
aacFixture("aac-lc-48000-stereo", 48000, 2);
mp4Fixture("hevc-main-640x360", "hvcC", [
  "640x360",
  "-c:v",
  "libx265",
  "-preset",
  "ultrafast",
  "-tag:v",
  "hvc1",
  "-x265-params",
  "log-level=error",
]);
mp4Fixture("av1-main-320x240", "av1C", ["320x240", "-c:v", "libaom-av1", "-cpu-used", "8", "-row-mt", "1"]);
writeFileSync(join(fixtures, "expected.json"), `${JSON.stringify(expected, null, 2)}\n`);

// A real publish, recorded between ffmpeg and the server.
const server = new RtmpServer();
const { port } = await server.listen(0, "127.0.0.1");
const chunks: Buffer[] = [];
const proxy = createServer((client) => {
  const upstream = connect(port, "127.0.0.1");
  client.on("data", (d) => {
    chunks.push(Buffer.from(d));
    upstream.write(d);
  });
  upstream.on("data", (d) => client.write(d));
  client.on("close", () => upstream.end());
  upstream.on("close", () => client.destroy());
});
await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
const proxyPort = (proxy.address() as { port: number }).port;
await new Promise<void>((resolve, reject) => {
  const ff = spawn(
    "ffmpeg",
    [
      "-hide_banner",
      "-loglevel",
      "error",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=160x120:rate=15",
      "-f",
      "lavfi",
      "-i",
      "sine=frequency=440:sample_rate=22050",
      "-t",
      "1",
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-g",
      "15",
      "-bf",
      "2",
      "-c:a",
      "aac",
      "-b:a",
      "32k",
      "-f",
      "flv",
      `rtmp://127.0.0.1:${proxyPort}/live/capture`,
    ],
    { stdio: "inherit" },
  );
  ff.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
});
await new Promise((r) => setTimeout(r, 200));
writeFileSync(join(fixtures, "ffmpeg-publish.bin"), Buffer.concat(chunks));
proxy.close();
await server.close();
rmSync(work, { recursive: true, force: true });
console.log("fixtures written to", fixtures);
