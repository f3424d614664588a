// The dry-run wrapper (lib/storage/dryrun.ts): every read answered as the store answers it, every
// write refused as a bug naming its key, and nothing on disk changed by any of them.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { bugOf, EXIT, exitCodeOf } from '../../lib/core/errors.js';
import { tempPathFor } from '../../lib/core/fsutil.js';
import { DryRunWriteError, isReadOnly, readOnly } from '../../lib/storage/dryrun.js';
import { LocalStore } from '../../lib/storage/local.js';
import { NotFoundError, type Store } from '../../lib/storage/store.js';

/** Every file under `dir` (relative path → sha256 and mode). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) {
        out[path.relative(dir, f) + '/'] = (statSync(f).mode & 0o777).toString(8);
        walk(f);
      } else out[path.relative(dir, f)] = createHash('sha256').update(readFileSync(f)).digest('hex') + ' ' + (statSync(f).mode & 0o777).toString(8);
    }
  };
  walk(dir);
  return out;
}

let root: string;
let local: LocalStore;
let ro: Store;
const KEY = 'acme/production/database/db_20250101_000000Z.dump.zst';
beforeEach(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-dryrun-'));
  local = new LocalStore(path.join(root, 'backups'));
  await local.save(KEY, 'the dump');
  await local.save(KEY + '.json', '{"id": 1}');
  const temp = tempPathFor(local.pathOf('acme/production/database/db_20250102_000000Z.dump.zst'), spawnSync('true').pid!);
  writeFileSync(temp, 'partial');
  ro = readOnly(local);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('readOnly(store)', () => {
  it('answers every read as the store does', async () => {
    expect(ro.location).toBe(local.location);
    expect(isReadOnly(ro)).toBe(true);
    expect(isReadOnly(local)).toBe(false);
    expect(ro.pathOf!(KEY)).toBe(local.pathOf(KEY));
    expect(await ro.list('acme/')).toEqual(await local.list('acme/'));
    expect(await ro.keys!('acme/')).toEqual(await local.keys('acme/'));
    expect(await ro.stat(KEY)).toEqual(await local.stat(KEY));
    expect(await ro.stat('acme/nope')).toBeNull();
    expect((await ro.read(KEY + '.json')).toString()).toBe('{"id": 1}');
    const parts: Buffer[] = [];
    for await (const c of await ro.load(KEY)) parts.push(c as Buffer);
    expect(Buffer.concat(parts).toString()).toBe('the dump');
    await expect(ro.read('acme/nope')).rejects.toBeInstanceOf(NotFoundError);
    await expect(ro.load('acme/nope')).rejects.toBeInstanceOf(NotFoundError);
    const abandoned = await ro.abandoned('acme/', new Date(0));
    expect(abandoned).toEqual(await local.abandoned('acme/', new Date(0)));
    expect(abandoned.map((a) => a.key)).toEqual(['acme/production/database/db_20250102_000000Z.dump.zst']);
  });

  it('refuses every write, naming the key, as an internal error (a dry run that writes is a bug); nothing on disk changes', async () => {
    const before = snapshot(root);
    const [a] = await ro.abandoned('acme/', new Date(0));
    const stream = Readable.from([Buffer.from('new')]);
    const attempts: [string, () => Promise<unknown>, RegExp][] = [
      ['save bytes', () => ro.save(KEY, 'overwritten'), /dry run: would write acme\/production\/database\/db_20250101_000000Z\.dump\.zst in /],
      ['save a new key', () => ro.save('acme/staging/database/x.dump.zst', Buffer.from('x')), /would write acme\/staging\/database\/x\.dump\.zst/],
      ['save a stream', () => ro.save(KEY, stream), /would write acme\/production\/database\/db_20250101_000000Z\.dump\.zst/],
      ['remove', () => ro.remove(KEY + '.json'), /dry run: would remove acme\/production\/database\/db_20250101_000000Z\.dump\.zst\.json/],
      ['remove a missing key', () => ro.remove('acme/nope'), /would remove acme\/nope/],
      ['removeAbandoned', () => ro.removeAbandoned(a), /would remove acme\/production\/database\/db_20250102_000000Z\.dump\.zst \(.*\.tmp-db_20250102_000000Z\.dump\.zst\.\d+\.[0-9a-f]{8}\)/],
    ];
    for (const [what, attempt, message] of attempts) {
      const e = await attempt().then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, what).toBeInstanceOf(DryRunWriteError);
      expect((e as Error).message, what).toMatch(message);
      expect(bugOf(e), what).toBe(e);
      expect(exitCodeOf(e), what).toBe(EXIT.INTERNAL);
    }
    // The refused stream is destroyed (its producer is not left waiting on it), as a failed save does.
    expect(stream.destroyed).toBe(true);
    expect(snapshot(root)).toEqual(before);
    expect((await local.read(KEY)).toString()).toBe('the dump');
  });

  it('wraps an empty store without creating its root', async () => {
    const missing = path.join(root, 'not-yet');
    const empty = readOnly(new LocalStore(missing));
    expect(await empty.list('')).toEqual([]);
    expect(await empty.abandoned('', new Date())).toEqual([]);
    await expect(empty.save('a/b', 'x')).rejects.toBeInstanceOf(DryRunWriteError);
    expect(() => statSync(missing)).toThrow();
    mkdirSync(missing);
  });
});
