/**
 * Bundles the official `<moq-watch>` element (`@moq/watch/element`, with @moq/hang, @moq/net and
 * friends) into browser-ready ES modules with vite's `build()` API, so a test page can load the
 * real player without a CDN. A library build of the element takes well under a second.
 */
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { build } from "vite";

/** The bundle's files, relative to its directory; `entry` is the module a page imports. */
export interface MoqWatchBundle {
  readonly dir: string;
  readonly entry: string;
  readonly files: readonly string[];
}

/** Builds `@moq/watch/element` into `outDir` (created if needed). */
export async function buildMoqWatchBundle(outDir: string): Promise<MoqWatchBundle> {
  const require = createRequire(import.meta.url);
  const element = require.resolve("@moq/watch/element");
  await build({
    configFile: false,
    logLevel: "silent",
    root: path.dirname(element),
    build: {
      outDir,
      emptyOutDir: true,
      write: true,
      minify: false,
      sourcemap: false,
      lib: { entry: element, formats: ["es"], fileName: () => "moq-watch.js" },
      rolldownOptions: { output: { chunkFileNames: "[name]-[hash].js" } },
    },
  });
  const files = readdirSync(outDir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(outDir, path.join(entry.parentPath, entry.name)));
  if (!files.includes("moq-watch.js")) throw new Error(`vite produced no moq-watch.js in ${outDir}`);
  return { dir: outDir, entry: "moq-watch.js", files };
}
