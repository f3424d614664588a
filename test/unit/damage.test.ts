// Damage is reported everywhere (issue 14): a backup whose metadata is complete but whose dump is
// truncated, deleted or resized, unreadable metadata, and a dump left without metadata for over a
// day are found by the repository's survey and shown by list, status, verify-backups, prune and the
// metrics; retention never counts or deletes one, `prune --remove-damaged` removes one by name.
// And nothing to do is an error: no enabled target fails config check, scheduled-backup,
// verify-backups and status unless --allow-empty.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runConfigCheck } from '../../lib/commands/config-check.js';
import { runList, type ListedBackup } from '../../lib/commands/list.js';
import { runPrune } from '../../lib/commands/prune.js';
import { runScheduledBackup } from '../../lib/commands/scheduled-backup.js';
import { runStatus } from '../../lib/commands/status.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { findTarget } from '../../lib/config/load.js';
import { EXIT, UsageError } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/log.js';
import type { BackupMetadata } from '../../lib/formats/metadata.js';
import { pruneTarget } from '../../lib/fleet/prune.js';
import { contextFor, defaultDeps, type Context } from '../../lib/runtime/context.js';
import { backupStem } from '../../lib/storage/repository.js';

let dir: string;
let out: string[];
const NOW = '2025-04-30T12:00:00Z';

function context(yml: string): Context {
  const configFile = path.join(dir, 'projects.yml');
  writeFileSync(configFile, yml);
  out = [];
  return contextFor(configFile, defaultDeps({ logger: silentLogger(), env: { PGFLEET_NOW: NOW }, out: (l) => void out.push(l), progress: false }));
}

const FLEET = () =>
  `platform:\n  backup_root: ${path.join(dir, 'backups')}\n  metrics: { textfile: ${path.join(dir, 'pgfleet.prom')} }\n` +
  `acme:\n  database:\n    type: postgresql\n    container: pg\n    databases: { production: acme_production }\n    backup: { retention_days: 0, keep_daily: 1, keep_weekly: 0, keep_monthly: 0 }\n`;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-damage-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function meta(at: string, size: number): BackupMetadata {
  const id = backupStem(new Date(at));
  return {
    format_version: 1, id, project: 'acme', environment: 'production', database: 'acme_production', type: 'scheduled', release: null,
    created_at: at, started_at: at, finished_at: at, duration_ms: 1, file: id + '.dump.zst', size_bytes: size, sha256: 'a'.repeat(64),
    format: 'custom', compression: { algorithm: 'zstd', level: 3 }, encryption: null, pg_dump_version: '15.4', server_version: '15.4',
    source: { container: 'pg', user: null }, tables: { 'public.t': 1 }, total_rows: 1, pgfleet_version: '0.1.0', verification: null,
  };
}

/**
 * Nights Apr 25..29, each a complete backup, then damaged: the 29th's dump truncated, the 28th's
 * deleted, the 27th's metadata garbled; a dump with no metadata from the 24th (two days old) and
 * one from now (a backup still running). Returns the ids by night.
 */
async function damagedFleet(ctx: Context) {
  const ids: Record<number, string> = {};
  for (const day of [25, 26, 27, 28, 29]) {
    const m = meta(`2025-04-${day}T02:00:00.000Z`, 9);
    await ctx.repo.saveDump('acme', 'production', m.id, Buffer.from('dumpbytes'));
    await ctx.repo.saveMetadata(m);
    ids[day] = m.id;
  }
  const dump = (id: string) => ctx.repo.dumpPath('acme', 'production', id);
  truncateSync(dump(ids[29]), 4);
  unlinkSync(dump(ids[28]));
  writeFileSync(dump(ids[27]) + '.json', '{ not json');
  const orphan = backupStem(new Date('2025-04-24T02:00:00Z'));
  writeFileSync(dump(orphan), 'lost');
  utimesSync(dump(orphan), new Date('2025-04-24T02:00:05Z'), new Date('2025-04-24T02:00:05Z'));
  const running = backupStem(new Date('2025-04-30T11:59:00Z'));
  writeFileSync(dump(running), 'in progress');
  utimesSync(dump(running), new Date('2025-04-30T11:59:30Z'), new Date('2025-04-30T11:59:30Z'));
  return { ids, orphan, running };
}

describe('damaged backups', () => {
  it('the survey finds each kind of damage with its problem; a running backup\'s fresh dump is not damage', async () => {
    const ctx = context(FLEET());
    const { ids, orphan } = await damagedFleet(ctx);
    const s = await ctx.repo.survey('acme', 'production', ctx.clock());
    expect(s.complete.map((b) => b.meta.id)).toEqual([ids[26], ids[25]]);
    expect(s.damaged.map((d) => [d.id, d.problem, d.meta?.id ?? null])).toEqual([
      [ids[29], 'dump is 4 bytes, metadata says 9', ids[29]],
      [ids[28], 'dump file missing', ids[28]],
      [ids[27], expect.stringMatching(/^unreadable metadata: /), null],
      [orphan, 'dump without metadata (last written 2025-04-24T02:00:05.000Z)', null],
    ]);
    expect(await ctx.repo.list('acme', 'production')).toEqual(s.complete);
  });

  it('list shows them as damaged with the problem (--json: state, problem), in the one order', async () => {
    const ctx = context(FLEET());
    const { ids, orphan } = await damagedFleet(ctx);
    const all: ListedBackup[] = await runList(ctx, { json: true });
    expect(JSON.parse(out.join('\n'))).toEqual(all);
    expect(all.map((b) => [b.id, b.state])).toEqual([
      [ids[29], 'damaged'], [ids[28], 'damaged'], [ids[27], 'damaged'], [ids[26], 'complete'], [ids[25], 'complete'], [orphan, 'damaged'],
    ]);
    expect(all[0]).toMatchObject({ problem: 'dump is 4 bytes, metadata says 9', size_bytes: 9, type: 'scheduled' });
    expect(all[2]).toMatchObject({ database: null, size_bytes: null, created_at: null, path: ctx.repo.dumpPath('acme', 'production', ids[27]) });
    expect(all[3]).not.toHaveProperty('problem');
    await runList(ctx, {});
    expect(out.join('\n')).toMatch(/DAMAGED/);
    expect(out.at(-1)).toMatch(new RegExp(`4 damaged backup\\(s\\)[^]*acme/production ${ids[28]}: dump file missing`));
  });

  it('status fails and names each; the metrics count them per target', async () => {
    const ctx = context(FLEET());
    const { ids } = await damagedFleet(ctx);
    const { report, exitCode } = await runStatus(ctx, { json: true });
    expect(exitCode).toBe(EXIT.FAILED);
    const t = report.targets[0];
    expect(t.ok).toBe(false);
    expect(t.damaged.map((d) => d.id)).toEqual([ids[29], ids[28], ids[27], expect.any(String)]);
    expect(t.problems[0]).toMatch(new RegExp(`^4 damaged backup\\(s\\): ${ids[29]} \\(dump is 4 bytes`));
    expect(t.latest?.id).toBe(ids[26]);
    await runPrune(ctx, {}); // rewrites the metrics
    expect(readFileSync(path.join(dir, 'pgfleet.prom'), 'utf8')).toMatch(/^pgfleet_backup_damaged_count\{project="acme",environment="production"\} 4$/m);
  });

  it('status of a disabled target fails on damage too (and only on damage)', async () => {
    const ctx = context(FLEET().replace('keep_monthly: 0 }', 'keep_monthly: 0, enabled: false }') + `other:\n  database:\n    type: postgresql\n    container: pg\n    databases: { production: other }\n`);
    await damagedFleet(ctx);
    const { report } = await runStatus(ctx, { json: true });
    expect(report.targets.find((t) => t.project === 'acme')!.ok).toBe(false);
  });

  it('verify-backups fails with exit 4 on each, without a container (nothing to restore), and names it', async () => {
    const ctx = context(FLEET());
    const { ids } = await damagedFleet(ctx);
    for (const id of [ids[26], ids[25]]) await ctx.repo.remove((await ctx.repo.find('acme', 'production', id))!);
    const r = await runVerifyBackups(ctx, {});
    expect(r.exitCode).toBe(EXIT.VERIFY_FAILED);
    expect(r.results.map((x) => [x.id, x.status])).toEqual([[ids[29], 'failed'], [ids[28], 'failed'], [ids[27], 'failed'], [expect.any(String), 'failed']]);
    expect(out.join('\n')).toMatch(new RegExp(`FAILED  acme/production ${ids[28]}: damaged backup: dump file missing`));
    const one = await runVerifyBackups(ctx, { project: 'acme', environment: 'production', backup: ids[29] });
    expect([one.exitCode, one.results.length]).toEqual([EXIT.VERIFY_FAILED, 1]);
  });

  it('retention never counts or deletes one; prune lists them; --remove-damaged removes one by name, refuses a complete one', async () => {
    const ctx = context(FLEET());
    const { ids, orphan, running } = await damagedFleet(ctx);
    const t = findTarget(ctx.config, 'acme', 'production');
    const plan = await pruneTarget(ctx, t);
    // keep_daily 1: the newest complete backup (the 26th) stands for the last day; damaged ones take no slot.
    expect(plan.keep.map((k) => k.id)).toEqual([ids[26]]);
    expect(plan.remove.map((r) => r.id)).toEqual([ids[25]]);
    expect(plan.damaged.map((d) => d.id)).toEqual([ids[29], ids[28], ids[27], orphan]);
    for (const id of [ids[29], ids[27]]) expect(existsSync(ctx.repo.dumpPath('acme', 'production', id) + '.json')).toBe(true);
    expect(existsSync(ctx.repo.dumpPath('acme', 'production', orphan))).toBe(true);

    await runPrune(ctx, {});
    expect(out.join('\n')).toMatch(new RegExp(`DAMAGED ${ids[28]}  dump file missing \\(kept, not counted; prune acme production --remove-damaged ${ids[28]} removes it\\)`));

    await expect(runPrune(ctx, { project: 'acme', environment: 'production', removeDamaged: ids[26] })).rejects.toThrow(/is a complete backup/);
    await expect(runPrune(ctx, { removeDamaged: ids[29] })).rejects.toBeInstanceOf(UsageError);
    await runPrune(ctx, { project: 'acme', environment: 'production', removeDamaged: ids[29], dryRun: true });
    expect(existsSync(ctx.repo.dumpPath('acme', 'production', ids[29]))).toBe(true);
    for (const id of [ids[29], orphan]) {
      const r = await runPrune(ctx, { project: 'acme', environment: 'production', removeDamaged: id });
      expect(r.exitCode).toBe(EXIT.OK);
      expect(existsSync(ctx.repo.dumpPath('acme', 'production', id))).toBe(false);
      expect(existsSync(ctx.repo.dumpPath('acme', 'production', id) + '.json')).toBe(false);
    }
    expect((await ctx.repo.survey('acme', 'production', ctx.clock())).damaged.map((d) => d.id)).toEqual([ids[28], ids[27]]);
    expect(existsSync(ctx.repo.dumpPath('acme', 'production', running))).toBe(true);
  });
});

describe('nothing to do is an error', () => {
  const configs = {
    'an empty projects.yml': () => `platform:\n  backup_root: ${path.join(dir, 'backups')}\n`,
    'projects without database:': () => `platform:\n  backup_root: ${path.join(dir, 'backups')}\nweb:\n  image: nginx\n`,
    'every target disabled': () => FLEET().replace('keep_monthly: 0 }', 'keep_monthly: 0, enabled: false }'),
  };
  for (const [name, yml] of Object.entries(configs)) {
    it(`${name}: config check, scheduled-backup, verify-backups and status exit 2 saying why; --allow-empty runs`, async () => {
      const ctx = context(yml());
      const why = name === 'every target disabled' ? /every target has backup\.enabled: false/ : /no project in it has a database: section/;
      const deps = defaultDeps({ logger: silentLogger(), env: {}, out: () => undefined });
      for (const run of [
        () => runConfigCheck(deps, { config: ctx.config.file }),
        () => runScheduledBackup(ctx, {}),
        () => runVerifyBackups(ctx, {}),
        () => runStatus(ctx, {}),
      ]) {
        const e = await run().then(() => null, (x) => x);
        expect(e).toBeInstanceOf(UsageError);
        expect(e.exitCode).toBe(EXIT.USAGE);
        expect(e.message).toMatch(/nothing to do: no enabled target in .*projects\.yml/);
        expect(e.message).toMatch(why);
        expect(e.message).toMatch(/--allow-empty/);
      }
      await runConfigCheck(deps, { config: ctx.config.file, allowEmpty: true });
      expect((await runScheduledBackup(ctx, { allowEmpty: true })).exitCode).toBe(EXIT.OK);
      expect((await runVerifyBackups(ctx, { allowEmpty: true })).exitCode).toBe(EXIT.OK);
      expect((await runStatus(ctx, { allowEmpty: true })).exitCode).toBe(EXIT.OK);
    });
  }

  it('status fails for an enabled target that has never had a backup', async () => {
    const ctx = context(FLEET());
    const { report, exitCode } = await runStatus(ctx, { json: true });
    expect(exitCode).toBe(EXIT.FAILED);
    expect(report.targets[0].problems).toEqual(['no complete backup']);
  });
});
