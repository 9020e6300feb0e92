/**
 * The directory a server writes its DVR files to: `<dataDir>/dvr-<pid>-<random>`, one per running
 * server (so servers sharing a data directory never touch each other's files), removed at
 * shutdown. Directories left by servers that died without shutting down are removed at startup.
 */
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";

const PATTERN = /^dvr-(\d+)-[A-Za-z0-9]+$/;

/** Creates this server's DVR directory after clearing dead servers' ones; returns its path. */
export async function createDvrDirectory(dataDir: string, logger: Logger): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  for (const name of await readdir(dataDir)) {
    const pid = PATTERN.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || isRunning(Number(pid))) continue;
    await rm(path.join(dataDir, name), { recursive: true, force: true });
    logger.info({ directory: name }, "removed DVR files left by a server that did not shut down");
  }
  return mkdtemp(path.join(dataDir, `dvr-${process.pid}-`));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
