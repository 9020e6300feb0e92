/**
 * Keeps the DVR window off the heap: closed segments older than the newest few seconds are
 * written to files and their bytes are released, so a broadcast costs memory for its live edge
 * only, however long its DVR window. Live viewers (LL-HLS parts, the newest segments, DASH at the
 * live edge) keep being served from memory; a viewer seeking back reads the file.
 *
 * A segment's bytes are released only once its file is completely written; a failed write leaves
 * it in memory (where the byte budget still bounds it). Evicted segments' files are deleted.
 */
import { mkdir, open, readFile, rm, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type { SegmentRecord } from "./rendition.ts";

/** Where older DVR segments go. */
export interface DvrSpillOptions {
  /** A directory for this spill alone: it is created if missing, and removed by `close()`. */
  readonly directory: string;
  /** Seconds of the newest closed segments kept in memory per rendition. Default 12. */
  readonly memoryS?: number;
  /** Told about a failed write or delete (the segment then stays in memory). */
  readonly onError?: (error: Error) => void;
}

/** What a spill holds right now. */
export interface DvrSpillStats {
  readonly files: number;
  readonly bytes: number;
  readonly writeErrors: number;
}

const EMPTY = new Uint8Array(0);

/** Writes old segments to files and reads them back. One per hub. */
export class DvrSpill {
  readonly directory: string;
  readonly memoryS: number;
  readonly #onError: (error: Error) => void;
  #ready: Promise<unknown> | undefined;
  #nextFile = 0;
  /** Segments being written (a release while writing deletes the file afterwards). */
  readonly #writing: Set<SegmentRecord> = new Set();
  readonly #released: WeakSet<SegmentRecord> = new WeakSet();
  #files = 0;
  #bytes = 0;
  #writeErrors = 0;
  #closed = false;

  constructor(options: DvrSpillOptions) {
    if (!(options.memoryS === undefined || options.memoryS >= 0)) {
      throw new RangeError(`memoryS ${options.memoryS} is invalid (it must be 0 or more seconds)`);
    }
    this.directory = options.directory;
    this.memoryS = options.memoryS ?? 12;
    this.#onError = options.onError ?? (() => {});
  }

  /** Files and bytes on disk, and writes that failed. */
  get stats(): DvrSpillStats {
    return { files: this.#files, bytes: this.#bytes, writeErrors: this.#writeErrors };
  }

  /**
   * Spills every closed segment of `segments` (oldest first) that lies more than `memoryS`
   * behind the newest one and is still in memory.
   */
  spillOlderThanLiveEdge(segments: readonly SegmentRecord[]): void {
    if (this.#closed) return;
    let newerS = 0;
    for (let i = segments.length - 1; i >= 0; i--) {
      const segment = segments[i]!;
      if (newerS >= this.memoryS && segment.spilled === undefined && !this.#writing.has(segment)) {
        void this.#spill(segment);
      }
      newerS += segment.durationTicks / segment.init.timescale;
    }
  }

  /** The segment left the DVR window: its file goes (now, or once its write finishes). */
  release(segment: SegmentRecord): void {
    this.#released.add(segment);
    const spilled = segment.spilled;
    if (spilled === undefined) return;
    this.#files--;
    this.#bytes -= segment.size;
    unlink(spilled.file).catch((error: Error) => this.#report(error));
  }

  /** The bytes of a closed segment, from memory or from its file. */
  static segmentBytes(segment: SegmentRecord): Uint8Array | Promise<Uint8Array> {
    const spilled = segment.spilled;
    return spilled === undefined ? segment.bytes : readFile(spilled.file);
  }

  /** The bytes of one closed part of `segment`, from memory or from the segment's file. */
  static partBytes(segment: SegmentRecord, index: number): Uint8Array | Promise<Uint8Array> {
    const spilled = segment.spilled;
    if (spilled === undefined) return segment.parts[index]!.bytes;
    const [start, end] = spilled.parts[index]!;
    return readRange(spilled.file, start, end);
  }

  /** Stops spilling and removes the directory with every file in it. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#ready?.catch(() => {});
    await rm(this.directory, { recursive: true, force: true });
  }

  /** Errors after `close()` are the directory going away under pending work: not worth a report. */
  #report(error: Error): void {
    if (!this.#closed) this.#onError(error);
  }

  async #spill(segment: SegmentRecord): Promise<void> {
    this.#writing.add(segment);
    const file = path.join(this.directory, `${this.#nextFile++}.m4s`);
    try {
      this.#ready ??= mkdir(this.directory, { recursive: true });
      await this.#ready;
      await writeFile(file, segment.bytes, { flag: "wx" });
    } catch (error) {
      this.#ready = undefined;
      this.#writing.delete(segment);
      unlink(file).catch(() => {});
      if (this.#closed) return;
      this.#writeErrors++;
      this.#report(error as Error);
      return;
    }
    this.#writing.delete(segment);
    if (this.#released.has(segment) || this.#closed) {
      unlink(file).catch(() => {});
      return;
    }
    let offset = 0;
    const parts = segment.parts.map((part) => {
      const range = [offset, offset + part.bytes.byteLength] as const;
      offset = range[1];
      return range;
    });
    segment.spilled = { file, parts };
    segment.bytes = EMPTY;
    for (const part of segment.parts) part.bytes = EMPTY;
    this.#files++;
    this.#bytes += segment.size;
  }
}

async function readRange(file: string, start: number, end: number): Promise<Uint8Array> {
  const handle = await open(file, "r");
  try {
    const bytes = new Uint8Array(end - start);
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesRead } = await handle.read(bytes, done, bytes.byteLength - done, start + done);
      if (bytesRead === 0) throw new Error(`${file} is shorter than expected`);
      done += bytesRead;
    }
    return bytes;
  } finally {
    await handle.close();
  }
}
