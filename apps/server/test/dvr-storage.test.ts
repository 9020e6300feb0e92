import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loopbackEphemeralConfig } from "../src/config.ts";
import { createDvrDirectory } from "../src/dvr-directory.ts";
import { start } from "../src/start.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "lvqr-dvr-dir-"));
  dirs.push(dir);
  return dir;
}

describe("the server's DVR files", () => {
  it("is one per server, and a dead server's leftovers are removed at startup", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "lvqr-dvr-dir-"));
    dirs.push(dataDir);
    // A pid above Linux's pid_max never runs; this process (the parent of none) certainly does.
    const dead = path.join(dataDir, "dvr-4194305-Ab12Cd");
    const alive = path.join(dataDir, `dvr-${process.ppid}-Zz99Yy`);
    const unrelated = path.join(dataDir, "dvr-notes");
    for (const dir of [dead, alive, unrelated]) mkdirSync(dir);

    const created = await createDvrDirectory(dataDir, pino({ level: "silent" }));
    expect(path.dirname(created)).toBe(dataDir);
    expect(path.basename(created)).toMatch(new RegExp(`^dvr-${process.pid}-[A-Za-z0-9]+$`));
    expect(existsSync(created)).toBe(true);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(alive)).toBe(true);
    expect(existsSync(unrelated)).toBe(true);

    const second = await createDvrDirectory(dataDir, pino({ level: "silent" }));
    expect(second).not.toBe(created);
    expect(readdirSync(dataDir).filter((name) => name.startsWith(`dvr-${process.pid}-`))).toHaveLength(2);
  });

  it("creates a missing data directory", async () => {
    const parent = mkdtempSync(path.join(tmpdir(), "lvqr-dvr-dir-"));
    dirs.push(parent);
    const created = await createDvrDirectory(path.join(parent, "new", "data"), pino({ level: "silent" }));
    expect(existsSync(created)).toBe(true);
  });

  it("a server with no time window (--hls-dvr-window 0) starts, spills, and removes its DVR directory at shutdown", async () => {
    const dataDir = scratchDir();
    const server = await start(loopbackEphemeralConfig({ dataDir, hls: { dvrWindowS: 0 } }));
    const dvr = readdirSync(dataDir).filter((name) => name.startsWith("dvr-"));
    expect(dvr).toHaveLength(1);
    await server.shutdown();
    expect(existsSync(path.join(dataDir, dvr[0]!))).toBe(false);
  });

  it("keeps everything in memory (no directory) when the memory window covers the DVR window", async () => {
    const dataDir = scratchDir();
    const server = await start(loopbackEphemeralConfig({ dataDir, hls: { dvrWindowS: 30, dvrMemoryS: 30 } }));
    expect(readdirSync(dataDir).filter((name) => name.startsWith("dvr-"))).toHaveLength(0);
    await server.shutdown();
  });
});
