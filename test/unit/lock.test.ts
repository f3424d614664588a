import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockBusyError } from '../../lib/core/errors.js';
import { acquireLock } from '../../lib/storage/lock.js';

const T = { project: 'p', environment: 'e' };
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-lock-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('target lock', () => {
  it('of many simultaneous takers, exactly one gets it; the rest are busy at once', async () => {
    const dir = tmp();
    const tries = await Promise.allSettled(Array.from({ length: 20 }, () => acquireLock(dir, T, 'test')));
    expect(tries.filter((t) => t.status === 'fulfilled')).toHaveLength(1);
    for (const t of tries) if (t.status === 'rejected') expect(t.reason).toBeInstanceOf(LockBusyError);
    await (tries.find((t) => t.status === 'fulfilled') as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    expect(readdirSync(dir)).toEqual([]); // no lock, no private temp files left
    await (await acquireLock(dir, T, 'again')).release();
  });

  it("takes over a dead process's lock, and only one of several takers does", async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, '.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, start: null, host: os.hostname(), since: '2025-01-01T00:00:00Z', command: 'killed' }));
    const tries = await Promise.allSettled(Array.from({ length: 10 }, () => acquireLock(dir, T, 'test')));
    expect(tries.filter((t) => t.status === 'fulfilled')).toHaveLength(1);
  });

  it('an unreadable lock is busy while recent, stale once old', async () => {
    const dir = tmp();
    const file = path.join(dir, '.lock');
    writeFileSync(file, 'not json');
    await expect(acquireLock(dir, T, 'test')).rejects.toThrow(/unreadable lock file/);
    const old = new Date(Date.now() - 2 * 3600_000);
    utimesSync(file, old, old);
    await (await acquireLock(dir, T, 'test')).release();
  });
});
