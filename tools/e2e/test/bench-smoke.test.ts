/**
 * Every workspace package's benchmark in smoke mode: the packages are found from the workspace
 * globs in pnpm-workspace.yaml, and each one with a `bench:smoke` script gets it run through pnpm
 * (as `pnpm run bench:smoke` in its folder) with a deadline. Each must exit 0, so a benchmark that
 * rots fails CI instead of being discovered the day someone needs its numbers.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TIMEOUT_MS = 5 * 60_000;

interface BenchPackage {
  readonly name: string;
  readonly dir: string;
  readonly script: string;
}

/** Workspace packages (from the `packages:` globs of pnpm-workspace.yaml) with a `bench:smoke` script. */
function benchPackages(): BenchPackage[] {
  const workspace = readFileSync(path.join(ROOT, "pnpm-workspace.yaml"), "utf8");
  const block = /^packages:\s*\n((?:\s+-\s*.+\n?)+)/m.exec(workspace)?.[1] ?? "";
  const globs = [...block.matchAll(/-\s*["']?([^"'\n]+?)["']?\s*$/gm)].map((match) => match[1]!);
  const out: BenchPackage[] = [];
  for (const glob of globs) {
    // The workspace uses "<folder>/*" globs only; anything else would need a real glob library.
    if (!glob.endsWith("/*") || glob.slice(0, -2).includes("*"))
      throw new Error(`unsupported workspace glob ${glob}`);
    const parent = path.join(ROOT, glob.slice(0, -2));
    if (!existsSync(parent)) continue;
    for (const entry of readdirSync(parent, { withFileTypes: true })) {
      const manifest = path.join(parent, entry.name, "package.json");
      if (!entry.isDirectory() || !existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, "utf8")) as {
        name: string;
        scripts?: Record<string, string>;
      };
      const script = pkg.scripts?.["bench:smoke"];
      if (script) out.push({ name: pkg.name, dir: path.dirname(manifest), script });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Runs `pnpm run bench:smoke` in `dir`; resolves with the exit code and the output's tail. */
function runBenchSmoke(
  dir: string,
): Promise<{ code: number | null; signal: string | null; output: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("pnpm", ["run", "bench:smoke"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    // The bench may spawn servers and encoders: on timeout, end its whole process group.
    const timer = setTimeout(() => {
      output += `\n[bench-smoke] timed out after ${TIMEOUT_MS / 1000} s`;
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run pnpm (is it on PATH? ./lvqr test puts it there): ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, seconds: (performance.now() - started) / 1000 });
    });
  });
}

const packages = benchPackages();

describe("every package's benchmark runs in smoke mode", () => {
  it("finds the benchmarks (the server's among them)", () => {
    expect(packages.map((pkg) => pkg.name)).toContain("@lvqr/server");
  });

  for (const pkg of packages) {
    it(
      `${pkg.name}: pnpm run bench:smoke exits 0`,
      async () => {
        const result = await runBenchSmoke(pkg.dir);
        const tail = result.output.trimEnd().split("\n").slice(-15).join("\n");
        console.log(
          `[bench:smoke] ${pkg.name} (${pkg.script}) exit ${result.code ?? result.signal} in ${result.seconds.toFixed(1)} s\n${tail}`,
        );
        expect(result.code, `${pkg.name} bench:smoke output:\n${tail}`).toBe(0);
      },
      TIMEOUT_MS + 30_000,
    );
  }
});
