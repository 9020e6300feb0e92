/**
 * The logging interface the cluster package writes to. It is the subset of pino's API used here,
 * so a pino logger (or a child of one) can be passed as is.
 */

/** A pino-compatible logger: structured fields first, then the message. */
export interface ClusterLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const noop = (): void => {};

/** A logger that drops everything; the default when no logger is given. */
export const silentLogger: ClusterLogger = { debug: noop, info: noop, warn: noop, error: noop };
