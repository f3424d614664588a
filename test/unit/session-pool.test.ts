/**
 * The pure parts of lib/postgres/pool.ts and TargetShell's identity: which shells may share a kept
 * psql session (same place, role and credentials, whatever the database), that the identity holds
 * no secret, and the direct path of a client program from the server's version (Debian's layout).
 * Leasing sessions runs against real PostgreSQL: test/integration/session-reuse.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Credentials, Target } from '../../lib/config/load.js';
import { debianMajor, SessionPool } from '../../lib/postgres/pool.js';
import { ContainerCli, TargetShell } from '../../lib/process/container.js';
import { Runner } from '../../lib/process/runner.js';

const runner = new Runner();
const docker = new ContainerCli(runner, 'docker', { of: (r) => (r.project === 'remote' ? 'ssh://db-b' : undefined) });

function shell(over: Partial<Target> = {}, credentials: Credentials = { password: 'Secret-1' }): TargetShell {
  const target: Target = {
    project: 'acme',
    environment: 'production',
    database: 'acme_production',
    container: 'pg-a',
    appContainers: [],
    hooks: { timeout_ms: 0 },
    backup: {} as Target['backup'],
    envFile: 'configs/acme/.env.production',
    ...over,
  };
  return new TargetShell(runner, docker, target, credentials);
}

describe('TargetShell identity and place', () => {
  it('targets of one container, role and password share an identity, whatever their database, project or environment', () => {
    const a = shell();
    const b = shell({ project: 'shop', environment: 'staging', database: 'shop_staging' });
    expect(b.identity).toBe(a.identity);
    expect(b.place).toBe(a.place);
  });

  it('another role, password, container or host is another identity; only container and host make another place', () => {
    const a = shell();
    const others = [shell({ user: 'shop' }), shell({}, { password: 'Secret-2' }), shell({}, {}), shell({ container: 'pg-b' }), shell({ project: 'remote' })];
    for (const o of others) expect(o.identity).not.toBe(a.identity);
    expect(new Set(others.map((o) => o.identity)).size).toBe(others.length);
    expect(shell({ user: 'shop' }).place).toBe(a.place);
    expect(shell({}, { password: 'Secret-2' }).place).toBe(a.place);
    expect(shell({ container: 'pg-b' }).place).not.toBe(a.place);
    expect(shell({ project: 'remote' }).place).not.toBe(a.place);
  });

  it('holds no secret: neither the identity nor the place contains the password', () => {
    const s = shell({}, { password: 'Secret-1' });
    expect(s.identity).toMatch(/^[0-9a-f]{64}$/);
    expect(s.place).not.toContain('Secret-1');
    const direct = shell({ container: undefined }, { databaseUrl: 'postgresql://u:Url-Secret@db.internal:5433/app' });
    expect(direct.place).toBe(JSON.stringify(['direct', 'db.internal', '', '5433']));
    expect(direct.identity).not.toContain('Url-Secret');
  });
});

describe('SessionPool.clientPath', () => {
  it("Debian's directory of a major: 15 for 15.x, 9.6 for 9.6.x, the first number of a pre-release", () => {
    expect(debianMajor('15.18 (Debian 15.18-0+deb12u1)')).toBe('15');
    expect(debianMajor('17.2')).toBe('17');
    expect(debianMajor('9.6.24')).toBe('9.6');
    expect(debianMajor('18beta1')).toBe('18');
    expect(debianMajor('not a version')).toBeNull();
  });

  it('unknown until the server of that place has been seen; then for every shell of the place, not of another', () => {
    const pool = new SessionPool();
    const a = shell();
    expect(pool.clientPath(a, 'pg_dump')).toBe('');
    pool.serverSeen(shell({ user: 'other', database: 'x' }), '15.18 (Debian 15.18-0+deb12u1)');
    expect(pool.clientPath(a, 'pg_dump')).toBe('/usr/lib/postgresql/15/bin/pg_dump');
    expect(pool.clientPath(shell({ container: 'pg-b' }), 'pg_dump')).toBe('');
    pool.serverSeen(a, 'garbage');
    expect(pool.clientPath(a, 'pg_dump')).toBe('');
  });
});
