import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadedConfig, Target } from '../../lib/config/load.js';
import { notify, type NotifyContext } from '../../lib/fleet/notify.js';
import { Secrets } from '../../lib/runtime/secrets.js';

/** A webhook receiver on 127.0.0.1 that answers with the next status of `plan` (then 200). */
let server: http.Server;
let base: string;
let plan: number[] = [];
const received: { path: string; body: unknown }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(data) });
      res.writeHead(plan.shift() ?? 200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function ctx(env: Record<string, string>, on: ('failure' | 'success')[] = ['failure']): { ctx: NotifyContext; logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) });
  const config = { platform: { notify: { webhookUrlEnv: 'HOOK_URL', on } } } as unknown as LoadedConfig;
  return { ctx: { config, env, logger: pino({ level: 'debug' }, sink), clock: () => new Date('2025-03-01T02:00:00Z'), secrets: new Secrets(config, env) }, logs };
}

const event = { command: 'scheduled-backup' as const, ok: false, summary: '2 target(s): 1 ok, 1 failed (acme/production)', results: [{ project: 'acme', result: 'failed' }] };
const fast = { backoffMs: 10, timeoutMs: 2000 };

describe('notify', () => {
  it('posts a Slack-compatible body, retrying a server error, and never logs the URL', async () => {
    received.length = 0;
    plan = [503];
    const url = `${base}/hooks/T0KEN-s3cret`;
    const { ctx: c, logs } = ctx({ HOOK_URL: url });
    expect(await notify(c, event, fast)).toBe(true);
    expect(received).toHaveLength(2);
    const body = received[1].body as { text: string; pgfleet: { ok: boolean; results: unknown[]; command: string } };
    expect(body.text).toContain('FAILED');
    expect(body.text).toContain('acme/production');
    expect(body.pgfleet).toMatchObject({ command: 'scheduled-backup', ok: false, results: event.results });
    expect(logs.join('\n')).not.toContain('T0KEN-s3cret');
  });

  it('sends on success only when configured', async () => {
    received.length = 0;
    const ok = { ...event, ok: true, summary: 'all ok' };
    expect(await notify(ctx({ HOOK_URL: `${base}/x` }).ctx, ok, fast)).toBe(false);
    expect(await notify(ctx({ HOOK_URL: `${base}/x` }, ['success']).ctx, ok, fast)).toBe(true);
    expect(received).toHaveLength(1);
  });

  it('gives up after the bounded attempts, logs it without the URL, and does not throw', async () => {
    received.length = 0;
    plan = [500, 500, 500, 500];
    const { ctx: c, logs } = ctx({ HOOK_URL: `${base}/hooks/T0KEN-s3cret` });
    expect(await notify(c, event, fast)).toBe(false);
    expect(received).toHaveLength(3);
    plan = [];
    const unreachable = ctx({ HOOK_URL: 'http://127.0.0.1:1/hooks/T0KEN-s3cret' });
    expect(await notify(unreachable.ctx, event, fast)).toBe(false);
    const all = [...logs, ...unreachable.logs].join('\n');
    expect(all).toContain('notification could not be delivered');
    expect(all).not.toContain('T0KEN-s3cret');
  });

  it('a 4xx other than 429 is final; an unset variable is a warning', async () => {
    received.length = 0;
    plan = [404];
    expect(await notify(ctx({ HOOK_URL: `${base}/gone` }).ctx, event, fast)).toBe(false);
    expect(received).toHaveLength(1);
    const { ctx: c, logs } = ctx({});
    expect(await notify(c, event, fast)).toBe(false);
    expect(logs.join('\n')).toContain('HOOK_URL, which is not set');
  });

  it("redacts the body with the run's secrets: every target's set built so far, and the URL", async () => {
    received.length = 0;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-notify-'));
    try {
      const envFile = path.join(dir, '.env.production');
      writeFileSync(envFile, 'PGPASSWORD=Tenant-pw-42\n', { mode: 0o600 });
      const url = `${base}/hooks/T0KEN-s3cret`;
      const { ctx: c } = ctx({ HOOK_URL: url });
      c.secrets.for({ project: 'acme', environment: 'production', envFile } as Target);
      const leaky = { ...event, summary: `1 failed: psql said Tenant-pw-42 to ${url}`, results: [{ project: 'acme', error: 'auth failed for Tenant-pw-42', nested: { at: ['POST /hooks/T0KEN-s3cret'] }, n: 3 }] };
      expect(await notify(c, leaky, fast)).toBe(true);
      const text = JSON.stringify(received[0].body);
      expect(text).not.toContain('Tenant-pw-42');
      expect(text).not.toContain('T0KEN-s3cret');
      expect(received[0].body).toMatchObject({ pgfleet: { results: [{ project: 'acme', error: 'auth failed for ***', nested: { at: ['POST ***'] }, n: 3 }] } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
