/**
 * lib/process/container.ts with the real container CLIs, no container started: a missing
 * container is told by the CLI's own listing (never by its error text), a CLI that cannot answer
 * is not mistaken for a missing container, and a TargetShell's failures name the program run
 * inside `docker exec` (not docker) and the CLI it ran through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError, EXIT, PgfleetError } from '../../lib/core/errors.js';
import type { Target } from '../../lib/config/load.js';
import { ContainerCli, TargetShell } from '../../lib/process/container.js';
import { Runner } from '../../lib/process/runner.js';
import { useSandboxContainersConf } from '../../scripts/sandbox/tenants.js';

const runner = new Runner();
const podman = new ContainerCli(runner, 'podman');
const NONE = `pgfleet-unit-no-such-container-${process.pid}`;
const ref = { project: 'acme', environment: 'production' };

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

function target(over: Partial<Target> = {}): Target {
  return {
    project: 'acme',
    environment: 'production',
    database: 'acme_production',
    appContainers: [],
    hooks: {},
    backup: {} as Target['backup'],
    envFile: 'configs/acme/.env.production',
    ...over,
  };
}

describe('ContainerCli', () => {
  it('a container that does not exist: isRunning is null, exists false, requireRunning names it (exit 1)', async () => {
    expect(await podman.exists(NONE)).toBe(false);
    expect(await podman.isRunning(NONE, ref)).toBeNull();
    const e = await rejection(podman.requireRunning(NONE, ref));
    expect(e).toBeInstanceOf(PgfleetError);
    expect((e as PgfleetError).exitCode).toBe(EXIT.FAILED);
    expect((e as PgfleetError).message).toBe(`acme/production: container "${NONE}" does not exist (podman lists none of that name)`);
  });

  it('an existing container: listed by name and by id, running, then stopped', async () => {
    useSandboxContainersConf();
    const name = `pgfleet-unit-container-${process.pid}`;
    const id = (await runner.run(['podman', 'run', '-d', '--name', name, '--network=none', '--init', '--rootfs', '/:O', '/bin/sleep', 'infinity'])).stdout.trim();
    try {
      expect(await podman.exists(name)).toBe(true);
      expect(await podman.exists(id.slice(0, 12))).toBe(true);
      expect(await podman.isRunning(name, ref)).toBe(true);
      await podman.requireRunning(name, ref);
      await podman.stop(name, ref, 0);
      expect(await podman.isRunning(name, ref)).toBe(false);
      await expect(podman.requireRunning(name, ref)).rejects.toThrow(`acme/production: container "${name}" is not running`);
    } finally {
      await runner.run(['podman', 'rm', '-f', '-t', '0', name]).catch(() => undefined);
    }
  });

  describe('a CLI that cannot reach its daemon', () => {
    const saved = process.env.DOCKER_HOST;
    beforeAll(() => {
      process.env.DOCKER_HOST = `unix:///nonexistent-${process.pid}/docker.sock`;
    });
    afterAll(() => {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    });

    it('is an inspect that failed (program docker, role inspect), never "no such container"', async () => {
      const e = await rejection(new ContainerCli(runner, 'docker').isRunning(NONE, ref));
      expect(e).toBeInstanceOf(CommandError);
      expect(e).toMatchObject({ program: 'docker', role: 'inspect', via: undefined, target: ref });
      expect((e as CommandError).command).toBe(`docker container inspect --format "{{.State.Running}}" ${NONE}`);
    });
  });
});

describe('TargetShell', () => {
  it('through a container: the program is the one inside `podman exec`, via podman, the password not on the command line', async () => {
    const sh = new TargetShell(runner, podman, target({ container: NONE }), { password: 'pw-never-in-argv-7' });
    const e = await rejection(sh.run('pg_dump', ['--version'], { role: 'dump' }));
    expect(e).toBeInstanceOf(CommandError);
    expect(e).toMatchObject({ program: 'pg_dump', role: 'dump', via: 'podman', target: ref });
    expect((e as CommandError).command).toBe(`podman exec -e PGPASSWORD ${NONE} pg_dump --version`);
    expect(String((e as CommandError).message)).not.toContain('pw-never-in-argv-7');
  });

  it('directly (DATABASE_URL): no via; a wrapper script says which program it runs', async () => {
    const sh = new TargetShell(runner, podman, target(), { databaseUrl: 'postgresql://acme:pw@db.invalid/acme_production' });
    const e = await rejection(sh.run('sh', ['-c', 'exit 3'], { program: 'pg_restore', role: 'restore' }));
    expect(e).toMatchObject({ program: 'pg_restore', role: 'restore', via: undefined, code: 3 });
    const plain = await rejection(sh.run('sh', ['-c', 'exit 4']));
    expect(plain).toMatchObject({ program: 'sh', role: undefined, code: 4 });
  });
});
