/**
 * Webhook notifications after a fleet run (scheduled-backup, verify-backups), and monitoring
 * pings around every fleet command (ping, withPings: healthchecks.io's start/success/fail).
 *
 * Promises: sends only when `platform.notify` asks for this outcome (`on: [failure]` by default,
 * `success` too when listed); the URL is read from the env var `webhook_url_env` names and never
 * reaches a log line or an error; the body is Slack-compatible (`text`, readable) and carries the
 * structured results under `pgfleet`; delivery is retried with backoff a bounded number of times
 * (server errors, 429 and network errors; other 4xx are final); `notify` never throws: a
 * notification that cannot be delivered is logged and the caller's outcome stands. The body and
 * every log line are redacted with the run's secrets (ctx.secrets: every target's set and the URL).
 */
import os from 'node:os';
import type { Context } from '../runtime/context.js';
import { redact } from '../core/redact.js';

export interface NotifyEvent {
  command: 'scheduled-backup' | 'verify-backups';
  ok: boolean;
  /** One readable line, e.g. "3 targets: 2 ok, 1 failed (acme/production)". */
  summary: string;
  results: unknown[];
}

export interface NotifyOptions {
  attempts?: number;
  /** Wait before the 2nd attempt; doubles each time. */
  backoffMs?: number;
  /** Per attempt. */
  timeoutMs?: number;
}

export type NotifyContext = Pick<Context, 'config' | 'env' | 'logger' | 'clock' | 'secrets'>;

/** The JSON body: `text` for chat tools, `pgfleet` for machines. */
export function notificationBody(event: NotifyEvent, at: Date, host = os.hostname()) {
  const icon = event.ok ? ':white_check_mark:' : ':rotating_light:';
  return {
    text: `${icon} pgfleet ${event.command} on ${host}: ${event.ok ? 'ok' : 'FAILED'}. ${event.summary}`,
    pgfleet: { command: event.command, ok: event.ok, host, at: at.toISOString(), summary: event.summary, results: event.results },
  };
}

/** Deliver `event` if configured; resolves true when delivered, false otherwise. Never throws. */
export async function notify(ctx: NotifyContext, event: NotifyEvent, o: NotifyOptions = {}): Promise<boolean> {
  const log = ctx.logger.child({ command: event.command });
  let url: string | undefined;
  try {
    const cfg = ctx.config.platform.notify;
    if (!cfg.webhookUrlEnv || !cfg.on.includes(event.ok ? 'success' : 'failure')) return false;
    url = ctx.env[cfg.webhookUrlEnv];
    if (!url) {
      log.warn(`notification not sent: platform.notify.webhook_url_env names ${cfg.webhookUrlEnv}, which is not set`);
      return false;
    }
    const secrets = [...ctx.secrets.all()];
    const body = JSON.stringify(notificationBody({ ...event, summary: redact(event.summary, secrets), results: redactDeep(event.results, secrets) as unknown[] }, ctx.clock()));
    return await deliver(url, { 'content-type': 'application/json' }, body, o, log, secrets, 'notification');
  } catch (e) {
    log.error({ error: redact(String((e as Error)?.message ?? e), [...ctx.secrets.all()]) }, 'notification could not be delivered');
    return false;
  }
}

/**
 * POST `body` to `url`, retried with backoff a bounded number of times (server errors, 429,
 * network errors and timeouts; other 4xx are final). Resolves true when delivered; never throws;
 * logs as `what`, never the URL (every message redacted with `secrets`).
 */
async function deliver(url: string, headers: Record<string, string>, body: string, o: NotifyOptions, log: NotifyContext['logger'], secrets: readonly string[], what: string): Promise<boolean> {
  const attempts = Math.max(1, o.attempts ?? 3);
  let wait = o.backoffMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    let problem: string;
    let retry = true;
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(o.timeoutMs ?? 5000) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        log.info({ attempt, status: res.status }, `${what} delivered`);
        return true;
      }
      problem = `HTTP ${res.status}`;
      retry = res.status >= 500 || res.status === 429;
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      problem = cause ? `${(e as Error).message}: ${cause}` : String((e as Error)?.message ?? e);
    }
    problem = redact(problem, secrets);
    if (!retry || attempt >= attempts) {
      log.error({ attempts: attempt, error: problem }, `${what} could not be delivered`);
      return false;
    }
    log.warn({ attempt, error: problem }, `${what} failed; retrying in ${wait} ms`);
    await new Promise((r) => setTimeout(r, wait));
    wait *= 2;
  }
}

/** How a fleet command ends, for its ping: `start` when it begins, then `success` or `fail`. */
export type PingPhase = 'start' | 'success' | 'fail';

/**
 * One monitoring ping (healthchecks.io convention) to the URL in the env var
 * `platform.notify.ping_url_env` names: `<url>/start`, `<url>` (success), `<url>/fail`, each a POST
 * whose body is `text` (a line for the check's log). Same promises as notify(): bounded (by default
 * 2 attempts of 3 s each, 0.5 s apart: under 7 s), never throws, the URL never logged. Resolves
 * true when delivered; false when unset or undelivered.
 */
export async function ping(ctx: NotifyContext, phase: PingPhase, text: string, o: NotifyOptions & { urlEnv?: string } = {}): Promise<boolean> {
  const log = ctx.logger.child({ ping: phase });
  try {
    const name = o.urlEnv ?? ctx.config.platform.notify.pingUrlEnv;
    const base = name ? ctx.env[name] : undefined;
    if (!name) return false;
    if (!base) {
      log.warn(`ping not sent: ${o.urlEnv ? 'database.notify' : 'platform.notify'}.ping_url_env names ${name}, which is not set`);
      return false;
    }
    const url = phase === 'success' ? base : `${base.replace(/\/+$/, '')}/${phase}`;
    const secrets = [...ctx.secrets.all()];
    return await deliver(url, { 'content-type': 'text/plain; charset=utf-8' }, redact(text, secrets), { attempts: 2, timeoutMs: 3000, ...o }, log, secrets, 'ping');
  } catch (e) {
    log.error({ error: redact(String((e as Error)?.message ?? e), [...ctx.secrets.all()]) }, 'ping could not be delivered');
    return false;
  }
}

/**
 * Run a fleet command between its pings: `start` sent as it begins (not waited on, so a slow
 * endpoint never delays the work), then `success` when it returns exit 0 (or nothing), else
 * `fail` (a non-zero exit, or a throw, which is rethrown as it was). The end ping waits for the
 * start ping, so they arrive in order. `project`: the command runs for that project alone, so its
 * database.notify.ping_url_env, when set, is pinged instead of the platform's. No-op without a
 * ping_url_env, or with `skip` (a dry run is not the job it stands for). Never changes the outcome.
 */
export async function withPings<T extends number | void>(ctx: NotifyContext, command: string, run: () => Promise<T>, o: NotifyOptions & { skip?: boolean; project?: string } = {}): Promise<T> {
  // A command run for one project alone pings that project's own check when it has one.
  const own = o.project ? ctx.config.targets?.find((t) => t.project === o.project && t.pingUrlEnv)?.pingUrlEnv : undefined;
  if ((!own && !ctx.config.platform.notify.pingUrlEnv) || o.skip) return run();
  const po = { ...o, urlEnv: own };
  const started = ping(ctx, 'start', `pgfleet ${command} started on ${os.hostname()}`, po);
  let code: number;
  try {
    const r = await run();
    code = typeof r === 'number' ? r : 0;
    await started;
    await ping(ctx, code === 0 ? 'success' : 'fail', `pgfleet ${command} on ${os.hostname()}: exit ${code}`, po);
    return r;
  } catch (e) {
    await started;
    const exit = (e as { exitCode?: number }).exitCode ?? 1;
    await ping(ctx, 'fail', `pgfleet ${command} on ${os.hostname()}: exit ${exit}: ${String((e as Error)?.message ?? e).slice(0, 2000)}`, po);
    throw e;
  }
}

/** Every string inside `v` redacted. */
function redactDeep(v: unknown, secrets: readonly string[]): unknown {
  if (typeof v === 'string') return redact(v, secrets);
  if (Array.isArray(v)) return v.map((x) => redactDeep(x, secrets));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeep(x, secrets)]));
  return v;
}
