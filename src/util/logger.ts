import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** auto: human-readable on a terminal, JSON otherwise. */
  format?: 'auto' | 'json' | 'pretty';
  /** Where to write; defaults to stderr. */
  destination?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Structured JSON logs (pino), or a human-readable mode for terminals. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const format = options.format ?? 'auto';
  const usePretty = format === 'pretty' || (format === 'auto' && Boolean(destination.isTTY));
  const base = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (usePretty) {
    return pino(
      base,
      pretty({ colorize: Boolean(destination.isTTY), sync: true, destination, ignore: 'pid,hostname' }),
    );
  }
  if (destination === process.stderr || destination === process.stdout) {
    return pino(base, pino.destination({ dest: destination === process.stderr ? 2 : 1, sync: true }));
  }
  return pino(base, destination);
}
