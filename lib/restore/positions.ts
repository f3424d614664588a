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
import type { Readable } from 'node:stream';
import type { Logger } from '../core/log.js';
import { ArchiveIndexer } from '../postgres/archive.js';
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
