// The backup repository on a Store (lib/storage/repository.ts): what makes a backup complete, the
// order, removal metadata first, the metadata beside a bare dump, and list over 10,000 backups.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InternalError } from '../../lib/core/errors.js';
import { newestFirst, type BackupMetadata } from '../../lib/formats/metadata.js';
import { schemaProblems } from '../../lib/core/schema-files.js';
import { readOnly } from '../../lib/storage/dryrun.js';
import { LocalStore } from '../../lib/storage/local.js';
import { backupStem, metadataBeside, Repository } from '../../lib/storage/repository.js';
import type { Store } from '../../lib/storage/store.js';
import { sampleMetadata } from '../fixtures.js';

let dir: string;
let repo: Repository;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-repo-'));
  repo = new Repository(path.join(dir, 'backups'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function meta(id: string, over: Partial<BackupMetadata> = {}): BackupMetadata {
  const at = `${id.slice(3, 7)}-${id.slice(7, 9)}-${id.slice(9, 11)}T${id.slice(12, 14)}:${id.slice(14, 16)}:${id.slice(16, 18)}Z`;
  return sampleMetadata(id, at, over);
}

async function backup(id: string, over: Partial<BackupMetadata> = {}, dump = 'dump') {
  await repo.saveDump('acme', 'production', id, Buffer.from(dump));
  return repo.saveMetadata(meta(id, { size_bytes: Buffer.byteLength(dump), ...over }));
}

describe('Repository', () => {
  it('a backup is complete only with valid metadata naming its own dump of the recorded size; list is newest first', async () => {
    await backup('db_20250101_000000Z');
    await backup('db_20250103_000000Z');
    await backup('db_20250103_000000Z_2', { created_at: '2025-01-03T00:00:00Z' });
    await backup('db_20250102_000000Z', { size_bytes: 99 }); // another size
    await repo.saveDump('acme', 'production', 'db_20250104_000000Z', Buffer.from('no metadata yet'));
    await repo.store.save(repo.dumpKey('acme', 'production', 'db_20250105_000000Z') + '.json', '{"not": "metadata"}');
    await repo.store.save(repo.dumpKey('acme', 'production', 'db_20250106_000000Z') + '.json', JSON.stringify(meta('db_20250106_000000Z'))); // dump missing
    await repo.saveDump('acme', 'production', 'db_20250107_000000Z', Buffer.from('dump'));
    await repo.store.save(repo.dumpKey('acme', 'production', 'db_20250107_000000Z') + '.json', JSON.stringify(meta('db_20250101_000000Z'))); // names another file
    expect((await repo.list('acme', 'production')).map((b) => b.meta.id)).toEqual(['db_20250103_000000Z_2', 'db_20250103_000000Z', 'db_20250101_000000Z']);
    expect(await repo.list('acme', 'staging')).toEqual([]);

    expect((await repo.inspect('acme', 'production', 'db_20250102_000000Z')).problem).toBe('dump is 4 bytes, metadata says 99');
    expect((await repo.inspect('acme', 'production', 'db_20250104_000000Z')).problem).toBe('no metadata');
    expect((await repo.inspect('acme', 'production', 'db_20250105_000000Z')).problem).toMatch(/^invalid metadata: /);
    expect((await repo.inspect('acme', 'production', 'db_20250106_000000Z')).problem).toBe('dump file missing');
    expect((await repo.inspect('acme', 'production', 'db_20250107_000000Z')).problem).toMatch(/names another file/);
    expect(await repo.find('acme', 'production', 'db_20250102_000000Z')).toBeUndefined();

    const b = (await repo.find('acme', 'production', 'db_20250101_000000Z'))!;
    expect(b).toMatchObject({
      key: 'acme/production/database/db_20250101_000000Z.dump.zst',
      metaKey: 'acme/production/database/db_20250101_000000Z.dump.zst.json',
      path: path.join(dir, 'backups', 'acme', 'production', 'database', 'db_20250101_000000Z.dump.zst'),
      metaPath: path.join(dir, 'backups', 'acme', 'production', 'database', 'db_20250101_000000Z.dump.zst.json'),
    });
    expect((await repo.load(b.metaPath)).backup).toEqual(b);
    expect((await repo.load(path.join(dir, 'elsewhere.dump.zst.json'))).backup).toBeNull();
  });

  it('an age-encrypted copy (<id>.dump.zst.age and its .json, as in the bucket) is listed, inspected and found by id; metadata without offsite reads', async () => {
    const id = 'db_20250108_000000Z';
    const enc = { algorithm: 'age' as const, recipients: ['age1' + 'q'.repeat(58)], plaintext_sha256: 'b'.repeat(64), plaintext_size_bytes: 4 };
    await repo.store.save(repo.dumpKey('acme', 'production', id) + '.age', Buffer.from('encrypted'));
    const metaPath = await repo.saveMetadata(meta(id, { file: `${id}.dump.zst.age`, size_bytes: 9, encryption: enc }));
    expect(metaPath).toBe(path.join(dir, 'backups/acme/production/database', `${id}.dump.zst.age.json`));
    const old = meta('db_20250101_000000Z');
    await backup(old.id, { offsite: undefined });
    expect(JSON.parse(readFileSync(repo.dumpPath('acme', 'production', old.id) + '.json', 'utf8'))).not.toHaveProperty('offsite');
    expect((await repo.list('acme', 'production')).map((b) => [b.meta.id, b.key])).toEqual([
      [id, `acme/production/database/${id}.dump.zst.age`],
      [old.id, `acme/production/database/${old.id}.dump.zst`],
    ]);
    const found = (await repo.find('acme', 'production', id))!;
    expect(found.meta.encryption).toEqual(enc);
    expect(found.metaKey).toBe(`acme/production/database/${id}.dump.zst.age.json`);
    expect(repo.stored(found.meta)).toEqual(found);
    expect(await repo.newId('acme', 'production', new Date('2025-01-08T00:00:00Z'))).toBe(`${id}_2`);
  });

  it('saveMetadata refuses metadata that fails its schema (a bug), writing nothing', async () => {
    await expect(repo.saveMetadata({ ...meta('db_20250101_000000Z'), sha256: 'nope' })).rejects.toBeInstanceOf(InternalError);
    expect(await repo.store.list('')).toEqual([]);
  });

  it('remove(): metadata first, so a half-removed backup is never listed; idempotent', async () => {
    await backup('db_20250101_000000Z');
    const b = (await repo.find('acme', 'production', 'db_20250101_000000Z'))!;
    const removed: string[] = [];
    const spy: Store = { ...repo.store, remove: async (k) => void removed.push(k) } as Store;
    await new Repository(spy).remove(b);
    expect(removed).toEqual([b.metaKey, b.key]);
    await repo.remove(b);
    await repo.remove(b);
    expect(await repo.store.list('')).toEqual([]);
  });

  it('paths, keys and the lock directory of the local store', () => {
    const root = path.join(dir, 'backups');
    expect(repo.root).toBe(root);
    expect(repo.targetDir('acme', 'production')).toBe(path.join(root, 'acme', 'production'));
    expect(repo.lockDir('acme', 'production')).toBe(path.join(root, 'acme', 'production'));
    expect(repo.deploymentsDir('acme', 'production')).toBe(path.join(root, 'acme', 'production', 'deployments'));
    expect(repo.keyOf(path.join(root, 'acme', 'x', '..', 'production', 'a.json'))).toBe('acme/production/a.json');
    expect(repo.keyOf(path.join(dir, 'a.json'))).toBeNull();
    expect(repo.keyOf(path.join(root, 'acme', '.lock'))).toBeNull();
    const remote = new Repository({ ...readOnly(repo.store), pathOf: undefined, location: 's3://b/p' } as Store);
    expect(remote.dumpPath('acme', 'production', 'db_20250101_000000Z')).toBe('s3://b/p/acme/production/database/db_20250101_000000Z.dump.zst');
    expect(() => remote.lockDir('acme', 'production')).toThrow(InternalError);
  });

  it('abandoned(): what interrupted saves left under the target, database and deployments alike', async () => {
    for (const d of ['database', 'deployments']) mkdirSync(path.join(repo.targetDir('acme', 'production'), d), { recursive: true });
    writeFileSync(path.join(repo.databaseDir('acme', 'production'), '.tmp-db_20250101_000000Z.dump.zst.1.abcd'), 'x');
    writeFileSync(path.join(repo.deploymentsDir('acme', 'production'), '.tmp-v1.json.1.ef01'), 'x');
    const found = await repo.abandoned('acme', 'production', new Date(Date.now() + 60_000));
    expect(found.map((a) => a.key)).toEqual(['acme/production/database/db_20250101_000000Z.dump.zst', 'acme/production/deployments/v1.json']);
    expect(await repo.abandoned('acme', 'production', new Date(0))).toEqual([]);
    for (const a of found) await repo.removeAbandoned(a);
    expect(await repo.abandoned('acme', 'production', new Date(Date.now() + 60_000))).toEqual([]);
  });

  it('over a read-only store, reads work and writes are refused', async () => {
    await backup('db_20250101_000000Z');
    const ro = new Repository(readOnly(repo.store));
    expect((await ro.list('acme', 'production')).map((b) => b.meta.id)).toEqual(['db_20250101_000000Z']);
    await expect(ro.saveMetadata(meta('db_20250102_000000Z'))).rejects.toThrow(/dry run: would write acme\/production\/database\/db_20250102_000000Z\.dump\.zst\.json/);
    await expect(ro.remove((await ro.list('acme', 'production'))[0])).rejects.toThrow(/dry run: would remove/);
  });

  it('metadataBeside(file): null for a bare dump, else the checked backup or why it is not one', async () => {
    await backup('db_20250101_000000Z');
    const b = (await repo.find('acme', 'production', 'db_20250101_000000Z'))!;
    expect((await metadataBeside(b.path))!.backup).toEqual({ ...b, key: 'db_20250101_000000Z.dump.zst', metaKey: 'db_20250101_000000Z.dump.zst.json' });
    const bare = path.join(dir, 'copy.dump.zst');
    writeFileSync(bare, 'dump');
    expect(await metadataBeside(bare)).toBeNull();
    writeFileSync(bare + '.json', JSON.stringify(meta('db_20250101_000000Z')));
    expect((await metadataBeside(bare))!.problem).toMatch(/names another file/);
    writeFileSync(b.path, 'longer dump');
    expect((await metadataBeside(b.path))!.problem).toBe('dump is 11 bytes, metadata says 4');
    expect((await metadataBeside(path.join(dir, '.hidden.dump.zst')))!.backup).toBeNull();
  });

  it('list over 10,000 backups is as fast as reading the files by hand (the sync path the local store keeps)', async () => {
    const ddir = repo.databaseDir('acme', 'production');
    mkdirSync(ddir, { recursive: true });
    const t = Date.parse('2020-01-01T00:00:00Z');
    for (let i = 0; i < 10_000; i++) {
      const id = backupStem(new Date(t + i * 3_600_000));
      writeFileSync(path.join(ddir, id + '.dump.zst'), 'dump');
      writeFileSync(path.join(ddir, id + '.dump.zst.json'), JSON.stringify(meta(id)));
    }
    // The least any listing must do: read and check every metadata file, stat every dump (what the
    // repository did before it had a store, with plain synchronous calls).
    const byHand = () => {
      const out = [];
      for (const n of readdirSync(ddir).filter((n) => n.endsWith('.json'))) {
        const m = JSON.parse(readFileSync(path.join(ddir, n), 'utf8'));
        if (schemaProblems('backup-metadata', m).length) continue;
        if (statSync(path.join(ddir, m.file), { throwIfNoEntry: false })?.size === m.size_bytes) out.push(m);
      }
      return out.sort((a, b) => newestFirst(a, b));
    };
    // Best of five, taken in turns, so a busy moment of a shared machine weighs on both alike.
    let [listMs, handMs] = [Infinity, Infinity];
    const time = async (f: () => unknown) => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    const all = await repo.list('acme', 'production');
    expect(all).toHaveLength(10_000);
    expect(all[0].meta.id).toBe(backupStem(new Date(t + 9_999 * 3_600_000)));
    expect(byHand()).toHaveLength(10_000);
    for (let r = 0; r < 5; r++) {
      listMs = Math.min(listMs, await time(() => repo.list('acme', 'production')));
      handMs = Math.min(handMs, await time(byHand));
    }
    // On a quiet machine both take a few hundred ms (README: `list --json` over 10,000 backups < 1 s);
    // promise-based reads of the same files take several times as long.
    expect(listMs, `list ${listMs.toFixed(0)} ms, by hand ${handMs.toFixed(0)} ms`).toBeLessThan(2 * handMs + 50);
  });
});

describe('LocalStore-backed repository from a path', () => {
  it('is the same as one over new LocalStore(path)', () => {
    expect(new Repository('/srv/b').store).toBeInstanceOf(LocalStore);
    expect(new Repository('/srv/b').dumpPath('a', 'b', 'db_20250101_000000Z')).toBe(new Repository(new LocalStore('/srv/b')).dumpPath('a', 'b', 'db_20250101_000000Z'));
  });
});
