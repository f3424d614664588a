// The local store (lib/storage/local.ts): the conformance suite in a temp dir, then what only a
// filesystem can show: modes, no temp left by a failed save, temps judged by their writer's pid.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { tempPathFor, TEMP_PREFIX } from '../../lib/core/fsutil.js';
import { LocalStore } from '../../lib/storage/local.js';
import { describeStore, slowSource } from '../storage/conformance.js';

/** A pid no process has now (a child that has exited). */
const deadPid = () => spawnSync('true').pid!;

/** Every file under `dir`, relative, hidden ones included. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(dir, path.join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describeStore('LocalStore', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-store-'));
  roots.push(root);
  const store = new LocalStore(path.join(root, 'backups'));
  return {
    store,
    // What a save killed with SIGKILL leaves: its temp file, named after a writer that is gone.
    crash: async (key, data) => {
      const final = store.pathOf(key);
      mkdirSync(path.dirname(final), { recursive: true, mode: 0o700 });
      writeFileSync(tempPathFor(final, deadPid()), data, { mode: 0o600 });
    },
  };
});

describe('LocalStore on disk', () => {
  let root: string;
  let store: LocalStore;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-store-'));
    store = new LocalStore(path.join(root, 'backups'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('keys are files under the root: pathOf names them; files 0600 and created directories 0700 whatever the umask', async () => {
    const old = process.umask(0);
    try {
      await store.save('acme/production/database/db_20250101_000000Z.dump.zst', 'x');
    } finally {
      process.umask(old);
    }
    const file = path.join(root, 'backups', 'acme', 'production', 'database', 'db_20250101_000000Z.dump.zst');
    expect(store.pathOf('acme/production/database/db_20250101_000000Z.dump.zst')).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    for (const d of ['backups', 'backups/acme', 'backups/acme/production', 'backups/acme/production/database']) expect(statSync(path.join(root, d)).mode & 0o777, d).toBe(0o700);
    expect(store.location).toBe(path.join(root, 'backups'));
  });

  it('while a save runs, its data is in a temp file beside the final name, .tmp-<name>.<pid>.<random>; a failed save removes it', async () => {
    const src = slowSource();
    const saving = store.save('p/e/database/x.dump.zst', src.stream);
    src.push(Buffer.alloc(1 << 20, 1));
    await new Promise((r) => setTimeout(r, 50));
    const dir = path.join(store.location, 'p/e/database');
    const [temp] = readdirSync(dir);
    expect(temp).toMatch(new RegExp(`^\\${TEMP_PREFIX}x\\.dump\\.zst\\.${process.pid}\\.[0-9a-f]{8}$`));
    expect(statSync(path.join(dir, temp)).mode & 0o777).toBe(0o600);
    src.fail(new Error('boom'));
    await expect(saving).rejects.toThrow('boom');
    expect(files(store.location)).toEqual([]);

    const ac = new AbortController();
    const aborted = store.save('p/e/database/y.dump.zst', Readable.from([Buffer.alloc(10)]), { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toThrow();
    expect(files(store.location)).toEqual([]);
  });

  it('list ignores hidden files (temps, the target lock) and what is not a regular file', async () => {
    await store.save('p/e/database/a.dump.zst', 'a');
    const tdir = path.join(store.location, 'p', 'e');
    writeFileSync(path.join(tdir, '.lock'), '{}');
    writeFileSync(path.join(tdir, 'database', `${TEMP_PREFIX}b.dump.zst.123.abcd1234`), 'partial');
    mkdirSync(path.join(tdir, '.hidden-dir'));
    writeFileSync(path.join(tdir, '.hidden-dir', 'c'), 'c');
    expect((await store.list('')).map((o) => o.key)).toEqual(['p/e/database/a.dump.zst']);
    expect((await store.list('p/e/')).map((o) => o.key)).toEqual(['p/e/database/a.dump.zst']);
    expect(await store.stat('p/e/database')).toBeNull(); // a directory is no object
    await expect(store.read('p/e/database')).rejects.toThrow(/no object/);
    await expect(store.load('p/e/database')).rejects.toThrow(/no object/);
    // A file where a prefix's directory should be is no tree this store wrote: an error, not "nothing".
    await expect(store.list('p/e/database/a.dump.zst/')).rejects.toThrow(/ENOTDIR/);
    await expect(store.keys('p/e/database/a.dump.zst/x')).rejects.toThrow(/ENOTDIR/);
    await expect(store.abandoned('p/e/database/a.dump.zst/', new Date())).rejects.toThrow(/ENOTDIR/);
    expect(await store.list('p/e/nothing/here/')).toEqual([]);
  });

  it('abandoned(): temps of a dead writer whatever their age, any temp last written before `before`, never a live writer\'s fresh one', async () => {
    const dir = path.join(store.location, 'p', 'e', 'database');
    mkdirSync(dir, { recursive: true });
    const dead = path.join(dir, `${TEMP_PREFIX}db_1.dump.zst.${deadPid()}.0123abcd`);
    const live = path.join(dir, `${TEMP_PREFIX}db_2.dump.zst.${process.pid}.0123abcd`);
    const oldLive = path.join(dir, `${TEMP_PREFIX}db_3.dump.zst.${process.pid}.89abcdef`);
    const foreign = path.join(dir, `${TEMP_PREFIX}db_4.dump.zst.1.abcd`); // not tempPathFor's shape: judged by age only
    for (const f of [dead, live, oldLive, foreign]) writeFileSync(f, 'partial');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    for (const f of [oldLive, foreign]) utimesSync(f, twoDaysAgo, twoDaysAgo);
    const names = async (before: Date) => (await store.abandoned('p/', before)).map((a) => path.basename(a.handle));
    expect(await names(new Date(0))).toEqual([path.basename(dead)]);
    expect(await names(new Date(Date.now() - 86_400_000))).toEqual([dead, oldLive, foreign].map((f) => path.basename(f)).sort());
    const all = await store.abandoned('p/e/database/', new Date(Date.now() + 60_000));
    expect(all.map((a) => a.key)).toEqual(['p/e/database/db_1.dump.zst', 'p/e/database/db_2.dump.zst', 'p/e/database/db_3.dump.zst', 'p/e/database/db_4.dump.zst']);
    for (const a of all) await store.removeAbandoned(a);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('removeAbandoned() refuses anything but a temp file under its root', async () => {
    await store.save('p/e/database/a.dump.zst', 'a');
    const file = store.pathOf('p/e/database/a.dump.zst');
    await expect(store.removeAbandoned({ key: 'p/e/database/a.dump.zst', handle: file, startedAt: new Date() })).rejects.toThrow(/not a temp file/);
    await expect(store.removeAbandoned({ key: 'x', handle: path.join(root, `${TEMP_PREFIX}x.1.abcd1234`), startedAt: new Date() })).rejects.toThrow(/not a temp file/);
    expect((await store.read('p/e/database/a.dump.zst')).toString()).toBe('a');
  });
});
