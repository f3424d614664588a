// Backup names: UTC seconds, db_YYYYMMDD_HHMMSSZ, and _2, _3… when a second is taken.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clockFromEnv } from '../../lib/core/clock.js';
import { Repository, backupStem } from '../../lib/storage/repository.js';
import { TEMP_PREFIX } from '../../lib/core/fsutil.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-naming-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('backup names', () => {
  it('are the UTC second, whatever the offset the time was written with', () => {
    expect(backupStem(new Date('2025-01-06T02:03:04.567Z'))).toBe('db_20250106_020304Z');
    expect(backupStem(new Date('2025-01-06T00:30:00+01:00'))).toBe('db_20250105_233000Z');
    expect(backupStem(new Date('2024-12-31T23:59:59.999-05:00'))).toBe('db_20250101_045959Z');
  });

  it('do not depend on the process time zone', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Pacific/Kiritimati';
    try {
      expect(backupStem(new Date(Date.UTC(2025, 5, 30, 23, 0, 0)))).toBe('db_20250630_230000Z');
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('two backups in the same second (PGFLEET_NOW fixed) get distinct names, _2 then _3', async () => {
    const clock = clockFromEnv({ PGFLEET_NOW: '2025-03-01T12:00:00Z' });
    const repo = new Repository(path.join(dir, 'root'));
    const first = await repo.newId('acme', 'production', clock());
    expect(first).toBe('db_20250301_120000Z');
    await repo.store.save(repo.dumpKey('acme', 'production', first), 'x');
    const second = await repo.newId('acme', 'production', clock());
    expect(second).toBe('db_20250301_120000Z_2');
    // Metadata alone also takes the name (a dump removed by hand, its metadata left).
    await repo.store.save(repo.dumpKey('acme', 'production', second) + '.json', '{}');
    expect(await repo.newId('acme', 'production', clock())).toBe('db_20250301_120000Z_3');
    // Another target's names do not matter.
    expect(await repo.newId('acme', 'staging', clock())).toBe('db_20250301_120000Z');
  });

  it('a temporary file does not take a name', async () => {
    const repo = new Repository(path.join(dir, 'root'));
    const at = new Date('2025-03-01T12:00:00Z');
    const id = await repo.newId('acme', 'production', at);
    mkdirSync(repo.databaseDir('acme', 'production'), { recursive: true });
    writeFileSync(path.join(repo.databaseDir('acme', 'production'), `${TEMP_PREFIX}${id}.dump.zst.123.abcd1234`), 'x');
    expect(await repo.newId('acme', 'production', at)).toBe(id);
  });
});
