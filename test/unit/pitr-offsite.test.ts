// A cluster's PITR files offsite (lib/pitr/offsite.ts), the pure parts: a copy's record and
// metadata as the bucket holds them and back, which local WAL a bucket is sent, and the keys
// the archive reads copies under (lib/pitr/archive.ts, over any store).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BaseBackupMetadata, WalRecord } from '../../lib/formats/pitr.js';
import { schemaProblems } from '../../lib/core/schema-files.js';
import { ClusterArchive } from '../../lib/pitr/archive.js';
import { bucketBase, bucketRecord, localBase, localRecord, walNameOfKey, walToSend } from '../../lib/pitr/offsite.js';
import { LocalStore } from '../../lib/storage/local.js';

const H = (c: string) => c.repeat(64);
const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const base = (id: string, start: string, o: Partial<BaseBackupMetadata> = {}): BaseBackupMetadata => ({
  format_version: 1, id, container: 'pg', file: `${id}.tar.zst`, size_bytes: 1000, sha256: H('a'), compression: { algorithm: 'zstd', level: 3 },
  started_at: '2026-03-01T02:00:00Z', finished_at: '2026-03-01T02:00:00Z', start_lsn: start, stop_lsn: start, timeline: 1, server_version_num: 150000, server_version: '15', databases: ['a'], pg_basebackup_version: '15', pgfleet_version: '0', ...o,
});
const wal = (name: string, kind: WalRecord['kind'] = 'segment'): WalRecord => ({
  format_version: 1, name, kind, timeline: parseInt(name.slice(0, 8), 16), size_bytes: kind === 'segment' ? 16 << 20 : 40, sha256: H('b'),
  stored: { file: `${name}.zst`, size_bytes: 123, sha256: H('c'), compression: 'zstd' }, archived_at: '2026-03-01T00:00:00Z', taken_at: '2026-03-01T00:00:00Z',
});
const seg = (n: number) => '00000001' + '00000000' + n.toString(16).toUpperCase().padStart(8, '0');

describe('a copy as the bucket says it, and back', () => {
  it('an encrypted WAL copy: .age after the name, the stored bytes its own, the local object as plaintext; schema-valid; localRecord undoes it', () => {
    const r = wal(seg(3));
    const c = bucketRecord(r, { sha256: H('d'), bytes: 345 }, [RECIPIENT]);
    expect(c.stored).toEqual({ file: `${seg(3)}.zst.age`, size_bytes: 345, sha256: H('d'), compression: 'zstd' });
    expect(c.encryption).toEqual({ algorithm: 'age', recipients: [RECIPIENT], plaintext_sha256: H('c'), plaintext_size_bytes: 123 });
    expect(c.sha256).toBe(r.sha256); // the segment's own sha256 stays
    expect(schemaProblems('wal-record', c)).toEqual([]);
    expect(localRecord(c)).toEqual(r);
  });

  it('without recipients the copy is the local record with the uploaded bytes (the same as the local ones)', () => {
    const r = wal('00000002.history', 'history');
    const c = bucketRecord(r, { sha256: H('c'), bytes: 123 });
    expect(c).toEqual(r);
    expect(localRecord(c)).toEqual(r);
  });

  it('a base backup copy: .tar.zst.age, encryption recorded, the local offsite state dropped; localBase undoes it', () => {
    const m = base('base_20260301_020000Z', '0/3000028', { offsite: { status: 'pending', key: 'x', error: 'unreachable' } });
    const c = bucketBase(m, { sha256: H('e'), bytes: 1100 }, [RECIPIENT]);
    expect(c.file).toBe('base_20260301_020000Z.tar.zst.age');
    expect([c.size_bytes, c.sha256]).toEqual([1100, H('e')]);
    expect(c.encryption).toEqual({ algorithm: 'age', recipients: [RECIPIENT], plaintext_sha256: H('a'), plaintext_size_bytes: 1000 });
    expect(c.offsite).toBeUndefined();
    expect(schemaProblems('base-backup-metadata', c)).toEqual([]);
    const { offsite: _, ...plain } = m;
    expect(localBase(c)).toEqual(plain);
  });
});

describe('walNameOfKey', () => {
  it("names the WAL file of a record's key, encrypted or not; null for an object's key", () => {
    expect(walNameOfKey(`_clusters/pg/wal/${seg(3)}.zst.age.json`)).toBe(seg(3));
    expect(walNameOfKey(`_clusters/pg/wal/${seg(3)}.zst.json`)).toBe(seg(3));
    expect(walNameOfKey('_clusters/pg/wal/00000002.history.zst.age.json')).toBe('00000002.history');
    expect(walNameOfKey(`_clusters/pg/wal/${seg(3)}.00000028.backup.zst.json`)).toBe(`${seg(3)}.00000028.backup`);
    expect(walNameOfKey(`_clusters/pg/wal/${seg(3)}.zst.age`)).toBeNull();
  });
});

describe('walToSend', () => {
  const local = [wal(seg(1)), wal(seg(2)), wal(seg(3)), wal(seg(4)), wal('00000001.history', 'history')];
  it('what the bucket lacks from the oldest base backup it holds (or is sent) on, and history files, in name order', () => {
    const sent = walToSend(local, new Set([seg(3)]), [base('base_20260301_020000Z', '0/2000028')]);
    expect(sent.map((r) => r.name)).toEqual(['00000001.history', seg(2), seg(4)]);
  });
  it('a bucket without base backups is sent everything it lacks; one that holds everything, nothing', () => {
    expect(walToSend(local, new Set([seg(1)]), []).map((r) => r.name)).toEqual(['00000001.history', seg(2), seg(3), seg(4)]);
    expect(walToSend(local, new Set(local.map((r) => r.name)), [])).toEqual([]);
  });
});

describe('ClusterArchive over a store holding copies', () => {
  it('reads records and base backups under the keys their files name (.age), and refuses one that names another file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pitr-offsite-'));
    try {
      const store = new LocalStore(dir);
      const a = new ClusterArchive(store, 'pg');
      const m = bucketBase(base('base_20260301_020000Z', '0/3000028'), { sha256: H('e'), bytes: 5 }, [RECIPIENT]);
      await store.save(a.baseStoredKey(m), 'abcde');
      await a.saveBaseMeta(m);
      const r = bucketRecord(wal(seg(3)), { sha256: H('d'), bytes: 3 }, [RECIPIENT]);
      await a.saveWalRecord(r);
      expect(a.walStoredKey(r)).toBe(`_clusters/pg/wal/${seg(3)}.zst.age`);
      expect((await a.baseBackups()).items.map((x) => x.file)).toEqual(['base_20260301_020000Z.tar.zst.age']);
      expect((await a.walRecords()).items.map((x) => x.name)).toEqual([seg(3)]);
      // A record under its name but naming another segment's file is a problem, not a record.
      await store.save(`_clusters/pg/wal/${seg(4)}.zst.age.json`, JSON.stringify(r));
      const recs = await a.walRecords();
      expect(recs.items.map((x) => x.name)).toEqual([seg(3)]);
      expect(recs.problems.join()).toContain('not its own file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
