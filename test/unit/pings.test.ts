// Monitoring pings (lib/fleet/notify.ts ping, withPings; platform.notify.ping_url_env), against a
// real HTTP server on 127.0.0.1: start/success/fail in order, retried, bounded when the endpoint
// hangs, never failing the run, the URL never logged.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type LoadedConfig } from '../../lib/config/load.js';
import { UsageError } from '../../lib/core/errors.js';
import { ping, withPings, type NotifyContext } from '../../lib/fleet/notify.js';
import { Secrets } from '../../lib/runtime/secrets.js';

let server: http.Server;
let base: string;
/** Statuses to answer with, in turn (then 200); 0: never answer. */
let plan: number[] = [];
let received: { path: string; body: string }[] = [];
const hanging: http.ServerResponse[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body });
      const status = plan.shift() ?? 200;
      if (status === 0) hanging.push(res);
      else res.writeHead(status).end('OK');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  for (const r of hanging) r.destroy();
  return new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  plan = [];
  received = [];
});

const UUID = '5f1c2d3e-aaaa-bbbb-cccc-0123456789ab';

function ctx(env: Record<string, string> = { PING_URL: `${base}/ping/${UUID}` }): { ctx: NotifyContext; logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) });
  const config = { platform: { notify: { on: ['failure'], pingUrlEnv: 'PING_URL' } } } as unknown as LoadedConfig;
  return { ctx: { config, env, logger: pino({ level: 'debug' }, sink), clock: () => new Date('2025-03-01T02:00:00Z'), secrets: new Secrets(config, env) }, logs };
}
const fast = { backoffMs: 10, timeoutMs: 300 };

describe('pings', () => {
  it('a run that exits 0: <url>/start as it begins, then <url>, in order; the URL never logged', async () => {
    const { ctx: c, logs } = ctx();
    let during: string[] = [];
    // The work waits (bounded) for the start ping to arrive rather than a fixed 50 ms, which a loaded
    // machine overran; a generous timeout, as a slow start ping retried would be received twice.
    const r = await withPings(c, 'scheduled-backup', async () => {
      for (const t0 = Date.now(); received.length === 0 && Date.now() - t0 < 10_000; ) await new Promise((res) => setTimeout(res, 10));
      during = received.map((x) => x.path);
      return 0;
    }, { ...fast, timeoutMs: 10_000 });
    expect(r).toBe(0);
    expect(during).toEqual([`/ping/${UUID}/start`]); // sent while the work runs
    expect(received.map((x) => x.path)).toEqual([`/ping/${UUID}/start`, `/ping/${UUID}`]);
    expect(received[1].body).toMatch(/^pgfleet scheduled-backup on .*: exit 0$/);
    expect(logs.join('')).toMatch(/ping delivered/);
    expect(logs.join('')).not.toContain(UUID);
  });

  it('a non-zero exit and a throw are <url>/fail with the exit status; the error is rethrown as it was', async () => {
    const { ctx: c } = ctx();
    expect(await withPings(c, 'verify-backups', async () => 4, fast)).toBe(4);
    expect(received.map((x) => x.path)).toEqual([`/ping/${UUID}/start`, `/ping/${UUID}/fail`]);
    expect(received[1].body).toMatch(/exit 4$/);
    received = [];
    const err = new UsageError('nothing to do');
    await expect(withPings(c, 'prune', async () => Promise.reject(err), fast)).rejects.toBe(err);
    expect(received.map((x) => x.path)).toEqual([`/ping/${UUID}/start`, `/ping/${UUID}/fail`]);
    expect(received[1].body).toMatch(/exit 2: nothing to do$/);
  });

  it('retries a server error; a 4xx is final; an endpoint that hangs is bounded and never fails the run', async () => {
    const { ctx: c, logs } = ctx();
    plan = [503];
    expect(await ping(c, 'start', 'x', fast)).toBe(true);
    expect(received.map((x) => x.path)).toEqual([`/ping/${UUID}/start`, `/ping/${UUID}/start`]);
    received = [];
    plan = [404];
    expect(await ping(c, 'success', 'x', fast)).toBe(false);
    expect(received).toHaveLength(1);
    received = [];
    plan = [0, 0, 0, 0];
    const t0 = performance.now();
    expect(await withPings(c, 'scheduled-backup', async () => 0, fast)).toBe(0);
    const ms = performance.now() - t0;
    expect(received.map((x) => x.path)).toEqual([`/ping/${UUID}/start`, `/ping/${UUID}/start`, `/ping/${UUID}`, `/ping/${UUID}`]);
    expect(ms).toBeLessThan(2 * (2 * 300 + 10) + 500);
    expect(logs.join('')).toMatch(/ping could not be delivered/);
    expect(logs.join('')).not.toContain(UUID);
  });

  it('the default bound: 2 attempts of 3 s', async () => {
    const { ctx: c } = ctx();
    plan = [0, 0];
    const t0 = performance.now();
    expect(await ping(c, 'fail', 'x', { backoffMs: 10 })).toBe(false);
    expect(performance.now() - t0).toBeGreaterThan(5900);
    expect(performance.now() - t0).toBeLessThan(7500);
  }, 15_000);

  it('an endpoint that refuses connections: logged without the URL; unset variable or key: nothing sent, the run goes on', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { ctx: c, logs } = ctx({ PING_URL: `http://127.0.0.1:${port}/${UUID}` });
    expect(await withPings(c, 'prune', async () => 0, fast)).toBe(0);
    expect(logs.join('')).toMatch(/ping could not be delivered/);
    expect(logs.join('')).not.toContain(UUID);

    const unset = ctx({});
    expect(await withPings(unset.ctx, 'prune', async () => 0, fast)).toBe(0);
    expect(unset.logs.join('')).toMatch(/ping not sent: platform.notify.ping_url_env names PING_URL, which is not set/);
    const off = { ...unset.ctx, config: { platform: { notify: { on: [] } } } as unknown as LoadedConfig };
    expect(await withPings(off, 'prune', async () => 3, { ...fast, skip: false })).toBe(3);
    expect(await withPings(ctx().ctx, 'prune', async () => 0, { ...fast, skip: true })).toBe(0);
    expect(received).toEqual([]);
  });

  it('platform.notify.ping_url_env is read from projects.yml, and its URL is one of the secrets redacted everywhere', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-pings-'));
    try {
      const file = path.join(dir, 'projects.yml');
      writeFileSync(file, 'platform:\n  notify:\n    ping_url_env: HC_PING_URL\n');
      const config = loadConfig(file, {});
      expect(config.platform.notify.pingUrlEnv).toBe('HC_PING_URL');
      expect(new Secrets(config, { HC_PING_URL: `https://hc-ping.com/${UUID}` }).all()).toContain(`https://hc-ping.com/${UUID}`);
      writeFileSync(file, 'platform:\n  notify:\n    ping_url_env: https://hc-ping.com/x\n');
      expect(() => loadConfig(file, {})).toThrow(/ping_url_env: expected an environment variable name/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a project's own ping check (database.notify.ping_url_env)", () => {
  it('a command run for that project alone pings its check; the fleet-wide run, the platform\'s; both URLs are secrets', async () => {
    const logs: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) });
    const env = { PING_URL: `${base}/ping/${UUID}`, ACME_PING: `${base}/acme/${UUID}-acme` };
    const config = { platform: { notify: { on: ['failure'], pingUrlEnv: 'PING_URL' } }, targets: [{ project: 'acme', environment: 'production', pingUrlEnv: 'ACME_PING' }, { project: 'globex', environment: 'production' }] } as unknown as LoadedConfig;
    const c: NotifyContext = { config, env, logger: pino({ level: 'debug' }, sink), clock: () => new Date(), secrets: new Secrets(config, env) };
    await withPings(c, 'scheduled-backup', async () => 0, { ...fast, project: 'acme' });
    await withPings(c, 'scheduled-backup', async () => 1, { ...fast, project: 'globex' });
    await withPings(c, 'scheduled-backup', async () => 0, fast);
    expect(received.map((x) => x.path)).toEqual([
      `/acme/${UUID}-acme/start`, `/acme/${UUID}-acme`,
      `/ping/${UUID}/start`, `/ping/${UUID}/fail`,
      `/ping/${UUID}/start`, `/ping/${UUID}`,
    ]);
    expect(c.secrets.all()).toEqual(expect.arrayContaining([env.PING_URL, env.ACME_PING]));
    expect(logs.join('')).not.toContain(UUID);
  });

  it('database.notify.ping_url_env is read onto the target', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-pings-'));
    try {
      const file = path.join(dir, 'projects.yml');
      writeFileSync(file, 'acme:\n  database:\n    type: postgresql\n    container: pg\n    databases: { production: p }\n    notify: { ping_url_env: ACME_PING }\n');
      expect(loadConfig(file, {}).targets[0].pingUrlEnv).toBe('ACME_PING');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
