/**
 * Project hooks (database.hooks.* in projects.yml): an argv array run through the Runner, never a
 * shell string of ours, with the directory of projects.yml as its working directory and
 * pgfleet's environment plus `env`.
 *
 * Promises: runHook never throws for the hook's own failure (non-zero exit, killed, not found,
 * timed out); it returns the exit code or signal and the tail of the hook's stdout and stderr,
 * redacted with the target's secrets (ctx.secrets). Every hook is bounded by the target's
 * hooks.timeout_ms (database.hooks.timeout, default 10m): past it the hook gets SIGTERM, then
 * SIGKILL 10 s later, and its output tail starts with "timed out after …". It throws
 * InterruptedError when pgfleet itself is interrupted.
 */
import path from 'node:path';
import { DEFAULTS, parseDuration, type Target } from '../config/load.js';
import type { Context } from './context.js';
import { CommandError, InterruptedError } from '../core/errors.js';
import type { HookResult } from '../formats/manifest.js';
import { redact } from '../core/redact.js';
import { tail } from '../core/text.js';

const TAIL_BYTES = 2048;

const trimmedTail = (text: string) => tail(text, TAIL_BYTES).replace(/\s+$/, '');

/** After SIGTERM at the timeout, how long a hook has to exit before SIGKILL. */
const KILL_GRACE_MS = 10_000;

/** Run one hook to completion with `env` added to pgfleet's own environment. */
export async function runHook(ctx: Pick<Context, 'config' | 'runner' | 'signal' | 'secrets'>, target: Target, name: string, argv: readonly string[], env: Record<string, string>): Promise<HookResult> {
  const ref = { project: target.project, environment: target.environment };
  const secrets = ctx.secrets.for(target);
  const cwd = path.dirname(ctx.config.file);
  const started = performance.now();
  const p = ctx.runner.spawn(argv, { env, cwd, target: ref, what: `${name} hook`, role: 'hook', signal: ctx.signal, secrets: [...secrets] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    // One more than the tail: a trimmed output stays longer than TAIL_BYTES, so it is marked as cut.
    if (out.length > 4 * TAIL_BYTES) out = out.slice(-(TAIL_BYTES + 1));
  });
  let exitCode: number | null = 0;
  let signal: string | null = null;
  let errTail = '';
  let timedOut = false;
  const timeoutMs = target.hooks?.timeout_ms ?? parseDuration(DEFAULTS.hook_timeout);
  let kill: NodeJS.Timeout | undefined;
  const term = setTimeout(() => {
    timedOut = true;
    p.kill('SIGTERM');
    kill = setTimeout(() => p.kill('SIGKILL'), KILL_GRACE_MS);
  }, timeoutMs);
  try {
    await p.done;
    errTail = p.stderrTail();
  } catch (e) {
    if (e instanceof InterruptedError) throw e;
    if (!(e instanceof CommandError)) throw e;
    exitCode = e.code;
    signal = e.signal;
    errTail = e.stderrTail;
  } finally {
    clearTimeout(term);
    clearTimeout(kill);
  }
  if (timedOut && exitCode === 0 && !signal) exitCode = null; // exited 0 on SIGTERM: still a failure
  if (timedOut && !signal && exitCode === null) signal = 'SIGTERM';
  const parts = [
    timedOut && `timed out after ${Math.round(timeoutMs / 1000)} s (database.hooks.timeout); killed`,
    trimmedTail(out) && `stdout: ${trimmedTail(out)}`,
    trimmedTail(errTail) && `stderr: ${trimmedTail(errTail)}`,
  ].filter(Boolean);
  return {
    argv: [...argv],
    exit_code: exitCode,
    signal,
    duration_ms: Math.round(performance.now() - started),
    output_tail: redact(parts.join('\n'), secrets),
  };
}

export function hookFailed(h: HookResult): boolean {
  return h.signal !== null || h.exit_code !== 0;
}
