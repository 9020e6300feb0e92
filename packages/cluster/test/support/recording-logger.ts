/** A pino-compatible logger that records lines, so tests can assert what was logged and how often. */

import type { ClusterLogger } from "../../src/index.ts";

export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly fields: object;
  readonly message: string;
  readonly at: number;
}

export function recordingLogger(): ClusterLogger & {
  lines: LogLine[];
  messages(level?: LogLine["level"]): string[];
} {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (fields: object, message: string) => {
    lines.push({ level, fields, message, at: performance.now() });
  };
  return {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    messages: (level) => lines.filter((l) => level === undefined || l.level === level).map((l) => l.message),
  };
}
