/**
 * One pino root logger. Without a TTY (cron, CI): JSON lines on stderr (a contract: README "Logs").
 * On a TTY with a Terminal (lib/core/terminal.ts) that is not verbose: the steps are its lines, and
 * the log shows only warnings and errors, one line each (quiet: errors only); a rollback's steps
 * show as "↩ <step>". On a TTY verbose, or without a Terminal: every record, pino-pretty.
 * Redaction of passwords and connection strings is configured here, once; a child logger per
 * target carries {project, environment}.
 */
import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import { LOG_REDACT_PATHS } from './redact.js';
import type { Terminal } from './terminal.js';

export type { Logger };

export function createLogger(opts: { tty?: boolean; level?: string; destination?: NodeJS.WritableStream; terminal?: Terminal } = {}): Logger {
  const term = opts.terminal;
  const tty = opts.tty ?? term?.tty ?? process.stderr.isTTY === true;
  const level = opts.level ?? process.env.PGFLEET_LOG_LEVEL ?? 'info';
  const base = { level, redact: { paths: LOG_REDACT_PATHS, censor: '***' }, base: undefined as undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (tty && term && term.verbosity !== 'verbose') return pino(base, terminalDestination(term));
  if (tty) {
    // Loaded only for a terminal: cron and CI runs never pay for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ destination: 2, sync: true, colorize: !process.env.NO_COLOR, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }));
  }
  return pino(base, (opts.destination as never) ?? pino.destination({ fd: 2, sync: true }));
}

/**
 * Log records as a person reads them beside the step lines: an error `✗ <where>: <msg>`, a warning
 * `! <msg>`, a rollback's step `↩ <step>` (lib/core/undo.ts); everything else is the steps' to say. Quiet: errors only.
 */
function terminalDestination(term: Terminal): { write(line: string): void } {
  return {
    write(line: string) {
      let r: { level?: number; msg?: string; step?: unknown; project?: string; environment?: string; err?: unknown };
      try {
        r = JSON.parse(line);
      } catch {
        return;
      }
      const level = r.level ?? 30;
      const where = r.project && !r.msg?.startsWith(`${r.project}/`) ? `${r.project}/${r.environment ?? ''}: ` : '';
      const err = typeof r.err === 'string' && r.msg && !r.msg.includes(r.err) ? `: ${r.err}` : '';
      const stack = r.err && typeof r.err === 'object' && typeof (r.err as { stack?: unknown }).stack === 'string' ? '\n' + term.paint('2', (r.err as { stack: string }).stack) : '';
      if (level >= 50) term.always(`${term.paint('31', '✗')} ${where}${r.msg ?? ''}${err}${stack}`);
      else if (term.verbosity === 'quiet') return;
      else if (level >= 40) term.line(`${term.paint('33', '!')} ${where}${r.msg ?? ''}${err}`);
      else if (level >= 30 && typeof r.step === 'string' && r.msg?.startsWith('rolling back')) term.line(`  ${term.paint('33', '↩')} ${r.step}`);
    },
  };
}

export function targetLogger(logger: Logger, t: { project: string; environment: string }): Logger {
  return logger.child({ project: t.project, environment: t.environment });
}

/** A logger that writes nothing, for tests that do not assert on logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
