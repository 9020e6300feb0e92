/**
 * V8 heap settings for the `lvqr` command, applied before anything else is loaded. A media server
 * allocates fast (every request, every frame) but keeps little. Left alone, V8 grows the young
 * generation to 2 x 64 MiB and lets the old generation grow to several times what is live, so the
 * process sits at about twice the memory it needs.
 *
 * - The young generation is bounded by `--max-semi-space-size=8` on the command's `#!` line (and
 *   in `./lvqr serve`): V8 reads that flag only at startup.
 * - The old generation's growth is bounded here: the next GC limit becomes 1.5 x the live size,
 *   instead of up to 4 x.
 *
 * Together they halve the server's memory under load (about 410 MB to 205 MB in the server
 * benchmark, see the README) for at most a few % of one core. A flag given on the command line or in `NODE_OPTIONS` wins; applications that
 * embed `start()` choose their own flags.
 */
import v8 from "node:v8";

const HEAP_GROWING_PERCENT = 50;

const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
if (!given.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg))) {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
