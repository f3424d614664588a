/**
 * One pino root logger. Without a TTY (cron, CI): JSON lines on stderr. On a TTY: readable lines.
 * Redaction of passwords and connection strings is configured here, once; a child logger per
 * target carries {project, environment}.
 */
import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import { LOG_REDACT_PATHS } from './redact.js';

export type { Logger };

export function createLogger(opts: { tty?: boolean; level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const tty = opts.tty ?? process.stderr.isTTY === true;
  const level = opts.level ?? process.env.PGFLEET_LOG_LEVEL ?? 'info';
  const base = { level, redact: { paths: LOG_REDACT_PATHS, censor: '***' }, base: undefined as undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (tty) {
    // Loaded only for a terminal: cron and CI runs never pay for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }));
  }
  return pino(base, (opts.destination as never) ?? pino.destination({ fd: 2, sync: true }));
}

export function targetLogger(logger: Logger, t: { project: string; environment: string }): Logger {
  return logger.child({ project: t.project, environment: t.environment });
}

/** A logger that writes nothing, for tests that do not assert on logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
