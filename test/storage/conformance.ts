/**
 * The one conformance suite every Store runs (lib/storage/store.ts; restic's backend tests): each
 * promise of the interface's header, checked on the real store. Store-agnostic: it knows only the
 * Store interface and what `make` hands it.
 *
 *   describeStore('LocalStore', async () => ({ store, crash, cleanup }))
 *
 * Every test works under its own random key prefix, so a store shared between tests (a bucket)
 * needs no emptying; `cleanup` runs after each test if given.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { NotFoundError, type Store } from '../../lib/storage/store.js';

export interface StoreUnderTest {
  store: Store;
  /**
   * Leave what a save of `key` killed outright (SIGKILL, power loss) leaves after writing `data`,
   * the store's own way (local: a temp file of a dead writer; S3: an unfinished multipart upload).
   * Without it, the abandoned() tests are skipped for this store.
   */
  crash?: (key: string, data: Buffer) => Promise<void>;
  cleanup?: () => Promise<void>;
}

export interface SuiteOptions {
  /** Size of the streamed round trip (default 64 MiB). */
  bigBytes?: number;
}

const MiB = 1 << 20;

/** A source the test feeds by hand, to catch a save in the middle. */
export function slowSource() {
  const r = new Readable({ read() {} });
  return {
    stream: r,
    push: (b: Buffer) => r.push(b),
    end: () => r.push(null),
    fail: (e: Error) => r.destroy(e),
  };
}

/** Let the store's save make progress (open its temp, write what was pushed, start an upload). */
const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

async function text(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function rejection(p: () => Promise<unknown>): Promise<unknown> {
  try {
    await p();
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

export function describeStore(name: string, make: () => Promise<StoreUnderTest>, o: SuiteOptions = {}): void {
  describe(`Store conformance: ${name}`, () => {
    let t: StoreUnderTest;
    let store: Store;
    let base: string;
    const k = (rest: string) => base + rest;
    /** list()'s keys; and keys(), where the store has it, must give the same. */
    const keysUnder = async (prefix: string) => {
      const listed = (await store.list(prefix)).map((x) => x.key);
      if (store.keys) expect(await store.keys(prefix)).toEqual(listed);
      return listed;
    };
    const expectAbsent = async (key: string) => {
      expect(await store.stat(key)).toBeNull();
      expect(await keysUnder(base)).not.toContain(key);
      expect(await rejection(() => store.read(key))).toBeInstanceOf(NotFoundError);
      expect(await rejection(() => store.load(key))).toBeInstanceOf(NotFoundError);
    };

    beforeEach(async () => {
      t = await make();
      store = t.store;
      base = `conf-${randomBytes(4).toString('hex')}/`;
    });
    afterEach(async () => {
      await t.cleanup?.();
    });

    it('saves bytes, a string or a stream, and reads, loads, stats and lists each back', async () => {
      const before = Date.now();
      const a = await store.save(k('a.bin'), Buffer.from([0, 1, 2, 255]));
      const b = await store.save(k('dir/b.json'), '{"x": "é"}\n');
      const c = await store.save(k('dir/sub/c.dat'), Readable.from([Buffer.from('one '), Buffer.from('two')]));
      expect([a, b, c]).toEqual([
        { key: k('a.bin'), size: 4 },
        { key: k('dir/b.json'), size: Buffer.byteLength('{"x": "é"}\n') },
        { key: k('dir/sub/c.dat'), size: 7 },
      ]);
      expect(await store.read(k('a.bin'))).toEqual(Buffer.from([0, 1, 2, 255]));
      expect((await store.read(k('dir/b.json'))).toString()).toBe('{"x": "é"}\n');
      expect((await text(await store.load(k('dir/sub/c.dat')))).toString()).toBe('one two');
      const st = await store.stat(k('dir/b.json'));
      expect(st).toMatchObject({ key: k('dir/b.json'), size: b.size });
      expect(st!.mtime).toBeInstanceOf(Date);
      expect(st!.mtime.getTime()).toBeGreaterThan(before - 5 * 60_000);
      expect(st!.mtime.getTime()).toBeLessThan(Date.now() + 5 * 60_000);
      expect(await store.list(base)).toEqual([
        expect.objectContaining({ key: k('a.bin'), size: 4 }),
        expect.objectContaining({ key: k('dir/b.json'), size: b.size }),
        expect.objectContaining({ key: k('dir/sub/c.dat'), size: 7 }),
      ]);
      expect(await store.save(k('empty'), Buffer.alloc(0))).toEqual({ key: k('empty'), size: 0 });
      expect(await store.read(k('empty'))).toEqual(Buffer.alloc(0));
    });

    it('refuses keys that are not relative paths of plain segments, touching nothing', async () => {
      for (const bad of ['', '/abs', 'a//b', '../up', 'a/../b', 'a/./b', '.hidden', 'a/.tmp-x', 'trailing/']) {
        expect(await rejection(async () => store.save(bad, 'x')), bad).toBeInstanceOf(Error);
        expect(await rejection(async () => store.read(bad)), bad).toBeInstanceOf(Error);
        expect(await rejection(async () => store.remove(bad)), bad).toBeInstanceOf(Error);
      }
    });

    it('save is atomic: while a slow stream is saved, nothing is listed, stat-able or readable under the key; then the whole object is', async () => {
      const key = k('db/slow.dump');
      const src = slowSource();
      const saving = store.save(key, src.stream);
      const parts: Buffer[] = [];
      for (let i = 0; i < 6; i++) {
        parts.push(randomBytes(MiB));
        src.push(parts[i]);
        await settle();
        await expectAbsent(key);
        expect(await keysUnder(base)).toEqual([]);
      }
      src.end();
      expect(await saving).toEqual({ key, size: 6 * MiB });
      expect((await store.read(key)).equals(Buffer.concat(parts))).toBe(true);
      expect(await keysUnder(base)).toEqual([key]);
    });

    it('while an object is overwritten, readers see the old one whole; afterwards the whole new one', async () => {
      const key = k('meta.json');
      const old = randomBytes(3 * MiB);
      await store.save(key, old);
      const src = slowSource();
      const saving = store.save(key, src.stream);
      const next = [randomBytes(MiB), randomBytes(MiB), Buffer.from('end')];
      for (const p of next) {
        src.push(p);
        await settle();
        expect((await store.read(key)).equals(old)).toBe(true);
        expect((await store.stat(key))?.size).toBe(old.length);
        expect((await text(await store.load(key))).equals(old)).toBe(true);
      }
      src.end();
      await saving;
      expect((await store.read(key)).equals(Buffer.concat(next))).toBe(true);
    });

    it('an overwrite replaces the whole object, however much shorter', async () => {
      const key = k('x/obj');
      await store.save(key, randomBytes(3 * MiB + 17));
      await store.save(key, 'short');
      expect((await store.read(key)).toString()).toBe('short');
      expect((await store.stat(key))?.size).toBe(5);
      expect(await keysUnder(base)).toEqual([key]);
    });

    it('two saves of one key at once: the object is one of them, whole', async () => {
      const key = k('race');
      const [a, b] = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
      await Promise.all([store.save(key, Readable.from([a.subarray(0, MiB), a.subarray(MiB)])), store.save(key, Readable.from([b.subarray(0, MiB), b.subarray(MiB)]))]);
      const got = await store.read(key);
      expect(got.equals(a) || got.equals(b)).toBe(true);
      expect(await keysUnder(base)).toEqual([key]);
    });

    it('a source stream that fails mid-way: save rejects with its error, nothing is under the key and nothing listed; an older object stays whole', async () => {
      const fresh = k('db/failing.dump');
      const src = slowSource();
      const saving = store.save(fresh, src.stream);
      src.push(randomBytes(2 * MiB));
      await settle();
      src.fail(new Error('pg_dump went away'));
      expect(String(await rejection(() => saving))).toContain('pg_dump went away');
      await expectAbsent(fresh);
      expect(await store.list(base)).toEqual([]);

      const kept = k('db/kept.dump');
      const old = randomBytes(MiB);
      await store.save(kept, old);
      const src2 = slowSource();
      const overwrite = store.save(kept, src2.stream);
      src2.push(randomBytes(2 * MiB));
      await settle();
      src2.fail(new Error('disk gone'));
      await rejection(() => overwrite);
      expect((await store.read(kept)).equals(old)).toBe(true);
      expect(await keysUnder(base)).toEqual([kept]);
    });

    it('a source that fails at once, before the store has started writing: save rejects with its error (never an unheard one), nothing saved', async () => {
      const src = slowSource();
      const saving = store.save(k('db/early.dump'), src.stream);
      src.fail(new Error('zstd not found'));
      expect(String(await rejection(() => saving))).toContain('zstd not found');
      await expectAbsent(k('db/early.dump'));
      expect(await keysUnder(base)).toEqual([]);
    });

    it('an aborted signal: save rejects, nothing is under the key and nothing listed (also when aborted before it starts)', async () => {
      const key = k('db/aborted.dump');
      const ac = new AbortController();
      const src = slowSource();
      const saving = store.save(key, src.stream, { signal: ac.signal });
      src.push(randomBytes(2 * MiB));
      await settle();
      ac.abort(new Error('SIGINT'));
      await rejection(() => saving);
      await expectAbsent(key);

      const early = new AbortController();
      early.abort(new Error('SIGTERM'));
      await rejection(() => store.save(k('db/never'), 'x', { signal: early.signal }));
      await rejection(() => store.save(k('db/never2'), Readable.from([Buffer.from('x')]), { signal: early.signal }));
      await expectAbsent(k('db/never'));
      await expectAbsent(k('db/never2'));
      expect(await store.list(base)).toEqual([]);
    });

    it('remove is idempotent: a missing key, a present one, the same one again', async () => {
      await store.remove(k('never-was'));
      await store.save(k('gone'), 'x');
      await store.save(k('stays'), 'y');
      await store.remove(k('gone'));
      await expectAbsent(k('gone'));
      await store.remove(k('gone'));
      expect(await keysUnder(base)).toEqual([k('stays')]);
    });

    it('list(prefix): every complete object whose key starts with the prefix (a string prefix, any depth), sorted by key', async () => {
      const keys = ['a/b/x1', 'a/b/x2', 'a/b/x10', 'a/b/sub/deep/y', 'a/b/B', 'a/b/a1', 'a/bc/z', 'a/c', 'ab'];
      const shuffled = [...keys].sort(() => Math.random() - 0.5);
      for (const key of shuffled) await store.save(k(key), key);
      const sorted = (xs: string[]) => [...xs].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0));
      // Byte order (as S3 lists), not the locale's: 'B' before 'a', 'x10' before 'x2'.
      expect(await keysUnder(k('a/b/'))).toEqual(['a/b/B', 'a/b/a1', 'a/b/sub/deep/y', 'a/b/x1', 'a/b/x10', 'a/b/x2'].map(k));
      expect(await keysUnder(k('a/b'))).toEqual(sorted(keys.filter((x) => x.startsWith('a/b'))).map(k));
      expect(await keysUnder(k('a/b/x'))).toEqual(['a/b/x1', 'a/b/x10', 'a/b/x2'].map(k));
      expect(await keysUnder(k('a'))).toEqual(sorted(keys).map(k));
      expect(await keysUnder(k('a/b/x1'))).toEqual(['a/b/x1', 'a/b/x10'].map(k));
      expect(await keysUnder(k('nothing/'))).toEqual([]);
      for (const x of await store.list(base)) expect(x.size).toBe(Buffer.byteLength(x.key.slice(base.length)));
    });

    it('load, read of a missing key throw NotFoundError naming the key; stat gives null', async () => {
      const key = k('no/such/object');
      for (const e of [await rejection(() => store.load(key)), await rejection(() => store.read(key))]) {
        expect(e).toBeInstanceOf(NotFoundError);
        expect((e as NotFoundError).key).toBe(key);
      }
      expect(await store.stat(key)).toBeNull();
      await store.save(k('no/such/other'), 'x');
      expect(await store.stat(key)).toBeNull();
    });

    it(`a ${(o.bigBytes ?? 64 * MiB) / MiB} MiB streamed object round-trips with the same sha256`, async () => {
      const total = o.bigBytes ?? 64 * MiB;
      const sent = createHash('sha256');
      let produced = 0;
      const src = new Readable({
        read() {
          if (produced >= total) return void this.push(null);
          const chunk = randomBytes(Math.min(MiB, total - produced));
          produced += chunk.length;
          sent.update(chunk);
          this.push(chunk);
        },
      });
      expect(await store.save(k('big.dump.zst'), src)).toEqual({ key: k('big.dump.zst'), size: total });
      expect((await store.stat(k('big.dump.zst')))?.size).toBe(total);
      const got = createHash('sha256');
      let bytes = 0;
      for await (const c of await store.load(k('big.dump.zst'))) {
        got.update(c as Buffer);
        bytes += (c as Buffer).length;
      }
      expect(bytes).toBe(total);
      expect(got.digest('hex')).toBe(sent.digest('hex'));
    });

    it('abandoned(): never a complete object, never a save in progress younger than `before`', async () => {
      await store.save(k('db/done.dump'), randomBytes(MiB));
      expect(await store.abandoned(base, new Date(Date.now() + 3_600_000))).toEqual([]);
      const src = slowSource();
      const saving = store.save(k('db/busy.dump'), src.stream);
      src.push(randomBytes(MiB));
      await settle();
      expect(await store.abandoned(base, new Date(Date.now() - 3_600_000))).toEqual([]);
      expect(await store.abandoned(base, new Date(0))).toEqual([]);
      src.end();
      await saving;
      expect(await store.abandoned(base, new Date(Date.now() + 3_600_000))).toEqual([]);
    });

    it('what an interrupted save leaves: found by abandoned() (under its prefix only), never listed, removed by removeAbandoned() idempotently', async (ctx) => {
      if (!t.crash) return ctx.skip();
      const key = k('p/e/database/db_20250101_000000Z.dump.zst');
      await store.save(k('p/e/database/older.dump.zst'), 'complete');
      await t.crash(key, randomBytes(MiB));
      const later = new Date(Date.now() + 3_600_000);
      const found = await store.abandoned(base, later);
      expect(found.map((a) => a.key)).toEqual([key]);
      expect(found[0].startedAt).toBeInstanceOf(Date);
      expect(found[0].startedAt.getTime()).toBeLessThan(later.getTime());
      expect(await store.abandoned(k('p/e/database/'), later)).toEqual(found);
      expect(await store.abandoned(k('p/e/database/db_2025'), later)).toEqual(found);
      expect(await store.abandoned(k('p/e/deployments/'), later)).toEqual([]);
      expect(await store.abandoned(k('p/e/database/older'), later)).toEqual([]);
      expect(await keysUnder(base)).toEqual([k('p/e/database/older.dump.zst')]);
      await expectAbsent(key);

      await store.removeAbandoned(found[0]);
      await store.removeAbandoned(found[0]);
      expect(await store.abandoned(base, later)).toEqual([]);
      expect((await store.read(k('p/e/database/older.dump.zst'))).toString()).toBe('complete');
      // A save of the same key afterwards is unaffected.
      await store.save(key, 'whole');
      expect((await store.read(key)).toString()).toBe('whole');
    });
  });
}
