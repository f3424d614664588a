// lib/runtime/secrets.ts: what to redact, built once per target and handed to its shell, its hooks and the notifications.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandError } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/log.js';
import { contextFor, defaultDeps } from '../../lib/runtime/context.js';
import { findTarget } from '../../lib/config/load.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const configFile = path.join(dir, 'projects.yml');
writeFileSync(
  configFile,
  `platform:
  backup_root: ${path.join(dir, 'backups')}
  notify:
    webhook_url_env: PGFLEET_TEST_WEBHOOK
shop:
  database:
    type: postgresql
    databases:
      production: shop
      staging: shop_staging
`,
);
mkdirSync(path.join(dir, 'configs', 'shop'), { recursive: true });
const envFile = path.join(dir, 'configs', 'shop', '.env.production');
writeFileSync(envFile, 'DATABASE_URL=postgresql://shop:S%2Fecret-pw1@/shop?host=/nowhere\n', { mode: 0o600 });
writeFileSync(path.join(dir, 'configs', 'shop', '.env.staging'), 'DATABASE_URL=postgresql://shop:Staging-pw2@/shop_staging?host=/nowhere\n', { mode: 0o600 });
const WEBHOOK = 'https://hooks.example/services/T0K-77-secrets';

function context() {
  return contextFor(configFile, defaultDeps({ logger: silentLogger(), env: { ...process.env, PGFLEET_TEST_WEBHOOK: WEBHOOK, PGPASSWORD: '', DATABASE_URL: '' }, out: () => undefined, progress: false }));
}

describe('Secrets', () => {
  it("a target's set: its URL, the URL's password as written and decoded, and the webhook URL with its path", () => {
    const ctx = context();
    const set = ctx.secrets.for(findTarget(ctx.config, 'shop', 'production'));
    expect([...set].sort()).toEqual(['/services/T0K-77-secrets', 'S%2Fecret-pw1', 'S/ecret-pw1', WEBHOOK, 'postgresql://shop:S%2Fecret-pw1@/shop?host=/nowhere'].sort());
  });

  it('is built once per target: the env file is read the first time only', () => {
    const ctx = context();
    const t = findTarget(ctx.config, 'shop', 'production');
    const first = ctx.secrets.for(t);
    writeFileSync(envFile, 'DATABASE_URL=postgresql://shop:changed-pw@/shop?host=/nowhere\n', { mode: 0o600 });
    try {
      expect(ctx.secrets.for(t)).toBe(first);
    } finally {
      writeFileSync(envFile, 'DATABASE_URL=postgresql://shop:S%2Fecret-pw1@/shop?host=/nowhere\n', { mode: 0o600 });
    }
  });

  it('all(): the platform secrets, and every target set built so far (not the others)', () => {
    const ctx = context();
    expect([...ctx.secrets.all()].sort()).toEqual(['/services/T0K-77-secrets', WEBHOOK]);
    ctx.secrets.for(findTarget(ctx.config, 'shop', 'staging'));
    expect(ctx.secrets.all()).toContain('Staging-pw2');
    expect(ctx.secrets.all()).not.toContain('S/ecret-pw1');
  });

  it("the target's shell redacts with that set: a failing client's stderr loses every form", async () => {
    const ctx = context();
    const sh = ctx.shellFor(findTarget(ctx.config, 'shop', 'production'));
    // A direct target runs its client on this host: sh stands in for psql, and prints what it was given.
    const e = (await sh.run('sh', ['-c', `echo "$PGPASSWORD | S%2Fecret-pw1 | ${WEBHOOK}" >&2; exit 2`]).catch((x) => x)) as CommandError;
    expect(e).toBeInstanceOf(CommandError);
    expect(e.stderrTail).toBe('*** | *** | ***\n');
  });
});
