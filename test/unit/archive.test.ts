/**
 * The custom-format archive reader (lib/archive.ts) on archives written here byte by byte, in the
 * layout pg_dump writes to a pipe: TOC first, every data position unset, then the data blocks.
 * Real pg_dump output is covered by the restore tests (test/integration/restore.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { ArchiveIndexer, parseToc } from '../../lib/postgres/archive.js';
import { NotThinnable, ThinArchive } from '../../lib/restore/positions.js';

const INT = 4;
const OFF = 8;

function int(n: number): Buffer {
  const b = Buffer.alloc(1 + INT);
  b[0] = n < 0 ? 1 : 0;
  b.writeUInt32LE(Math.abs(n), 1);
  return b;
}
function str(s: string | null): Buffer {
  if (s === null) return int(-1);
  const body = Buffer.from(s, 'utf8');
  return Buffer.concat([int(body.length), body]);
}
function offset(flag: number, at = 0): Buffer {
  const b = Buffer.alloc(1 + OFF);
  b[0] = flag;
  b.writeBigUInt64LE(BigInt(at), 1);
  return b;
}

interface Entry {
  id: number;
  desc: string;
  /** Data blocks: rows (one chunk each); 'lobs': a BLOBS block; undefined: no data. */
  rows?: string[];
  lobs?: { oid: number; chunks: string[] }[];
  /** As pg_dump writing to a file would leave it (for the "already set" cases). */
  setAt?: number;
}

/** A custom-format archive of version 1.<minor>, data positions unset (a pipe's archive). */
function archive(entries: Entry[], minor = 14): { bytes: Buffer; blocks: Map<number, number>; head: number } {
  const header = Buffer.concat([
    Buffer.from('PGDMP'),
    Buffer.from([1, minor, 0, INT, OFF, 1]),
    minor >= 15 ? Buffer.from([0]) : int(0),
    ...[0, 30, 2, 21, 10, 126, 0].map(int),
    str('shop'),
    str('15.8'),
    str('15.8'),
  ]);
  const toc = [int(entries.length)];
  for (const e of entries) {
    toc.push(int(e.id), int(e.rows || e.lobs ? 1 : 0), str('1259'), str(String(16000 + e.id)), str(`t${e.id}`), str(e.desc), int(e.rows || e.lobs ? 3 : 2));
    toc.push(str(''), str(''), str(e.rows ? `COPY t${e.id} FROM stdin;\n` : ''), str('public'), str(''));
    if (minor >= 14) toc.push(str('heap'));
    if (minor >= 16) toc.push(int(114));
    toc.push(str('owner'), str('false'), str('1'), str(null));
    toc.push(e.setAt !== undefined ? offset(2, e.setAt) : offset(e.rows || e.lobs ? 1 : 3));
  }
  const head = Buffer.concat([header, ...toc]);
  const blocks = new Map<number, number>();
  const data: Buffer[] = [];
  let at = head.length;
  const put = (b: Buffer) => {
    data.push(b);
    at += b.length;
  };
  for (const e of entries) {
    if (e.rows) {
      blocks.set(e.id, at);
      put(Buffer.from([1]));
      put(int(e.id));
      for (const r of e.rows) put(Buffer.concat([int(Buffer.byteLength(r)), Buffer.from(r)]));
      put(int(0));
    } else if (e.lobs) {
      blocks.set(e.id, at);
      put(Buffer.from([3]));
      put(int(e.id));
      for (const lo of e.lobs) {
        put(int(lo.oid));
        for (const c of lo.chunks) put(Buffer.concat([int(c.length), Buffer.from(c)]));
        put(int(0));
      }
      put(int(0));
    }
  }
  return { bytes: Buffer.concat([head, ...data]), blocks, head: head.length };
}

const ENTRIES: Entry[] = [
  { id: 10, desc: 'ENCODING' },
  { id: 11, desc: 'TABLE' },
  { id: 20, desc: 'TABLE DATA', rows: Array.from({ length: 300 }, (_, i) => `${i}\trow ${i} ✓\n`) },
  { id: 21, desc: 'TABLE DATA', rows: [] },
  { id: 22, desc: 'TABLE DATA', rows: ['x'.repeat(70_000)] },
  { id: 30, desc: 'BLOBS', lobs: [{ oid: 16500, chunks: ['large', ' object'] }, { oid: -5, chunks: [] }] },
  { id: 40, desc: 'INDEX' },
];

function feed(bytes: Buffer, sizes: (i: number) => number): ArchiveIndexer {
  const ix = new ArchiveIndexer();
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes(i));
    ix.write(bytes.subarray(at, at + n));
    at += n;
  }
  return ix;
}

/** Every entry with data placed where its block is, nothing else changed. */
function expectPatched(patch: Buffer | null, a: ReturnType<typeof archive>) {
  expect(patch).not.toBeNull();
  expect(patch!.length).toBe(a.head);
  const toc = parseToc(patch!);
  for (const e of toc.entries) {
    const at = a.blocks.get(e.dumpId);
    if (at === undefined) expect(e.flag).toBe(3);
    else expect([e.flag, e.offset]).toEqual([2, at]);
  }
  const differing = [...patch!].flatMap((b, i) => (b === a.bytes[i] ? [] : [i]));
  const offsetBytes = new Set(toc.entries.filter((e) => a.blocks.has(e.dumpId)).flatMap((e) => Array.from({ length: 1 + OFF }, (_, k) => e.flagAt + k)));
  expect(differing.every((i) => offsetBytes.has(i))).toBe(true);
}

describe('archive data positions', () => {
  it('finds every data and large-object block, in one piece, byte by byte, and in uneven pieces', () => {
    const a = archive(ENTRIES);
    for (const sizes of [() => a.bytes.length, () => 1, (i: number) => [7, 4096, 3, 65536, 1, 5, 333][i % 7]]) {
      const ix = feed(a.bytes, sizes);
      const index = ix.end();
      expect(ix.problem).toBeUndefined();
      expect(index!.blocks).toEqual(a.blocks);
      expect(index!.bytes).toBe(a.bytes.length);
      expectPatched(ix.tocPatch(index), a);
    }
  });

  it('reads the archive versions of PostgreSQL 12 to 17 (1.14, 1.15, 1.16)', () => {
    for (const minor of [14, 15, 16]) {
      const a = archive(ENTRIES, minor);
      const ix = feed(a.bytes, () => 1000);
      expectPatched(ix.tocPatch(), a);
    }
  });

  it('a table of contents longer than the first pieces is waited for', () => {
    const many: Entry[] = Array.from({ length: 3000 }, (_, i) => ({ id: i + 1, desc: i % 2 ? 'TABLE DATA' : 'TABLE', rows: i % 2 ? [`${i}\n`] : undefined }));
    const a = archive(many);
    expect(a.head).toBeGreaterThan(200_000);
    const ix = feed(a.bytes, () => 4096);
    expectPatched(ix.tocPatch(), a);
  });

  it('nothing to fill in when pg_dump could write the positions itself', () => {
    const plain = archive(ENTRIES);
    const placed = archive(ENTRIES.map((e) => ({ ...e, setAt: plain.blocks.get(e.id) })).map((e) => (e.setAt === undefined ? { ...e, setAt: undefined } : e)));
    const ix = feed(placed.bytes, () => 512);
    expect(ix.end()?.blocks).toEqual(placed.blocks);
    expect(ix.tocPatch()).toBeNull();
  });

  it('gives no patch, and says why, for whatever it does not recognise', () => {
    const a = archive(ENTRIES);
    const cases: [string, Buffer, RegExp][] = [
      ['truncated mid-block', a.bytes.subarray(0, a.bytes.length - 3), /ends inside a data block/],
      ['truncated in the TOC', a.bytes.subarray(0, a.head - 4), /ends inside its table of contents/],
      ['a newer version', archive(ENTRIES, 17).bytes, /version 1\.17\.0/],
      ['an older version', archive(ENTRIES, 11).bytes, /version 1\.11\.0/],
      ['not an archive', Buffer.from('-- PostgreSQL database dump\n'), /not a pg_dump custom-format archive/],
      ['an unknown block type', Buffer.concat([a.bytes, Buffer.from([9]), int(99)]), /unknown block type 9/],
      ['a block the TOC does not list', Buffer.concat([a.bytes, Buffer.from([1]), int(99), int(0)]), /dump id 99, which the TOC does not list/],
      ['two blocks for one entry', Buffer.concat([a.bytes, Buffer.from([1]), int(20), int(0)]), /two data blocks for dump id 20/],
      ['a negative chunk length', Buffer.concat([a.bytes, Buffer.from([1]), int(11), int(-4)]), /negative length/],
    ];
    for (const [what, bytes, problem] of cases) {
      const ix = feed(bytes, () => 777);
      expect(ix.end(), what).toBeNull();
      expect(ix.tocPatch(), what).toBeNull();
      expect(ix.problem, what).toMatch(problem);
    }
  });

  it('a position pg_dump set that disagrees with the blocks is refused', () => {
    const plain = archive(ENTRIES);
    const wrong = archive(ENTRIES.map((e) => (e.id === 22 ? { ...e, setAt: plain.blocks.get(20) } : e)));
    const ix = feed(wrong.bytes, () => 4096);
    expect(ix.end()).toBeNull();
    expect(ix.problem).toMatch(/places dump id 22 at/);
  });
});

/** Run `bytes` through a ThinArchive in pieces of `sizes`; its output, and its patch written over the output's start. */
async function thinned(bytes: Buffer, keep: number[], sizes: (i: number) => number): Promise<{ out: Buffer; patched: Buffer; dropped: number }> {
  const t = new ThinArchive(new Set(keep));
  const out: Buffer[] = [];
  t.on('data', (b: Buffer) => out.push(Buffer.from(b)));
  const ended = new Promise<void>((resolve, reject) => t.once('end', resolve).once('error', reject));
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes(i));
    t.write(bytes.subarray(at, at + n));
    at += n;
  }
  t.end();
  await ended;
  const o = Buffer.concat(out);
  const patch = await t.patch;
  expect(patch).not.toBeNull();
  return { out: o, patched: Buffer.concat([patch!, o.subarray(patch!.length)]), dropped: t.dropped };
}

describe('thin archive (a table restore stages only its tables\' data blocks)', () => {
  const blockOf = (a: ReturnType<typeof archive>, id: number) => {
    const starts = [...a.blocks.values(), a.bytes.length].sort((x, y) => x - y);
    const at = a.blocks.get(id)!;
    return a.bytes.subarray(at, starts[starts.indexOf(at) + 1]);
  };

  it('keeps the head and the chosen blocks byte for byte, their positions set, in one piece, byte by byte and in uneven pieces', async () => {
    const a = archive(ENTRIES);
    for (const sizes of [() => a.bytes.length, () => 1, (i: number) => [7, 4096, 3, 65536, 1, 5, 333][i % 7]]) {
      const { out, patched, dropped } = await thinned(a.bytes, [11, 21, 22], sizes);
      expect(out.subarray(0, a.head).equals(a.bytes.subarray(0, a.head))).toBe(true);
      expect(out.length).toBe(a.head + blockOf(a, 21).length + blockOf(a, 22).length);
      expect(dropped).toBe(a.bytes.length - out.length);
      const ix = feed(patched, () => patched.length);
      const index = ix.end();
      expect(ix.problem).toBeUndefined();
      expect([...index!.blocks.keys()]).toEqual([21, 22]);
      for (const e of parseToc(patched).entries) {
        if (e.dumpId === 21 || e.dumpId === 22) {
          expect([e.flag, e.offset]).toEqual([2, index!.blocks.get(e.dumpId)]);
          expect(patched.subarray(e.offset, e.offset + blockOf(a, e.dumpId).length).equals(blockOf(a, e.dumpId))).toBe(true);
        } else expect(e.flag).toBe(a.blocks.has(e.dumpId) ? 1 : 3);
      }
    }
  });

  it('unsets the positions pg_dump set for the blocks it drops', async () => {
    const plain = archive(ENTRIES);
    const a = archive(ENTRIES.map((e) => (plain.blocks.has(e.id) ? { ...e, setAt: plain.blocks.get(e.id) } : e)));
    const { patched } = await thinned(a.bytes, [20], () => 4096);
    const toc = parseToc(patched);
    expect(toc.entries.filter((e) => e.flag === 2).map((e) => e.dumpId)).toEqual([20]);
    expect(toc.entries.filter((e) => e.flag === 1).map((e) => e.dumpId)).toEqual([21, 22, 30]);
  });

  it('fails with NotThinnable, never a guess, on a cut archive, an unknown block type or a chosen block that is missing', async () => {
    const a = archive(ENTRIES);
    await expect(thinned(a.bytes.subarray(0, a.bytes.length - 3), [20], () => 1000)).rejects.toBeInstanceOf(NotThinnable);
    const bad = Buffer.from(a.bytes);
    bad[a.blocks.get(21)!] = 9;
    await expect(thinned(bad, [20], () => 1000)).rejects.toBeInstanceOf(NotThinnable);
    const noBlock = archive(ENTRIES.filter((e) => e.id !== 22).concat([{ id: 50, desc: 'TABLE DATA', rows: ['a'] }])).bytes;
    const withoutLast = noBlock.subarray(0, noBlock.length - (1 + INT + (1 + INT + 1) + (1 + INT)));
    await expect(thinned(withoutLast, [50], () => 1000)).rejects.toBeInstanceOf(NotThinnable);
  });
});

describe('retargeted head (a thin archive whose rows load into another schema)', () => {
  it('changes the chosen entries\' namespace and COPY statement, every other field and the kept blocks as they were', async () => {
    const a = archive(ENTRIES);
    const t = new ThinArchive(new Set([20, 22]), new Map([[22, { namespace: 'restored_1', copyStmt: 'COPY "restored_1".t22 FROM stdin;\n' }]]));
    const out: Buffer[] = [];
    t.on('data', (b: Buffer) => out.push(Buffer.from(b)));
    const ended = new Promise((resolve) => t.once('end', resolve));
    t.end(a.bytes);
    await ended;
    const o = Buffer.concat(out);
    const patch = (await t.patch)!;
    const patched = Buffer.concat([patch, o.subarray(patch.length)]);
    const before = parseToc(a.bytes).entries;
    const after = parseToc(patched).entries;
    expect(after.map((e) => [e.dumpId, e.desc, e.tag, e.owner, e.defn, e.deps])).toEqual(before.map((e) => [e.dumpId, e.desc, e.tag, e.owner, e.defn, e.deps]));
    const e22 = after.find((e) => e.dumpId === 22)!;
    expect([e22.namespace, e22.copyStmt]).toEqual(['restored_1', 'COPY "restored_1".t22 FROM stdin;\n']);
    expect(after.filter((e) => e.dumpId !== 22).map((e) => [e.namespace, e.copyStmt])).toEqual(before.filter((e) => e.dumpId !== 22).map((e) => [e.namespace, e.copyStmt]));
    const ix = feed(patched, () => 1000);
    const index = ix.end()!;
    expect([...index.blocks.keys()]).toEqual([20, 22]);
    for (const id of [20, 22]) {
      const e = after.find((x) => x.dumpId === id)!;
      expect([e.flag, e.offset]).toEqual([2, index.blocks.get(id)]);
      const len = index.blocks.get(id) === index.blocks.get(20) ? index.blocks.get(22)! - e.offset : patched.length - e.offset;
      expect(patched.subarray(e.offset, e.offset + len).equals(a.bytes.subarray(a.blocks.get(id)!, a.blocks.get(id)! + len))).toBe(true);
    }
  });

  it('changes a definition where given (a table restored straight into another schema), its drop statement and every other field byte for byte', async () => {
    const a = archive(ENTRIES);
    const t = new ThinArchive(new Set([20]), new Map([[11, { namespace: 'r', defn: 'CREATE TABLE r.t11 (\n    id integer\n);\n' }]]));
    const out: Buffer[] = [];
    t.on('data', (b: Buffer) => out.push(Buffer.from(b)));
    const ended = new Promise((resolve) => t.once('end', resolve));
    t.end(a.bytes);
    await ended;
    const patch = (await t.patch)!;
    const before = parseToc(a.bytes);
    const after = parseToc(patch);
    const e11 = after.entries.find((e) => e.dumpId === 11)!;
    expect([e11.namespace, e11.defn, e11.copyStmt]).toEqual(['r', 'CREATE TABLE r.t11 (\n    id integer\n);\n', '']);
    const b11 = before.entries.find((e) => e.dumpId === 11)!;
    expect(patch.subarray(...e11.spans.dropStmt).equals(a.bytes.subarray(...b11.spans.dropStmt))).toBe(true);
    expect(after.entries.filter((e) => e.dumpId !== 11).map((e) => [e.dumpId, e.desc, e.tag, e.namespace, e.defn, e.copyStmt, e.owner, e.deps])).toEqual(
      before.entries.filter((e) => e.dumpId !== 11).map((e) => [e.dumpId, e.desc, e.tag, e.namespace, e.defn, e.copyStmt, e.owner, e.deps]),
    );
  });
});
