/** The logging surface of the auth module: pino-compatible (an object of fields, then a message). */

/** A pino-compatible logger. Auth code never passes secrets to it: key ids only. */
export interface AuthLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

const noop = (): void => {};

/** A logger that drops everything (the default). */
export const silentAuthLogger: AuthLogger = { info: noop, warn: noop };
