/**
 * The host-side data-positions pass of a restore: a second read of the decompressed archive, beside
 * its staging, that fills in the data positions pg_dump cannot write into a pipe
 * (lib/postgres/archive.ts), so that a parallel pg_restore can seek instead of scanning.
 *
 * Promises: it never fails a restore (any problem, or an interrupt, gives null: pg_restore then
 * reads the archive as pg_dump wrote it), memory stays flat whatever the archive's size, and it
 * leaves nothing behind (its private FIFO directory is removed whatever happens). Given `input`
 * (a branch of the one read of a remote copy), it reads that instead of the file, and keeps it
 * flowing to its end whatever happens, so it never holds the staging back.
 */
import { openSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Logger } from '../core/log.js';
import { ArchiveIndexer, headWithPositions, retargetHead, tocOf, type ArchiveToc, type EntryChange } from '../postgres/archive.js';
import type { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import type { DumpFile } from './dump.js';

/**
 * The archive's head with its data positions filled in, read from a second, host-side pass over
 * the decompressed archive; null: none to fill, or not readable. The archive passes through one
 * reused buffer (a plain archive is read from its file; a compressed one from a private FIFO the
 * host's zstd writes into, read as a socket with a fixed read buffer), so the ~GB going through
 * leaves no garbage behind.
 */
export async function archiveIndex(ctx: Context, sh: TargetShell, d: DumpFile, signal: AbortSignal | undefined, log: Logger, input?: Readable): Promise<Buffer | null> {
  // A copy in the bucket is read once: without a branch of that read there is nothing to index.
  if (d.remote && !input) return null;
  const ix = new ArchiveIndexer();
  const buf = Buffer.allocUnsafe(1 << 20);
  let dir: string | null = null;
  try {
    if (d.compressed) {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgfleet-index-'));
      const fifo = path.join(dir, 'archive');
      await ctx.runner.run(['mkfifo', '-m', '600', '--', fifo], { what: 'mkfifo', role: 'setup', target: sh.ref, signal });
      // Read-write first: on Linux that never waits for a reader; the read side then opens at once.
      const w = await fs.open(fifo, fs.constants.O_RDWR);
      // (`onread` is a documented constructor option that this @types/node does not list yet.)
      const onread: net.OnReadOpts = { buffer: buf, callback: (n, b) => (ix.write(Buffer.from(b.buffer, b.byteOffset, n)), true) };
      let reader: net.Socket | undefined;
      try {
        reader = new net.Socket({ fd: openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK), readable: true, writable: false, onread } as net.SocketConstructorOpts);
        const r = reader;
        const ended = new Promise<void>((resolve, reject) => r.once('close', () => resolve()).once('error', reject));
        // --no-check: the file's sha256 is checked on the staging side, and a wrong position could not pass unnoticed.
        const z = ctx.runner.spawn(['zstd', '-dc', '-q', '--no-check', ...(input ? [] : ['--', d.path])], { input, stdoutTo: w.fd, signal, what: 'zstd -d (reading the archive)', role: 'decompress', target: sh.ref });
        await w.close(); // zstd holds its own copy: the FIFO ends when zstd does
        const [read, done] = await Promise.allSettled([ended, z.done]);
        if (done.status === 'rejected') throw done.reason;
        if (read.status === 'rejected') throw read.reason;
      } finally {
        reader?.destroy();
        await w.close().catch(() => undefined);
      }
    } else if (input) {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        if (signal?.aborted) break;
        ix.write(chunk);
      }
    } else {
      const fh = await fs.open(d.path, 'r');
      try {
        for (let n; (n = (await fh.read(buf, 0, buf.length, null)).bytesRead) && !signal?.aborted; ) ix.write(buf.subarray(0, n));
      } finally {
        await fh.close();
      }
    }
    if (signal?.aborted) return null;
    const index = ix.end();
    if (!index) log.debug({ problem: ix.problem }, 'archive structure not recognised: pg_restore will read it as written');
    return ix.tocPatch(index);
  } catch (e) {
    log.debug({ err: (e as Error)?.message ?? String(e) }, 'archive not indexed: pg_restore will read it as written');
    return null;
  } finally {
    // Whatever happened, the branch keeps flowing (into nothing) so the staging it shares a read with goes on.
    if (input && !input.readableEnded) input.on('error', () => undefined).resume();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }
}

/** pg_backup_archiver.h K_OFFSET_NO_DATA: an entry without a data block. */
const NO_DATA = 3;

/** The archive's structure is not one ThinArchive can follow: stage it whole instead. */
export class NotThinnable extends Error {}

/**
 * The decompressed archive in, a thin archive out: its head (header and TOC) and the data blocks
 * of `keep` (dump ids) only, byte for byte, in their order; every other block is dropped as it
 * streams past, so a table restore stages and pg_restore reads that table's data, not the dump's.
 * `patch` (resolved once the input has ended) is the head with the kept blocks' positions in the
 * thin archive set and every other position unset, to write over its start before pg_restore:
 * pg_restore seeks straight to each kept block and checks its id there. An archive whose block
 * structure is not recognised, or that ends inside a block, fails the stream with NotThinnable
 * (nothing is guessed). Memory: the head, and no data (kept data is passed on, not copied).
 */
export class ThinArchive extends Transform {
  /** The thin archive's head with its data positions; settles when the stream ends or fails (never rejects). */
  readonly patch: Promise<Buffer | null>;
  /** Bytes dropped so far. */
  dropped = 0;
  private readonly ix: ArchiveIndexer;
  private settle!: (b: Buffer | null) => void;
  private pending: Buffer[] = [];
  private headDone = false;
  /** Bytes pushed so far: where the next kept byte lands in the thin archive. */
  private out = 0;
  /** Where each kept block starts in the thin archive. */
  private readonly placed = new Map<number, number>();
  private events: ({ kind: 'start'; id: number; type: number; headerEnd: number } | { kind: 'end'; at: number })[] = [];
  /** The kept block under way: its bytes from `from` are passed on. */
  private open: { from: number } | null = null;

  /** The head as passed on (retargeted), and its TOC. */
  private head?: { bytes: Buffer; toc: ArchiveToc };

  /** `retarget`: entries whose namespace and COPY statement change in the thin archive's head (lib/postgres/archive.ts retargetHead). */
  constructor(
    private readonly keep: ReadonlySet<number>,
    private readonly retarget?: Map<number, EntryChange>,
  ) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    this.patch = new Promise((resolve) => (this.settle = resolve));
    this.once('close', () => this.settle(null));
    this.ix = new ArchiveIndexer({
      start: (id, type, _start, headerEnd) => this.events.push({ kind: 'start', id, type, headerEnd }),
      end: (at) => this.events.push({ kind: 'end', at }),
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.thin(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    const index = this.ix.end();
    if (!index) return done(new NotThinnable(this.ix.problem ?? 'the archive ends inside its table of contents'));
    const missing = [...this.keep].filter((id) => index.toc.entries.some((e) => e.dumpId === id && e.flag !== NO_DATA) && !this.placed.has(id));
    if (missing.length) return done(new NotThinnable(`no data block for dump id ${missing.join(', ')}`));
    const patch = headWithPositions(this.head!.bytes, this.head!.toc, this.placed, true);
    if (!patch) return done(new NotThinnable('a data position does not fit the archive'));
    this.settle(patch);
    done();
  }

  private thin(chunk: Buffer): void {
    // Absolute position of `chunk`'s first byte, before the indexer moves on.
    let base = this.pos;
    this.ix.write(chunk);
    if (this.ix.problem !== undefined) throw new NotThinnable(this.ix.problem);
    if (!this.headDone) {
      this.pending.push(chunk);
      const head = this.ix.headBytes;
      if (!head) return;
      // The head is known: pass it on, then treat what came with it as one chunk from byte 0.
      this.headDone = true;
      chunk = Buffer.concat(this.pending);
      this.pending = [];
      base = 0;
      const toc = tocOf(head)!;
      const bytes = this.retarget?.size ? retargetHead(head, toc, this.retarget) : head;
      this.head = { bytes, toc: bytes === head ? toc : tocOf(bytes)! };
      this.push(bytes);
      this.out = bytes.length;
      this.intSize = toc.intSize;
    }
    this.pos = base + chunk.length;
    const slice = (from: number, to: number) => {
      const a = Math.max(from, base) - base;
      const b = Math.min(to, this.pos) - base;
      if (b > a) [this.push(chunk.subarray(a, b)), (this.out += b - a)];
    };
    for (const ev of this.events) {
      if (ev.kind === 'start') {
        if (!this.keep.has(ev.id)) continue;
        // The block's header (type byte, then the id as pg_dump writes an int: sign byte, then little-endian bytes).
        const intSize = this.intSize;
        const header = Buffer.alloc(2 + intSize);
        header[0] = ev.type;
        for (let i = 0, rest = ev.id; i < intSize; i++, rest = Math.floor(rest / 256)) header[2 + i] = rest % 256;
        this.placed.set(ev.id, this.out);
        this.push(header);
        this.out += header.length;
        this.open = { from: ev.headerEnd };
      } else if (this.open) {
        slice(this.open.from, ev.at);
        this.open = null;
      }
    }
    this.events = [];
    if (this.open) {
      slice(this.open.from, this.pos);
      this.open.from = this.pos;
    }
    this.dropped = this.pos - this.out;
  }

  private pos = 0;
  private intSize = 4;
}
