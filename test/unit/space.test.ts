// Disk-space preflight (lib/fleet/space.ts): statfs of backup_root, a backup refused before anything
// is dumped when free space is below its previous backup × 1.5 (checked in lib/backup/cycle.ts),
// status's warning and the metrics' free/needed series. The "previous backup" is a sparse file
// larger than the disk, so no test fills a real disk.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statfsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backupCycle } from '../../lib/backup/cycle.js';
import { runStatus } from '../../lib/commands/status.js';
import { findTarget } from '../../lib/config/load.js';
import { EXIT } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/log.js';
import type { BackupMetadata } from '../../lib/formats/metadata.js';
import { writeMetrics } from '../../lib/fleet/metrics.js';
import { checkSpace, diskOutlook, freeBytes, InsufficientSpaceError } from '../../lib/fleet/space.js';
import { contextFor, defaultDeps, type Context } from '../../lib/runtime/context.js';
import { backupStem } from '../../lib/storage/repository.js';

let dir: string;
let ctx: Context;
let out: string[];
const TIB = 2 ** 40;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-space-'));
  const configFile = path.join(dir, 'projects.yml');
  writeFileSync(
    configFile,
    `platform:\n  backup_root: ${path.join(dir, 'backups')}\n  metrics: { textfile: ${path.join(dir, 'pgfleet.prom')} }\n` +
      `acme:\n  database:\n    type: postgresql\n    container: pg-that-does-not-exist\n    databases: { production: acme_production }\n    hooks: { pre_backup: [touch, pre-hook-ran] }\n`,
  );
  out = [];
  ctx = contextFor(configFile, defaultDeps({ logger: silentLogger(), env: { PGFLEET_NOW: '2025-04-30T12:00:00Z' }, out: (l) => void out.push(l), progress: false }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A complete backup whose dump is a sparse file of `size` bytes. */
async function previous(size: number): Promise<BackupMetadata> {
  const at = '2025-04-30T02:00:00.000Z';
  const id = backupStem(new Date(at));
  await ctx.repo.saveDump('acme', 'production', id, Buffer.from('x'));
  truncateSync(ctx.repo.dumpPath('acme', 'production', id), size);
  const m: BackupMetadata = {
    format_version: 1, id, project: 'acme', environment: 'production', database: 'acme_production', type: 'scheduled', release: null,
    created_at: at, started_at: at, finished_at: at, duration_ms: 1, file: id + '.dump.zst', size_bytes: size, sha256: 'a'.repeat(64),
    format: 'custom', compression: { algorithm: 'zstd', level: 3 }, encryption: null, pg_dump_version: '15', server_version: '15',
    source: { container: 'pg', user: null }, tables: {}, total_rows: 0, pgfleet_version: '0', verification: null,
  };
  await ctx.repo.saveMetadata(m);
  return m;
}

describe('disk-space preflight', () => {
  it('freeBytes is statfs of backup_root, or of its nearest parent before the first backup creates it', async () => {
    const s = statfsSync(dir);
    const free = (await freeBytes(ctx))!;
    expect(existsSync(ctx.repo.root)).toBe(false);
    expect(Math.abs(free - s.bavail * s.bsize)).toBeLessThan(256 * 2 ** 20);
  });

  it('a target never backed up is not checked; one whose previous backup × 1.5 exceeds the free space is refused before anything is dumped or hooked', async () => {
    const t = findTarget(ctx.config, 'acme', 'production');
    await checkSpace(ctx, t);
    const m = await previous(12 * TIB);
    const e = await backupCycle(ctx, t, { command: 'backup', backup: { type: 'manual', release: null } }).catch((x) => x);
    expect(e).toBeInstanceOf(InsufficientSpaceError);
    expect(e.exitCode).toBe(EXIT.FAILED);
    expect(e.message).toMatch(new RegExp(`^acme/production: not enough free space on ${ctx.repo.root} for the next dump: [\\d.]+ GiB free, 18\\.0 TiB expected \\(the previous backup's 12\\.0 TiB × 1\\.5\\); nothing dumped`));
    expect(readdirSync(ctx.repo.databaseDir('acme', 'production')).sort()).toEqual([m.file, m.file + '.json']);
    expect(existsSync(path.join(dir, 'pre-hook-ran'))).toBe(false);
    expect(existsSync(path.join(ctx.repo.targetDir('acme', 'production'), '.lock'))).toBe(false);
  });

  it('status warns (never fails for it) when free space is below what the next night needs; the metrics carry free and needed bytes', async () => {
    await previous(12 * TIB);
    const { report } = await runStatus(ctx, { json: true });
    expect(report.disk).toMatchObject({ backup_root: ctx.repo.root, needed_bytes: 18 * TIB, warning: expect.stringMatching(/expected to need 18\.0 TiB/) });
    expect(report.targets[0].problems).toEqual([]);
    out = [];
    const { exitCode } = await runStatus(ctx, {});
    expect(exitCode).toBe(EXIT.OK);
    expect(out).toContainEqual(expect.stringMatching(/^warning: .* free; the next run of the enabled targets is expected to need 18\.0 TiB/));
    await writeMetrics(ctx);
    const prom = readFileSync(path.join(dir, 'pgfleet.prom'), 'utf8');
    expect(prom).toMatch(/^pgfleet_backup_root_free_bytes\{project="acme",environment="production"\} \d+$/m);
    expect(prom).toMatch(new RegExp(`^pgfleet_backup_next_expected_bytes\\{project="acme",environment="production"\\} ${18 * TIB}$`, 'm'));
  });

  it('enough space: no warning', async () => {
    await previous(1000);
    expect((await diskOutlook(ctx))!.warning).toBeUndefined();
    expect((await runStatus(ctx, { json: true })).report.disk).toMatchObject({ needed_bytes: 1500 });
  });
});
