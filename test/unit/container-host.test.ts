// container_host (lib/process/container.ts hostInvocation, ContainerCli, TargetShell; config keys):
// how a Docker context name and an API URL reach docker and podman, per target and per platform.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Target } from '../../lib/config/load.js';
import { ContainerCli, hostInvocation, hostText, TargetShell } from '../../lib/process/container.js';
import { Runner } from '../../lib/process/runner.js';

describe('container_host', () => {
  it('docker: a context name is --context, a URL is DOCKER_HOST (DOCKER_CONTEXT cleared); podman: --connection and --url', () => {
    expect(hostInvocation('docker', 'prod-b')).toEqual({ flags: ['--context', 'prod-b'], env: {} });
    expect(hostInvocation('docker', 'ssh://deploy@db-b')).toEqual({ flags: [], env: { DOCKER_HOST: 'ssh://deploy@db-b', DOCKER_CONTEXT: undefined } });
    expect(hostInvocation('podman', 'prod-b')).toEqual({ flags: ['--connection', 'prod-b'], env: {} });
    expect(hostInvocation('podman', 'unix:///run/b.sock')).toEqual({ flags: ['--url', 'unix:///run/b.sock'], env: {} });
    expect(hostInvocation('docker', undefined)).toEqual({ flags: [], env: {} });
    expect([hostText(undefined), hostText('prod-b'), hostText('tcp://10.0.0.2:2376')]).toEqual(['', ' on context prod-b', ' on tcp://10.0.0.2:2376']);
  });

  it("every call of a target goes to its host; a verification container override to the platform's", () => {
    const cli = new ContainerCli(new Runner(), 'docker', { platform: 'main', of: (r) => (r.project === 'beta' ? 'ssh://db-b' : undefined) });
    const target = { project: 'beta', environment: 'production', container: 'beta-db', envFile: '/nonexistent' } as Target;
    expect(cli.command(['start', 'x'], { project: 'alpha', environment: 'production' }).argv).toEqual(['docker', '--context', 'main', 'start', 'x']);
    const sh = new TargetShell(new Runner(), cli, target, { password: 'pw' });
    expect(sh.argv('psql', ['-c', 'select 1'], false)).toEqual(['docker', 'exec', '-e', 'PGPASSWORD', 'beta-db', 'psql', '-c', 'select 1']);
    expect(sh.where).toBe('container beta-db on ssh://db-b');
    expect(cli.commandText(['exec', '-it', 'beta-db'], target)).toBe('DOCKER_HOST=ssh://db-b docker exec -it beta-db');
    expect(cli.commandText(['exec', '-it', 'a-db'], { project: 'alpha', environment: 'production' })).toBe('docker --context main exec -it a-db');
    const verify = new TargetShell(new Runner(), cli, target, {}, 'verifier');
    expect(verify.argv('psql', [], false)).toEqual(['docker', '--context', 'main', 'exec', 'verifier', 'psql']);
  });

  it('config: platform.container_host and database.container_host (a project overrides); a bad value or a password in it is a config error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-host-'));
    try {
      const file = path.join(dir, 'projects.yml');
      const db = (extra = '') => `  database:\n    type: postgresql\n    container: pg\n    databases: { production: p }\n${extra}`;
      writeFileSync(file, `platform:\n  container_host: main\nalpha:\n${db()}beta:\n${db('    container_host: ssh://deploy@db-b\n')}`);
      const c = loadConfig(file, {});
      expect(c.platform.containerHost).toBe('main');
      expect(c.targets.map((t) => [t.project, t.containerHost])).toEqual([['alpha', 'main'], ['beta', 'ssh://deploy@db-b']]);
      writeFileSync(file, `alpha:\n${db('    container_host: "has space"\n')}`);
      expect(() => loadConfig(file, {})).toThrow(/alpha\.database\.container_host: expected a Docker context name or a unix:\/\/, ssh:\/\/, tcp:\/\/ URL/);
      writeFileSync(file, `alpha:\n${db('    container_host: tcp://u:secret@db-b:2376\n')}`);
      expect(() => loadConfig(file, {})).toThrow(/no password in container_host/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
