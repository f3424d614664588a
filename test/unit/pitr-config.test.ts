// database.pitr: checked with file and line, resolved onto the target; one cluster, one archive_dir.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkConfigText, loadConfig } from '../../lib/config/load.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-pitr-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const project = (name: string, pitr: string, container = 'postgres-platform') => `${name}:
  database:
    type: postgresql
    container: ${container}
    databases: { production: ${name}_production }
    pitr:
${pitr}
`;

describe('database.pitr', () => {
  it('resolves onto the target with defaults, archive_dir relative to projects.yml', () => {
    const file = path.join(dir, 'projects.yml');
    writeFileSync(file, project('acme', '      enabled: true\n      archive_dir: wal/postgres-platform') + project('beta', '      enabled: false\n      archive_dir: /srv/x'));
    const c = loadConfig(file, {});
    const acme = c.targets.find((t) => t.project === 'acme')!;
    expect(acme.pitr).toEqual({ archiveDir: path.join(dir, 'wal/postgres-platform'), maxWalAgeMs: 300_000, baseBackupEveryMs: 86_400_000, keepBaseBackups: 2, baseBackupRetentionMs: 7 * 86_400_000 });
    expect(c.targets.find((t) => t.project === 'beta')!.pitr).toBeUndefined();
  });

  it('takes max_wal_age, base_backup_every, keep_base_backups and base_backup_retention; keep_base_backups is at least 1', () => {
    const file = path.join(dir, 'p2.yml');
    writeFileSync(file, project('acme', '      enabled: true\n      archive_dir: /srv/wal\n      max_wal_age: 2m\n      base_backup_every: 6h\n      keep_base_backups: 3\n      base_backup_retention: 36h'));
    expect(loadConfig(file, {}).targets[0].pitr).toEqual({ archiveDir: '/srv/wal', maxWalAgeMs: 120_000, baseBackupEveryMs: 21_600_000, keepBaseBackups: 3, baseBackupRetentionMs: 36 * 3_600_000 });
    writeFileSync(file, project('acme', '      enabled: true\n      archive_dir: /srv/wal\n      keep_base_backups: 0'));
    expect(() => loadConfig(file, {})).toThrow(/acme\.database\.pitr\.keep_base_backups/);
  });

  it('enabled needs a container and an archive_dir; unknown keys and bad durations are named with their line', () => {
    const text = `acme:
  database:
    type: postgresql
    databases: { production: acme }
    pitr:
      enabled: true
beta:
  database:
    type: postgresql
    container: c1
    databases: { production: beta }
    pitr: { enabled: true, archive_dir: /a, max_wal_age: soon, archive_dri: /b }
`;
    const { issues } = checkConfigText(text, 'projects.yml');
    const msgs = issues.map((i) => `${i.line}: ${i.path}: ${i.message}`);
    expect(msgs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^5: acme\.database\.pitr: .*needs database\.container/),
        expect.stringMatching(/^5: acme\.database\.pitr: .*needs archive_dir/),
        expect.stringMatching(/^12: beta\.database\.pitr\.max_wal_age: expected a duration/),
        expect.stringMatching(/^12: beta\.database\.pitr\.archive_dri: unknown key \(did you mean "archive_dir"\?\)/),
      ]),
    );
  });

  it('two projects on one container must name the same archive_dir', () => {
    const good = project('acme', '      enabled: true\n      archive_dir: /srv/wal') + project('beta', '      enabled: true\n      archive_dir: /srv/wal');
    expect(checkConfigText(good, 'p.yml').issues).toEqual([]);
    const bad = project('acme', '      enabled: true\n      archive_dir: /srv/wal') + project('beta', '      enabled: true\n      archive_dir: /srv/other');
    const { issues } = checkConfigText(bad, 'p.yml');
    expect(issues.map((i) => i.message)).toEqual([expect.stringMatching(/container postgres-platform archives into \/srv\/wal \(acme\), not \/srv\/other: one cluster, one archive_dir/)]);
  });
});
