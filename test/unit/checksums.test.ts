// verify-backups --checksums (lib/fleet/checksums.ts, lib/storage/checksum.ts): every stored dump
// re-hashed against its metadata, the result recorded in `checksum`, a mismatch exit 4 and a
// damaged backup until a later pass finds the bytes whole; at sha256sum's speed or better.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runList } from '../../lib/commands/list.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { EXIT } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/log.js';
import type { BackupMetadata } from '../../lib/formats/metadata.js';
import { contextFor, defaultDeps, type Context } from '../../lib/runtime/context.js';
import { hashObject } from '../../lib/storage/checksum.js';
import { backupStem } from '../../lib/storage/repository.js';
import { readOnly } from '../../lib/storage/dryrun.js';

let dir: string;
let ctx: Context;
let out: string[];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-checksums-'));
  const configFile = path.join(dir, 'projects.yml');
  writeFileSync(configFile, `platform:\n  backup_root: ${path.join(dir, 'backups')}\nacme:\n  database:\n    type: postgresql\n    container: pg\n    databases: { production: acme_production }\n`);
  out = [];
  ctx = contextFor(configFile, defaultDeps({ logger: silentLogger(), env: { PGFLEET_NOW: '2025-04-30T12:00:00Z' }, out: (l) => void out.push(l), progress: false }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function backup(at: string, bytes: Buffer): Promise<BackupMetadata> {
  const id = backupStem(new Date(at));
  const m: BackupMetadata = {
    format_version: 1, id, project: 'acme', environment: 'production', database: 'acme_production', type: 'scheduled', release: null,
    created_at: at, started_at: at, finished_at: at, duration_ms: 1, file: id + '.dump.zst', size_bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'), format: 'custom', compression: { algorithm: 'zstd', level: 3 }, encryption: null,
    pg_dump_version: '15.4', server_version: '15.4', source: { container: 'pg', user: null }, tables: { 'public.t': 1 }, total_rows: 1, pgfleet_version: '0.1.0', verification: null,
  };
  await ctx.repo.saveDump('acme', 'production', id, bytes);
  await ctx.repo.saveMetadata(m);
  return m;
}

const metaOf = (m: BackupMetadata) => JSON.parse(readFileSync(ctx.repo.dumpPath('acme', 'production', m.id) + '.json', 'utf8'));

describe('verify-backups --checksums', () => {
  it('hashes every stored dump, records passed; a flipped byte is exit 4, recorded, damaged until the bytes are whole again', async () => {
    const [a, b] = [randomBytes(3 << 20), randomBytes(1000)];
    const ma = await backup('2025-04-28T02:00:00.000Z', a);
    const mb = await backup('2025-04-29T02:00:00.000Z', b);
    const ok = await runVerifyBackups(ctx, { checksums: true });
    expect(ok.exitCode).toBe(EXIT.OK);
    expect(ok.results.map((r) => [r.id, r.status])).toEqual([[mb.id, 'passed'], [ma.id, 'passed']]);
    expect(metaOf(ma).checksum).toMatchObject({ status: 'passed', checked_at: '2025-04-30T12:00:00.000Z' });
    expect(metaOf(ma).verification).toBeNull(); // a hash is not a restore
    expect(out.at(-1)).toMatch(/^2 checksummed \(3\.0 MiB in [\d.]+ s, .*\/s\): 2 passed, 0 failed$/);

    // The same size, one byte changed: only a hash finds it.
    const fd = openSync(ctx.repo.dumpPath('acme', 'production', ma.id), 'r+');
    writeSync(fd, Buffer.from([a[1000] ^ 1]), 0, 1, 1000);
    closeSync(fd);
    const bad = await runVerifyBackups(ctx, { checksums: true });
    expect(bad.exitCode).toBe(EXIT.VERIFY_FAILED);
    expect(bad.results.find((r) => r.id === ma.id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^sha256 is [0-9a-f]{64}, metadata says [0-9a-f]{64}$/) });
    expect(out.join('\n')).toMatch(new RegExp(`FAILED  acme/production ${ma.id}: sha256 is`));
    expect(metaOf(ma).checksum).toMatchObject({ status: 'failed' });
    const listed = await runList(ctx, { json: true });
    expect(listed.find((x) => x.id === ma.id)).toMatchObject({ state: 'damaged', problem: expect.stringMatching(/^checksum failed \(2025-04-30T12:00:00\.000Z\): sha256 is/) });
    expect((await ctx.repo.list('acme', 'production')).map((x) => x.meta.id)).toEqual([mb.id]);

    // Bytes put back (from a copy): the next pass finds them whole, and the backup is complete again.
    writeFileSync(ctx.repo.dumpPath('acme', 'production', ma.id), a);
    const again = await runVerifyBackups(ctx, { checksums: true, project: 'acme', environment: 'production', backup: ma.id });
    expect([again.exitCode, again.results.map((r) => r.status)]).toEqual([EXIT.OK, ['passed']]);
    expect((await ctx.repo.list('acme', 'production')).map((x) => x.meta.id)).toEqual([mb.id, ma.id]);
  });

  it('a damaged backup fails unread; a dry run hashes and records nothing', async () => {
    const m = await backup('2025-04-29T02:00:00.000Z', randomBytes(100));
    const before = readFileSync(ctx.repo.dumpPath('acme', 'production', m.id) + '.json', 'utf8');
    const dry = await runVerifyBackups(ctx, { checksums: true, dryRun: true });
    expect(dry.exitCode).toBe(EXIT.OK);
    expect(out).toContain('would hash 1 stored dump(s) of 1 target(s) against their metadata');
    expect(readFileSync(ctx.repo.dumpPath('acme', 'production', m.id) + '.json', 'utf8')).toBe(before);
    unlinkSync(ctx.repo.dumpPath('acme', 'production', m.id));
    const r = await runVerifyBackups(ctx, { checksums: true });
    expect(r.exitCode).toBe(EXIT.VERIFY_FAILED);
    expect(r.results).toEqual([expect.objectContaining({ id: m.id, status: 'failed', error: 'damaged backup: dump file missing' })]);
  });

  it('hashObject reads a local file and a non-local store alike', async () => {
    const bytes = randomBytes((8 << 20) + 17); // more than one read
    const m = await backup('2025-04-29T02:00:00.000Z', bytes);
    const key = ctx.repo.dumpKey('acme', 'production', m.id);
    const want = { sha256: m.sha256, size: bytes.length };
    expect(await hashObject(ctx.repo.store, key)).toEqual(want);
    expect(await hashObject({ ...readOnly(ctx.repo.store), pathOf: undefined }, key)).toEqual(want);
    await expect(hashObject(ctx.repo.store, 'acme/production/database/nope.dump.zst')).rejects.toThrow(/no object/);
  });

  it('hashes at least 0.9x as fast as sha256sum over the same files (best of three, in turns)', async () => {
    // 8 files of 24 MiB: big enough that reads dominate, small enough for a unit test (the README
    // gives figures for 384 MiB). sha256sum hashes one file after another; the pass, a few at once.
    const files: string[] = [];
    for (let i = 0; i < 8; i++) {
      const m = await backup(`2025-04-${String(10 + i).padStart(2, '0')}T02:00:00.000Z`, randomBytes(24 << 20));
      files.push(ctx.repo.dumpPath('acme', 'production', m.id));
    }
    const time = async (f: () => unknown) => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    let [ours, theirs] = [Infinity, Infinity];
    for (let r = 0; r < 3; r++) {
      ours = Math.min(ours, await time(async () => expect((await runVerifyBackups(ctx, { checksums: true })).exitCode).toBe(EXIT.OK)));
      theirs = Math.min(theirs, await time(() => expect(spawnSync('sha256sum', files).status).toBe(0)));
    }
    expect(ours, `pgfleet ${ours.toFixed(0)} ms, sha256sum ${theirs.toFixed(0)} ms`).toBeLessThan(theirs / 0.9);
  }, 120_000);
});
