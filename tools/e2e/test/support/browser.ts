/**
 * Headless Chromium for the player tests: Debian's `chromium` driven by playwright-core with a
 * fresh profile, plus a local HTTP server on an ephemeral port that serves the test pages and the
 * player scripts (hls.js, dash.js, the bundled @moq/watch element). Pages are served from
 * `http://127.0.0.1:<port>`, which browsers treat as a secure context (WebCodecs, WebTransport).
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Where Debian installs Chromium. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** The flags Chromium needs to run headless as root on CI machines, without QUIC or background traffic. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
  // Background tabs must not be throttled: several players may run at once.
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".css": "text/css",
};

type Asset = { readonly file: string } | { readonly body: string; readonly type: string };

/** A console message or page error seen in a tab. */
export interface ConsoleEntry {
  readonly type: string;
  readonly text: string;
}

/** A tab plus everything it logged. */
export interface HarnessPage {
  readonly page: Page;
  readonly console: ConsoleEntry[];
  close(): Promise<void>;
}

/** Chromium plus the asset server. Close it once; closing twice is harmless. */
export class BrowserHarness {
  /** `http://127.0.0.1:<port>` of the asset server. */
  readonly baseUrl: string;
  readonly #context: BrowserContext;
  readonly #server: Server;
  readonly #profile: string;
  readonly #assets: Map<string, Asset>;
  #closed = false;

  private constructor(context: BrowserContext, server: Server, profile: string, assets: Map<string, Asset>) {
    this.#context = context;
    this.#server = server;
    this.#profile = profile;
    this.#assets = assets;
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Starts the asset server and launches Chromium with a fresh profile. */
  static async launch(): Promise<BrowserHarness> {
    if (!existsSync(CHROMIUM_PATH)) {
      throw new Error(
        `${CHROMIUM_PATH} is missing: install Debian's chromium package (apt-get install chromium)`,
      );
    }
    const assets = new Map<string, Asset>();
    const server = createServer((request, response) => {
      const pathname = new URL(request.url ?? "/", "http://local").pathname;
      const asset = assets.get(pathname);
      if (!asset) {
        response.writeHead(404, { "content-type": "text/plain" }).end(`no asset ${pathname}`);
        return;
      }
      const send = (body: string | Buffer, type: string) =>
        response.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
      if ("body" in asset) {
        send(asset.body, asset.type);
        return;
      }
      readFile(asset.file).then(
        (body) => send(body, CONTENT_TYPES[path.extname(asset.file)] ?? "application/octet-stream"),
        (error: Error) => response.writeHead(500).end(error.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const profile = await mkdtemp(path.join(tmpdir(), "lvqr-e2e-chromium-"));
    try {
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM_PATH,
        headless: true,
        args: [...CHROMIUM_ARGS],
        viewport: { width: 1280, height: 720 },
      });
      return new BrowserHarness(context, server, profile, assets);
    } catch (error) {
      server.close();
      await rm(profile, { recursive: true, force: true });
      throw error;
    }
  }

  /** Serves `html` at `pathname` and returns its URL. */
  addPage(pathname: string, html: string): string {
    this.#assets.set(pathname, { body: html, type: CONTENT_TYPES[".html"]! });
    return `${this.baseUrl}${pathname}`;
  }

  /** Serves the file at `file` at `pathname` and returns its URL. */
  addFile(pathname: string, file: string): string {
    if (!existsSync(file)) throw new Error(`asset ${file} is missing; run pnpm install`);
    this.#assets.set(pathname, { file });
    return `${this.baseUrl}${pathname}`;
  }

  /** Opens a tab that records console output and page errors. */
  async newPage(): Promise<HarnessPage> {
    const page = await this.#context.newPage();
    const entries: ConsoleEntry[] = [];
    page.on("console", (message) => entries.push({ type: message.type(), text: message.text() }));
    page.on("pageerror", (error) => entries.push({ type: "pageerror", text: error.message }));
    return { page, console: entries, close: () => page.close() };
  }

  /** Closes Chromium and the asset server and removes the profile. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#context.close().catch(() => {});
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await rm(this.#profile, { recursive: true, force: true });
  }
}
