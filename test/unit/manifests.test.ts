// lib/storage/manifests.ts: deployment manifests on disk, their order, their checks as untrusted input, and what they pin.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  compareManifests,
  manifestPath,
  pinnedByDeployments,
  previousRelease,
  readManifest,
  saveManifest,
  scanManifests,
  type DeploymentManifest,
} from '../../lib/storage/manifests.js';
import { EXIT } from '../../lib/core/errors.js';
import { Repository } from '../../lib/storage/repository.js';

let dir: string;
let repo: Repository;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-deploy-unit-'));
  repo = new Repository(path.join(dir, 'backups'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function manifest(release: string, created_at: string, over: Partial<DeploymentManifest> = {}): DeploymentManifest {
  const backup = `db_${created_at.slice(0, 4)}${created_at.slice(5, 7)}${created_at.slice(8, 10)}_${created_at.slice(11, 13)}${created_at.slice(14, 16)}${created_at.slice(17, 19)}Z`;
  return {
    format_version: 1,
    project: 'acme',
    environment: 'production',
    release,
    previous_release: null,
    created_at,
    database: 'acme_production',
    backup,
    database_backup: repo.dumpPath('acme', 'production', backup),
    app_containers: [{ name: 'acme-app', image: 'registry/acme:1' }],
    status: 'deployed',
    rollback: null,
    pgfleet_version: '0.1.0',
    ...over,
  };
}

describe('manifest ordering', () => {
  it('orders by created_at, then release name (numeric-aware), newest first — not by file mtime', async () => {
    const a = manifest('v9', '2025-01-01T10:00:00Z');
    const b = manifest('v10', '2025-01-01T10:00:00Z', { backup: 'db_20250101_100000Z_2', database_backup: repo.dumpPath('acme', 'production', 'db_20250101_100000Z_2') });
    const c = manifest('v2', '2025-01-02T09:00:00Z');
    expect([a, c, b].sort(compareManifests).map((m) => m.release)).toEqual(['v2', 'v10', 'v9']);
    // Written newest-first so that mtime order is the reverse of created_at order.
    for (const m of [c, b, a]) await saveManifest(repo, m);
    const { manifests, bad } = await scanManifests(repo, 'acme', 'production');
    expect(bad).toEqual([]);
    expect(manifests.map((s) => s.manifest.release)).toEqual(['v2', 'v10', 'v9']);
  });

  it('previous release skips rolled-back releases and the release itself', async () => {
    const list = [
      manifest('r3', '2025-01-03T00:00:00Z', { status: 'rolled-back' }),
      manifest('r2', '2025-01-02T00:00:00Z'),
      manifest('r1', '2025-01-01T00:00:00Z'),
    ].map((m) => ({ manifest: m, file: manifestPath(repo, 'acme', 'production', m.release) }));
    expect(previousRelease(list, 'r4')).toBe('r2');
    expect(previousRelease(list, 'r2')).toBe('r1');
    expect(previousRelease([], 'r1')).toBeNull();
  });
});

describe('manifests are untrusted input', () => {
  const file = () => manifestPath(repo, 'acme', 'production', 'v1');
  async function writeRaw(data: unknown) {
    await saveManifest(repo, manifest('v0', '2024-12-01T00:00:00Z')); // creates the directory
    writeFileSync(file(), typeof data === 'string' ? data : JSON.stringify(data));
  }
  async function problem(): Promise<string> {
    const e = await readManifest(repo, 'acme', 'production', file()).then(() => null, (err) => err);
    expect(e, 'expected the manifest to be rejected').not.toBeNull();
    expect(e.exitCode).toBe(EXIT.USAGE);
    expect(e.message).toContain(file());
    return e.message;
  }

  it('saves atomically at 0600 in a 0700 directory, and reads back what it saved', async () => {
    const m = manifest('v1', '2025-01-01T00:00:00Z');
    const f = await saveManifest(repo, m);
    expect(f).toBe(file());
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(f)).mode & 0o777).toBe(0o700);
    expect(readdirSync(path.dirname(f)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await readManifest(repo, 'acme', 'production', f)).toEqual(m);
    expect(await readManifest(repo, 'acme', 'production', manifestPath(repo, 'acme', 'production', 'nope'))).toBeNull();
  });

  it('rejects invalid JSON', async () => {
    await writeRaw('{"release": "v1",');
    expect(await problem()).toMatch(/not valid JSON/);
  });

  it('rejects schema violations (missing key, unknown key, bad status, hostile release)', async () => {
    const { backup: _b, ...noBackup } = manifest('v1', '2025-01-01T00:00:00Z');
    await writeRaw(noBackup);
    expect(await problem()).toMatch(/schema: .*backup/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), surprise: 1 });
    expect(await problem()).toMatch(/surprise/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), status: 'fine' });
    expect(await problem()).toMatch(/schema: \/status/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), previous_release: '../etc' });
    expect(await problem()).toMatch(/previous_release/);
  });

  it('rejects a database_backup outside the backup root, outside the target, or not matching the backup id', async () => {
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), database_backup: '/etc/passwd' });
    expect(await problem()).toMatch(/outside the backup root/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), database_backup: repo.dumpPath('acme', 'production', 'db_20250101_000000Z') + '/../../../../other/production/database/db_20250101_000000Z.dump.zst' });
    expect(await problem()).toMatch(/outside acme\/production's database directory/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), database_backup: repo.dumpPath('globex', 'production', 'db_20250101_000000Z') });
    expect(await problem()).toMatch(/outside acme\/production's database directory/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), database_backup: repo.dumpPath('acme', 'production', 'db_20240101_000000Z') });
    expect(await problem()).toMatch(/not the dump of backup db_20250101_000000Z/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), database_backup: 'relative/db.dump.zst' });
    expect(await problem()).toMatch(/absolute/);
  });

  it('rejects a manifest whose names do not match its place', async () => {
    await writeRaw(manifest('v2', '2025-01-01T00:00:00Z'));
    expect(await problem()).toMatch(/does not match the file name/);
    await writeRaw({ ...manifest('v1', '2025-01-01T00:00:00Z'), project: 'globex' });
    expect(await problem()).toMatch(/names globex\/production/);
  });

  it('scan lists unusable files apart, and ignores temp files', async () => {
    await saveManifest(repo, manifest('v1', '2025-01-01T00:00:00Z'));
    writeFileSync(manifestPath(repo, 'acme', 'production', 'broken'), 'nope');
    writeFileSync(path.join(repo.deploymentsDir('acme', 'production'), '.tmp-v3.json.123.abcd'), '{');
    const { manifests, bad } = await scanManifests(repo, 'acme', 'production');
    expect(manifests.map((s) => s.manifest.release)).toEqual(['v1']);
    expect(bad.map((b) => path.basename(b.file))).toEqual(['broken.json']);
    expect(await scanManifests(repo, 'acme', 'staging')).toEqual({ manifests: [], bad: [] });
  });

  it('saveManifest refuses to write a manifest that would not pass its own checks', async () => {
    await expect(saveManifest(repo, { ...manifest('v1', '2025-01-01T00:00:00Z'), database_backup: '/tmp/x.dump.zst' })).rejects.toThrow(/outside the backup root/);
  });
});

describe('pinning for retention', () => {
  it('pins the pre-deploy backups of the latest two valid manifests, and whatever an unusable manifest names', async () => {
    expect((await pinnedByDeployments(repo, 'acme', 'production')).size).toBe(0);
    const ms = [manifest('r1', '2025-01-01T00:00:00Z'), manifest('r2', '2025-01-02T00:00:00Z'), manifest('r3', '2025-01-03T00:00:00Z', { status: 'rolled-back' })];
    for (const m of ms) await saveManifest(repo, m);
    const broken = { ...manifest('r9', '2025-02-01T00:00:00Z'), database_backup: '/etc/passwd' };
    writeFileSync(manifestPath(repo, 'acme', 'production', 'r9'), JSON.stringify(broken));
    const pinned = await pinnedByDeployments(repo, 'acme', 'production');
    // The unusable manifest does not count as a deployment, but the backup it names is kept (fail safe).
    expect([...pinned.keys()].sort()).toEqual([ms[1].backup, ms[2].backup, broken.backup].sort());
    expect(pinned.get(broken.backup)).toMatch(/unusable manifest r9\.json .*kept until it is fixed/);
    expect(pinned.get(ms[2].backup)).toMatch(/release r3 \(latest/);
    expect(pinned.get(ms[1].backup)).toMatch(/release r2 \(previous/);
    expect(readFileSync(manifestPath(repo, 'acme', 'production', 'r1'), 'utf8')).toContain('"r1"');
  });
});
