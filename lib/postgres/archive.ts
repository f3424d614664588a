/**
 * Where each data block of a pg_dump custom-format archive starts, found as the archive streams
 * past, and the archive's head rewritten to say so.
 *
 * pg_dump writes the table of contents (TOC) first and the table data after it. When its output
 * is a file it goes back at the end and fills in where each table's data starts; when it writes
 * to a pipe (as every `pg_dump -Fc | …` does, pgfleet's backups included) it cannot, and every
 * entry says "position not set". A parallel pg_restore of such an archive is slow: each worker
 * reads through the archive from the top to find the table it was given, and with no sizes to go
 * by the largest tables are not started first.
 *
 * ArchiveIndexer follows the archive's block structure (header, TOC, then blocks of length-
 * prefixed chunks) without keeping the data, and tocPatch() gives the archive's first bytes (header
 * and TOC) with the positions filled in: the same bytes pg_dump writes to a file, and the same
 * length, so they are written over the start of a staged copy. Anything it does not recognise (an
 * archive version it does not know, a block that ends elsewhere than its lengths say, a stream
 * that stops mid-block) gives no patch, and pg_restore reads the archive as pg_dump left it. A
 * wrong position could not go unnoticed either: pg_restore checks the id at each block it seeks to.
 *
 * Format: src/bin/pg_dump/pg_backup_archiver.c (ReadHead, ReadToc, ReadInt, ReadStr, ReadOffset)
 * and pg_backup_custom.c (_readBlockHeader, _skipData, _skipLobs) in PostgreSQL's sources.
 */

const MAGIC = 'PGDMP';
const FORMAT_CUSTOM = 1;
const BLK_DATA = 1;
const BLK_BLOBS = 3;
const K_OFFSET_POS_NOT_SET = 1;
const K_OFFSET_POS_SET = 2;
const K_OFFSET_NO_DATA = 3;
/** Archive versions read here: 1.12 (PostgreSQL 9.0) to 1.16 (PostgreSQL 17 and later). */
const MIN_VERSION = v(1, 12, 0);
const MAX_VERSION = v(1, 16, 255);
/** A head (header + TOC) larger than this is not indexed. */
const MAX_HEAD_BYTES = 256 * 1024 * 1024;

function v(maj: number, min: number, rev: number): number {
  return (maj * 256 + min) * 256 + rev;
}

class NeedMore extends Error {}
class Unrecognised extends Error {}

export interface TocEntry {
  dumpId: number;
  desc: string | null;
  /** The object's name as pg_dump gives it (a column comment: `COLUMN t.c`; an ACL: `TABLE t`). */
  tag: string | null;
  /** Its schema; null for objects outside one (schemas, extensions, …). */
  namespace: string | null;
  owner: string | null;
  /** 1 none, 2 pre-data, 3 data, 4 post-data (pg_backup.h teSection). */
  section: number;
  /** The SQL that creates it. */
  defn: string | null;
  /** Dump ids of the entries it depends on. */
  deps: number[];
  /** A TABLE DATA entry's COPY statement (pg_restore runs it as written). */
  copyStmt: string | null;
  /** Where the defn, drop statement, COPY statement and namespace fields are in the head ([start, end), length prefix included; one after the other). */
  spans: { defn: [number, number]; dropStmt: [number, number]; namespace: [number, number]; copyStmt: [number, number] };
  /** Where the entry's offset flag byte is, in the head. */
  flagAt: number;
  flag: number;
  offset: number;
}

export interface ArchiveToc {
  version: string;
  intSize: number;
  offSize: number;
  /** Bytes of header and TOC: where the data blocks start. */
  headBytes: number;
  entries: TocEntry[];
}

/** Reads the header and TOC from a buffer that may end too soon (NeedMore). */
class HeadReader {
  pos = 0;
  intSize = 4;
  constructor(private readonly b: Buffer) {}

  bytes(n: number): Buffer {
    if (this.pos + n > this.b.length) throw new NeedMore();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  byte(): number {
    return this.bytes(1)[0];
  }
  int(): number {
    const [sign, ...mag] = this.bytes(1 + this.intSize);
    const n = mag.reduceRight((acc, x) => acc * 256 + x, 0);
    return sign ? -n : n;
  }
  str(): string | null {
    const n = this.int();
    if (n < 0) return null;
    return this.bytes(n).toString('utf8');
  }
}

/** Parse the header and TOC at the start of `b`. NeedMore: `b` ends before the TOC does. */
export function parseToc(b: Buffer): ArchiveToc {
  const r = new HeadReader(b);
  if (r.bytes(5).toString('latin1') !== MAGIC) throw new Unrecognised('not a pg_dump custom-format archive');
  const [maj, min, rev] = [r.byte(), r.byte(), r.byte()];
  const version = v(maj, min, rev);
  if (version < MIN_VERSION || version > MAX_VERSION) throw new Unrecognised(`archive version ${maj}.${min}.${rev} is not one this reader knows`);
  r.intSize = r.byte();
  const offSize = r.byte();
  if (r.intSize < 1 || r.intSize > 8 || offSize < 1 || offSize > 16) throw new Unrecognised(`unexpected integer sizes (${r.intSize}, ${offSize})`);
  if (r.byte() !== FORMAT_CUSTOM) throw new Unrecognised('not a custom-format archive');
  if (version >= v(1, 15, 0)) r.byte(); // compression algorithm
  else r.int(); // compression level
  for (let i = 0; i < 7; i++) r.int(); // creation time
  r.str(); // database name
  r.str(); // server version
  r.str(); // pg_dump version
  const count = r.int();
  if (count < 0) throw new Unrecognised(`negative TOC entry count ${count}`);
  const entries: TocEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dumpId = r.int();
    if (dumpId <= 0) throw new Unrecognised(`TOC entry id ${dumpId} out of range`);
    r.int(); // had dumper
    r.str(); // tableoid
    r.str(); // oid
    const tag = r.str();
    const desc = r.str();
    const section = r.int();
    const defnAt = r.pos;
    const defn = r.str();
    const dropAt = r.pos;
    r.str(); // drop statement
    const copyAt = r.pos;
    const copyStmt = r.str();
    const nsAt = r.pos;
    const namespace = r.str();
    const spans = { defn: [defnAt, dropAt] as [number, number], dropStmt: [dropAt, copyAt] as [number, number], copyStmt: [copyAt, nsAt] as [number, number], namespace: [nsAt, r.pos] as [number, number] };
    r.str(); // tablespace
    if (version >= v(1, 14, 0)) r.str(); // table access method
    if (version >= v(1, 16, 0)) r.int(); // relkind
    const owner = r.str();
    r.str(); // with oids
    const deps: number[] = [];
    for (let d = r.str(); d !== null; d = r.str()) deps.push(Number(d)); // dependencies, ended by a null string
    const flagAt = r.pos;
    const flag = r.byte();
    if (flag !== K_OFFSET_POS_NOT_SET && flag !== K_OFFSET_POS_SET && flag !== K_OFFSET_NO_DATA) throw new Unrecognised(`unexpected data offset flag ${flag} in TOC entry ${dumpId}`);
    const off = r.bytes(offSize);
    const offset = [...off].reduceRight((acc, x) => acc * 256 + x, 0);
    entries.push({ dumpId, desc, tag, namespace, owner, section, defn, deps, copyStmt, spans, flagAt, flag, offset });
  }
  return { version: `${maj}.${min}.${rev}`, intSize: r.intSize, offSize, headBytes: r.pos, entries };
}

/** The header and TOC at the start of `b`, or null when `b` ends before the TOC does. */
export function tocOf(b: Buffer): ArchiveToc | null {
  try {
    return parseToc(b);
  } catch (e) {
    if (e instanceof NeedMore) return null;
    throw e;
  }
}

/** What the next field of the data section is. */
const Step = { BlockType: 0, BlockId: 1, ChunkLen: 2, LobOid: 3 } as const;
type Step = (typeof Step)[keyof typeof Step];

export interface ArchiveIndex {
  toc: ArchiveToc;
  /** Where each data block starts, by dump id. */
  blocks: Map<number, number>;
  /** Bytes read in all. */
  bytes: number;
}

/**
 * Feed it the archive's bytes in order (write), then end(): the index, or null with the reason in
 * `problem`. Keeps a copy of the head (header and TOC) and a few bytes, never the data, and no
 * reference to a written buffer: the caller may reuse it.
 */
export class ArchiveIndexer {
  problem?: string;
  /**
   * Told of each data block as it is walked (absolute positions): its id and type once its header
   * (type byte and id, `start` to `headerEnd`) is read, and where it ends. Called during write().
   */
  constructor(private readonly blockSeen?: { start(id: number, type: number, start: number, headerEnd: number): void; end(end: number): void }) {}
  private head: Buffer[] = [];
  private headLen = 0;
  private nextTry = 64 * 1024;
  private toc?: ArchiveToc;
  private headBuf?: Buffer;
  /** Absolute position of the next byte to walk. */
  private pos = 0;
  private skip = 0;
  private carry: Buffer = Buffer.alloc(0);
  private step: Step = Step.BlockType;
  private inLobs = false;
  private blockStart = 0;
  private blockType = 0;
  private readonly blocks = new Map<number, number>();

  write(chunk: Buffer): void {
    if (this.problem !== undefined) return;
    try {
      if (this.toc) return this.walk(chunk);
      this.head.push(Buffer.from(chunk));
      this.headLen += chunk.length;
      if (this.headLen >= this.nextTry) this.tryHead(false);
    } catch (e) {
      this.fail(e);
    }
  }

  end(): ArchiveIndex | null {
    if (this.problem !== undefined) return null;
    try {
      if (!this.toc) this.tryHead(true);
      if (!this.toc) return null;
      if (this.step !== Step.BlockType || this.skip || this.carry.length) throw new Unrecognised(`the archive ends inside a data block (after ${this.pos} bytes)`);
      const ids = new Map(this.toc.entries.map((e) => [e.dumpId, e]));
      for (const [id, at] of this.blocks) {
        const e = ids.get(id);
        if (!e) throw new Unrecognised(`data block for dump id ${id}, which the TOC does not list`);
        if (e.flag === K_OFFSET_POS_SET && e.offset !== at) throw new Unrecognised(`the TOC places dump id ${id} at ${e.offset}, but its block is at ${at}`);
      }
      return { toc: this.toc, blocks: this.blocks, bytes: this.pos };
    } catch (e) {
      this.fail(e);
      return null;
    }
  }

  /** The head (header and TOC) with every unset data position filled in; null when none was unset or nothing is known. */
  tocPatch(index: ArchiveIndex | null = this.end()): Buffer | null {
    if (!index || !this.headBuf) return null;
    const notSet = new Set(index.toc.entries.filter((e) => e.flag === K_OFFSET_POS_NOT_SET).map((e) => e.dumpId));
    const unset = new Map([...index.blocks].filter(([id]) => notSet.has(id)));
    return unset.size ? headWithPositions(this.headBuf, index.toc, unset, false) : null;
  }

  /** The head (header and TOC) as read, once the TOC is: the archive's first toc.headBytes bytes. */
  get headBytes(): Buffer | undefined {
    return this.headBuf;
  }

  private fail(e: unknown): void {
    if (e instanceof Unrecognised) this.problem = e.message;
    else throw e;
    this.head = [];
    this.headBuf = undefined;
  }

  private tryHead(final: boolean): void {
    const buf = Buffer.concat(this.head, this.headLen);
    this.head = [buf];
    try {
      this.toc = parseToc(buf);
    } catch (e) {
      if (!(e instanceof NeedMore)) throw e;
      if (final) throw new Unrecognised('the archive ends inside its table of contents');
      if (this.headLen > MAX_HEAD_BYTES) throw new Unrecognised(`table of contents larger than ${MAX_HEAD_BYTES} bytes`);
      this.nextTry = this.headLen * 2;
      return;
    }
    this.headBuf = buf.subarray(0, this.toc.headBytes);
    this.head = [];
    this.pos = this.toc.headBytes;
    this.walk(buf.subarray(this.toc.headBytes));
  }

  /** Follow block headers and chunk lengths through `b`, which continues the stream at this.pos. */
  private walk(b: Buffer): void {
    const intLen = 1 + this.toc!.intSize;
    const base = this.pos;
    this.pos += b.length;
    let i = 0;
    while (i < b.length) {
      if (this.skip) {
        const n = Math.min(this.skip, b.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      // The common case, one chunk per row: lengths and data back to back within this buffer.
      if (this.step === Step.ChunkLen && intLen === 5 && !this.carry.length) {
        while (i + 5 <= b.length && b[i] === 0) {
          const n = b.readUInt32LE(i + 1);
          if (n === 0) break;
          i += 5 + n;
        }
        if (i > b.length) {
          this.skip = i - b.length;
          break;
        }
        if (i === b.length) break;
      }
      const need = this.step === Step.BlockType ? 1 : intLen;
      if (this.carry.length) {
        const n = Math.min(need - this.carry.length, b.length - i);
        this.carry = Buffer.concat([this.carry, b.subarray(i, i + n)]);
        i += n;
        if (this.carry.length < need) break;
        const field = this.carry;
        this.carry = Buffer.alloc(0);
        this.field(field, 0, need, base + i);
      } else if (b.length - i >= need) {
        i += need;
        this.field(b, i - need, need, base + i);
      } else {
        this.carry = Buffer.from(b.subarray(i));
        break;
      }
    }
  }

  /** One field (`len` bytes of `b` from `at`), which ends at absolute position `end`. */
  private field(b: Buffer, at: number, len: number, end: number): void {
    if (this.step === Step.BlockType) {
      this.blockStart = end - 1;
      this.blockType = b[at];
      if (this.blockType !== BLK_DATA && this.blockType !== BLK_BLOBS) throw new Unrecognised(`unknown block type ${this.blockType} at byte ${this.blockStart}`);
      this.step = Step.BlockId;
      return;
    }
    let n = 0;
    for (let k = len - 1; k >= 1; k--) n = n * 256 + b[at + k];
    // A large object's OID above 2^31 is written as a negative int; a length or an id never is.
    if (b[at] !== 0 && this.step !== Step.LobOid) throw new Unrecognised(`negative length or id at byte ${end - len}`);
    switch (this.step) {
      case Step.BlockId:
        if (this.blocks.has(n)) throw new Unrecognised(`two data blocks for dump id ${n}`);
        this.blocks.set(n, this.blockStart);
        this.blockSeen?.start(n, this.blockType, this.blockStart, end);
        this.step = this.blockType === BLK_DATA ? Step.ChunkLen : Step.LobOid;
        this.inLobs = this.blockType === BLK_BLOBS;
        return;
      case Step.ChunkLen:
        if (n) this.skip = n;
        else this.step = this.inLobs ? Step.LobOid : Step.BlockType;
        if (!n && !this.inLobs) this.blockSeen?.end(end);
        return;
      case Step.LobOid:
        this.step = n ? Step.ChunkLen : Step.BlockType;
        if (!n) [(this.inLobs = false), this.blockSeen?.end(end)];
        return;
    }
  }
}

/**
 * `head` (an archive's header and TOC) with the data positions of `at` (dump id → byte) set; with
 * `unsetOthers`, every other set position is marked unset (for an archive holding only the blocks
 * of `at`). Null when a position does not fit the archive's offset size.
 */
export function headWithPositions(head: Buffer, toc: ArchiveToc, at: Map<number, number>, unsetOthers: boolean): Buffer | null {
  const patch = Buffer.from(head.subarray(0, toc.headBytes));
  for (const e of toc.entries) {
    const pos = at.get(e.dumpId);
    if (e.flag === K_OFFSET_NO_DATA || (pos === undefined && !(unsetOthers && e.flag === K_OFFSET_POS_SET))) continue;
    if (pos !== undefined && toc.offSize < 8 && pos >= 2 ** (8 * toc.offSize)) return null;
    patch[e.flagAt] = pos === undefined ? K_OFFSET_POS_NOT_SET : K_OFFSET_POS_SET;
    let rest = pos ?? 0;
    for (let i = 0; i < toc.offSize; i++) {
      patch[e.flagAt + 1 + i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  }
  return patch;
}

/** What retargetHead changes in an entry: its namespace, and its COPY statement and definition where given. */
export interface EntryChange {
  namespace: string;
  copyStmt?: string;
  defn?: string;
}

/**
 * `head` with the namespace, and the COPY statement and definition where given, of some entries
 * replaced (dump id → new values): the same archive, those entries restored elsewhere by
 * pg_restore. Every other field is kept byte for byte. The head's length changes: it is for a thin
 * archive, whose data positions are set after it (headWithPositions).
 */
export function retargetHead(head: Buffer, toc: ArchiveToc, changes: Map<number, EntryChange>): Buffer {
  const str = (s: string) => {
    const body = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(1 + toc.intSize);
    for (let i = 0, rest = body.length; i < toc.intSize; i++, rest = Math.floor(rest / 256)) n[1 + i] = rest % 256;
    return Buffer.concat([n, body]);
  };
  const parts: Buffer[] = [];
  let at = 0;
  for (const e of toc.entries) {
    const c = changes.get(e.dumpId);
    if (!c) continue;
    const field = (span: [number, number], to: string | undefined) => (to === undefined ? head.subarray(...span) : str(to));
    parts.push(head.subarray(at, e.spans.defn[0]), field(e.spans.defn, c.defn), head.subarray(...e.spans.dropStmt), field(e.spans.copyStmt, c.copyStmt), str(c.namespace));
    at = e.spans.namespace[1];
  }
  parts.push(head.subarray(at, toc.headBytes));
  return Buffer.concat(parts);
}
