// Many Docker hosts (platform.container_host / database.container_host): every container CLI call
// of a target goes to its host. Two container API endpoints on one machine (two `podman system
// service` sockets, as scripts/ci/with-docker-api.sh starts one), each logging its requests:
// each project's calls reach its own endpoint only, through podman (--url) and the Docker CLI
// (DOCKER_HOST); a host that does not answer fails that target, naming it; config check shows
// where each target is reached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../lib/core/package.js';
import { TestFleet } from '../helpers.js';
import { waitFor } from './support.js';

const hasDocker = spawnSync('docker', ['--version']).status === 0;

describe('container hosts (two container API endpoints)', () => {
  let fleet: TestFleet;
  let dir: string;
  const services: ChildProcess[] = [];
  const sock = (n: string) => path.join(dir, `${n}.sock`);
  const log = (n: string) => readFileSync(path.join(dir, `${n}.log`), 'utf8');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-hosts-'));
    for (const n of ['a', 'b']) {
      const out = path.join(dir, `${n}.log`);
      const p = spawn('sh', ['-c', `exec podman system service --log-level=info --time=0 unix://${sock(n)} 2>${out}`], {
        env: { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? path.join(PACKAGE_ROOT, 'scripts/sandbox/containers.conf') },
        stdio: 'ignore',
      });
      services.push(p);
      await waitFor(`podman service ${n}`, () => spawnSync('podman', ['--url', `unix://${sock(n)}`, 'version']).status === 0 || null, 30_000, 200);
    }
    fleet = await TestFleet.create([
      { project: 'alpha', databases: { production: 'alpha_production' }, database: { container_host: `unix://${sock('a')}` } },
      { project: 'beta', databases: { production: 'beta_production' }, database: { container_host: `unix://${sock('b')}` } },
    ]);
    await fleet.sql('alpha', 'alpha_production', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1);');
    await fleet.sql('beta', 'beta_production', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1);');
  });
  afterAll(async () => {
    for (const p of services) p.kill('SIGTERM');
    await fleet?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const cli of ['podman', 'docker'] as const) {
    it.skipIf(cli === 'docker' && !hasDocker)(`${cli}: each project's backup goes through its own endpoint only`, async () => {
      fleet.platform = { container_cli: cli };
      fleet.writeConfig();
      const [a0, b0] = [log('a').length, log('b').length];
      for (const p of ['alpha', 'beta']) {
        const r = await fleet.cli(['backup', p, 'production'], { env: { DOCKER_HOST: 'unix:///nonexistent/not-this.sock' } });
        expect(r.code, r.stderr).toBe(0);
      }
      const [a, b] = [log('a').slice(a0), log('b').slice(b0)];
      const [ca, cb] = [fleet.container('alpha'), fleet.container('beta')];
      expect(a).toMatch(new RegExp(`/containers/${ca}/(json|exec)`));
      expect(a).not.toContain(cb);
      expect(b).toMatch(new RegExp(`/containers/${cb}/(json|exec)`));
      expect(b).not.toContain(ca);
    });
  }

  it('a host that does not answer fails that target, naming the host; config check shows where each target is reached', async () => {
    fleet.platform = { container_cli: 'podman', container_host: 'unix:///nonexistent/platform.sock' };
    fleet.projects[1].database = {};
    fleet.writeConfig();
    const r = await fleet.cli(['backup', 'beta', 'production']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/platform.sock');
    const ok = await fleet.cli(['backup', 'alpha', 'production']);
    expect(ok.code, ok.stderr).toBe(0);
    const check = await fleet.cli(['config', 'check']);
    expect(check.stdout).toContain(`container ${fleet.container('alpha')} on unix://${sock('a')}`);
    expect(check.stdout).toContain(`container ${fleet.container('beta')} on unix:///nonexistent/platform.sock`);
  });
});
