// lib/fleet/prune.ts: retention applied to one target, and its dry run on a read-only repository
// (lib/runtime/context.ts dryRunContext): the same plan, nothing written, any write refused.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findTarget } from '../../lib/config/load.js';
import { silentLogger } from '../../lib/core/log.js';
import type { BackupMetadata } from '../../lib/formats/metadata.js';
import { pruneTarget } from '../../lib/fleet/prune.js';
import { contextFor, defaultDeps, dryRunContext, type Context } from '../../lib/runtime/context.js';
import { DryRunWriteError } from '../../lib/storage/dryrun.js';
import { backupStem } from '../../lib/storage/repository.js';
import { sampleMetadata } from '../fixtures.js';

let dir: string;
let ctx: Context;
const NOW = '2025-04-30T12:00:00Z';

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-prune-'));
  const configFile = path.join(dir, 'projects.yml');
  writeFileSync(
    configFile,
    `platform:\n  backup_root: ${path.join(dir, 'backups')}\nacme:\n  database:\n    type: postgresql\n    container: pg\n    databases: { production: acme_production }\n    backup: { retention_days: 2, keep_daily: 0, keep_weekly: 0, keep_monthly: 0 }\n`,
  );
  ctx = contextFor(configFile, defaultDeps({ logger: silentLogger(), env: { PGFLEET_NOW: NOW }, out: () => undefined, progress: false }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function meta(at: string): BackupMetadata {
  return sampleMetadata(backupStem(new Date(at)), at, { source: { container: 'pg', user: null } });
}

/** Five nightly backups, Apr 26..30, and a temp file two days old. */
async function fiveNights() {
  for (const day of [26, 27, 28, 29, 30]) {
    const m = meta(`2025-04-${day}T02:00:00.000Z`);
    await ctx.repo.saveDump('acme', 'production', m.id, Buffer.from('dump'));
    await ctx.repo.saveMetadata(m);
  }
  const dbDir = ctx.repo.databaseDir('acme', 'production');
  const temp = path.join(dbDir, '.tmp-db_20250428_020000Z.dump.zst.1.abcd');
  writeFileSync(temp, 'partial');
  utimesSync(temp, new Date('2025-04-28T02:00:00Z'), new Date('2025-04-28T02:00:00Z'));
  return { dbDir, temp };
}

/** Every file under the backup root with its size and mtime. */
function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out[p] = `${statSync(p).size}:${statSync(p).mtimeMs}`;
      if (e.isDirectory()) walk(p);
    }
  };
  if (existsSync(ctx.repo.root)) walk(ctx.repo.root);
  return out;
}

describe('pruneTarget', () => {
  it('removes what the plan removes, metadata and dump, and day-old temp files', async () => {
    const { dbDir, temp } = await fiveNights();
    const t = findTarget(ctx.config, 'acme', 'production');
    const r = await pruneTarget(ctx, t);
    expect(r.dryRun).toBe(false);
    expect(r.remove.map((x) => x.id)).toEqual(['db_20250428_020000Z', 'db_20250427_020000Z', 'db_20250426_020000Z']);
    expect(r.tempFiles).toEqual([temp]);
    expect((await ctx.repo.list('acme', 'production')).map((b) => b.meta.id)).toEqual(['db_20250430_020000Z', 'db_20250429_020000Z']);
    expect(readdirSync(dbDir).sort()).toEqual(['db_20250429_020000Z', 'db_20250430_020000Z'].flatMap((id) => [`${id}.dump.zst`, `${id}.dump.zst.json`]));
  });

  it('on a dry run context plans the same, writes nothing, and the repository refuses a write', async () => {
    const { temp } = await fiveNights();
    const t = findTarget(ctx.config, 'acme', 'production');
    const before = snapshot();
    const dry = dryRunContext(ctx);
    const r = await pruneTarget(dry, t);
    expect(r.dryRun).toBe(true);
    expect(r.remove.map((x) => x.id)).toEqual(['db_20250428_020000Z', 'db_20250427_020000Z', 'db_20250426_020000Z']);
    expect(r.tempFiles).toEqual([temp]);
    expect(snapshot()).toEqual(before);
    const [victim] = (await dry.repo.list('acme', 'production')).slice(-1);
    await expect(dry.repo.remove(victim)).rejects.toBeInstanceOf(DryRunWriteError);
    expect(snapshot()).toEqual(before);
  });

  it('a dry run of a target with no directory creates none; an upcoming backup is planned as if it existed', async () => {
    const t = findTarget(ctx.config, 'acme', 'production');
    const upcoming = { id: backupStem(new Date(NOW)), created_at: NOW, type: 'scheduled' as const, verification: null };
    const r = await pruneTarget(dryRunContext(ctx), t, { upcoming });
    expect(r).toMatchObject({ dryRun: true, remove: [], tempFiles: [] });
    expect(r.keep.map((k) => k.id)).toEqual([upcoming.id]);
    expect(existsSync(ctx.repo.root)).toBe(false);
  });
});
