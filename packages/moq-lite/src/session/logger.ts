/**
 * The logging interface sessions and servers write to: the subset of pino's API they use, so a
 * pino logger (or any object with these four methods) can be passed as is.
 */

/** A pino-compatible logger: `logger.warn({ fields }, "message")`. */
export interface MoqLogger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

const noop = (): void => {};

/** A logger that discards everything (the default). */
export const silentLogger: MoqLogger = { debug: noop, info: noop, warn: noop, error: noop };
