#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * The `lvqr` command. `lvqr serve [flags]` runs the server until SIGINT or SIGTERM, then drains
 * (a second signal exits at once). Invalid flags print a message naming the flag and exit 2.
 */
// First: V8 heap settings must be in place before the server allocates.
import "./heap-tuning.ts";
import { parseServeCommand } from "./cli-options.ts";
import { ConfigError } from "./config.ts";
import { type ServerHandle, start } from "./start.ts";

const USAGE = "Usage: lvqr serve [flags]   (lvqr serve --help lists the flags)";

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== "serve") {
    process.stderr.write(`lvqr: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 2;
  }
  let parsed: ReturnType<typeof parseServeCommand>;
  try {
    parsed = parseServeCommand(rest);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`lvqr serve: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.kind === "help") {
    process.stdout.write(parsed.text);
    return 0;
  }

  let server: ServerHandle;
  try {
    server = await start(parsed.config);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`lvqr serve: could not start: ${message}\n`);
    return 1;
  }
  const logger = server.logger;
  process.on("uncaughtException", (error) => {
    logger.fatal({ err: error }, "uncaught exception; exiting");
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    logger.fatal({ err: reason }, "unhandled promise rejection; exiting");
    process.exit(1);
  });

  const { promise: stopped, resolve: stop } = Promise.withResolvers<number>();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, "second signal: exiting without draining");
      process.exit(1);
    }
    logger.info({ signal }, "draining");
    server.shutdown().then(
      () => stop(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        stop(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return stopped;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // pino writes synchronously to stdout; nothing else should keep the loop alive after shutdown.
    if (code !== 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(
      `lvqr: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
