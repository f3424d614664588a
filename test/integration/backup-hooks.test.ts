// database.hooks.pre_backup / post_backup around real backups (lib/backup/hooks.ts through
// lib/backup/cycle.ts): their PGFLEET_* variables, a failing pre_backup fails the backup with
// nothing dumped (post_backup still told), a failing post_backup keeps the backup and fails the
// run, a hook past database.hooks.timeout is killed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers.js';

describe('backup hooks (real PostgreSQL in a container)', () => {
  let fleet: TestFleet;
  const log = () => (existsSync(path.join(fleet.dir, 'hooks.log')) ? readFileSync(path.join(fleet.dir, 'hooks.log'), 'utf8').trim().split('\n') : []);
  const dumps = () => {
    const d = path.join(fleet.backupRoot, 'acme', 'production', 'database');
    return existsSync(d) ? readdirSync(d).filter((n) => n.endsWith('.dump.zst')) : [];
  };
  const setHooks = (hooks: Record<string, unknown>) => {
    fleet.projects[0].database = { hooks };
    fleet.writeConfig();
    rmSync(path.join(fleet.dir, 'hooks.log'), { force: true });
  };

  beforeAll(async () => {
    fleet = await TestFleet.create([{ project: 'acme', databases: { production: 'acme_production' } }]);
    await fleet.sql('acme', 'acme_production', 'CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);');
    // One script for both hooks: it logs its variables, and fails when told to.
    const script = path.join(fleet.dir, 'hook.sh');
    writeFileSync(
      script,
      `#!/bin/sh\nprintf '%s %s %s %s %s %s %s\\n' "$PGFLEET_HOOK" "$PGFLEET_PROJECT/$PGFLEET_ENVIRONMENT" "$PGFLEET_DATABASE" "$PGFLEET_BACKUP_TYPE" "\${PGFLEET_RESULT:--}" "\${PGFLEET_BACKUP_ID:--}" "\${PGFLEET_BACKUP_PATH:--}" >> hooks.log\n` +
        `[ -n "$PGFLEET_BACKUP_PATH" ] && [ -f "$PGFLEET_BACKUP_PATH" ] && echo "dump there" >> hooks.log\n` +
        `[ "$1" = fail ] && { echo "refusing: $PGFLEET_HOOK" >&2; exit 7; }\n[ "$1" = hang ] && exec sleep 60\nexit 0\n`,
    );
    chmodSync(script, 0o755);
  });
  afterAll(() => fleet?.cleanup());

  it('pre_backup and post_backup run around the dump with the PGFLEET_* variables, the dump in place for post_backup', async () => {
    setHooks({ pre_backup: ['./hook.sh'], post_backup: ['./hook.sh'] });
    const r = await fleet.cli(['backup', 'acme', 'production']);
    expect(r.code, r.stderr).toBe(0);
    const dump = r.stdout.trim().split('\n').at(-1)!;
    const id = path.basename(dump, '.dump.zst');
    expect(log()).toEqual([`pre_backup acme/production acme_production manual - - -`, `post_backup acme/production acme_production manual success ${id} ${dump}`, 'dump there']);
  });

  it('a failing pre_backup fails the backup cleanly: exit 1 naming the hook, nothing dumped, post_backup told of the failure', async () => {
    const before = dumps();
    setHooks({ pre_backup: ['./hook.sh', 'fail'], post_backup: ['./hook.sh'] });
    const r = await fleet.cli(['backup', 'acme', 'production']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pre_backup hook failed, nothing dumped: pre_backup hook \.\/hook\.sh fail: exit code 7/);
    expect(r.stderr).toMatch(/refusing: pre_backup/);
    expect(dumps()).toEqual(before);
    expect(log()).toEqual(['pre_backup acme/production acme_production manual - - -', 'post_backup acme/production acme_production manual failure - -']);
  });

  it('a failing post_backup keeps the backup and fails the run (the retention rule); scheduled-backup marks the target failed', async () => {
    setHooks({ post_backup: ['./hook.sh', 'fail'] });
    const before = dumps().length;
    const r = await fleet.cli(['backup', 'acme', 'production']);
    expect(r.code).toBe(1);
    expect(existsSync(r.stdout.trim().split('\n').at(-1)!)).toBe(true); // the path is still the last stdout line
    expect(r.stderr).toMatch(/backup db_\w+ kept, but its post_backup hook failed: .*post_backup hook failed \(the backup is kept\)/);
    expect(dumps()).toHaveLength(before + 1);
    const s = await fleet.cli(['scheduled-backup']);
    expect(s.code).toBe(1);
    expect(s.stdout).toMatch(/FAILED.*kept, but its post_backup hook failed/);
  });

  it('a hook past database.hooks.timeout is killed and fails like any other failure', async () => {
    setHooks({ pre_backup: ['./hook.sh', 'hang'], timeout: '2s' });
    const before = dumps();
    const t0 = Date.now();
    const r = await fleet.cli(['backup', 'acme', 'production']);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.stderr).toMatch(/pre_backup hook \.\/hook\.sh hang: killed by SIGTERM[^]*timed out after 2 s \(database\.hooks\.timeout\); killed/);
    expect(dumps()).toEqual(before);
  });
});
