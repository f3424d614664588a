/**
 * Webhook notifications after a fleet run (scheduled-backup, verify-backups).
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
    const attempts = Math.max(1, o.attempts ?? 3);
    let wait = o.backoffMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      let retry = true;
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(o.timeoutMs ?? 5000) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          log.info({ attempt, status: res.status }, 'notification delivered');
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
        log.error({ attempts: attempt, error: problem }, 'notification could not be delivered');
        return false;
      }
      log.warn({ attempt, error: problem }, `notification failed; retrying in ${wait} ms`);
      await new Promise((r) => setTimeout(r, wait));
      wait *= 2;
    }
  } catch (e) {
    log.error({ error: redact(String((e as Error)?.message ?? e), [...ctx.secrets.all()]) }, 'notification could not be delivered');
    return false;
  }
}

/** Every string inside `v` redacted. */
function redactDeep(v: unknown, secrets: readonly string[]): unknown {
  if (typeof v === 'string') return redact(v, secrets);
  if (Array.isArray(v)) return v.map((x) => redactDeep(x, secrets));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeep(x, secrets)]));
  return v;
}
