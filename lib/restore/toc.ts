/**
 * A dump's table of contents, read from its first bytes: the archive's own list of objects and
 * their dependencies (lib/postgres/archive.ts), for choosing what a table restore brings back and
 * for `show`. Reads only the head: a compressed dump is decompressed until the TOC ends, then the
 * decompression is stopped.
 *
 * Promises: changes nothing; a file that is not a custom-format archive, or that ends inside its
 * TOC, is an error naming the file. The file's checksum is NOT checked here (see lib/restore/dump.ts).
 */
import { promises as fs } from 'node:fs';
import { PgfleetError, EXIT, type TargetRef } from '../core/errors.js';
import { tocOf, type ArchiveToc } from '../postgres/archive.js';
import type { Context } from '../runtime/context.js';
import type { DumpFile } from './dump.js';

/** Largest head read before giving up (pg_dump's TOC of a very large schema is a few MB). */
const MAX_HEAD = 256 * 1024 * 1024;

export async function readToc(ctx: Context, d: Pick<DumpFile, 'path' | 'compressed'>, o: { signal?: AbortSignal; target?: TargetRef } = {}): Promise<ArchiveToc> {
  const chunks: Buffer[] = [];
  let len = 0;
  let nextTry = 64 * 1024;
  const attempt = (final: boolean): ArchiveToc | null => {
    if (len < nextTry && !final) return null;
    nextTry = len * 2;
    const buf = Buffer.concat(chunks, len);
    chunks.splice(0, chunks.length, buf);
    try {
      return tocOf(buf);
    } catch (e) {
      throw new PgfleetError(`${d.path}: ${(e as Error).message}`, EXIT.FAILED, o.target);
    }
  };
  const fail = () => new PgfleetError(`${d.path}: the archive ends inside its table of contents (or it is larger than ${MAX_HEAD} bytes)`, EXIT.FAILED, o.target);
  if (!d.compressed) {
    const fh = await fs.open(d.path, 'r');
    try {
      for (;;) {
        const b = Buffer.allocUnsafe(1 << 20);
        const { bytesRead } = await fh.read(b, 0, b.length, null);
        if (bytesRead) [chunks.push(b.subarray(0, bytesRead)), (len += bytesRead)];
        const toc = attempt(bytesRead === 0);
        if (toc) return toc;
        if (bytesRead === 0 || len > MAX_HEAD) throw fail();
      }
    } finally {
      await fh.close();
    }
  }
  const z = ctx.runner.spawn(['zstd', '-dc', '-q', '--', d.path], { signal: o.signal, what: 'zstd -d (reading the table of contents)', role: 'decompress', target: o.target });
  let found: ArchiveToc | null = null;
  try {
    for await (const chunk of z.stdout as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      len += chunk.length;
      found = attempt(false);
      if (found || len > MAX_HEAD) break;
    }
    found ??= attempt(true);
  } finally {
    if (found || len > MAX_HEAD) z.kill();
    z.stdout.destroy();
  }
  // Stopped on purpose once the TOC was read; otherwise zstd's own failure says what is wrong.
  await z.done.catch((e) => {
    if (!found) throw e;
  });
  if (!found) throw fail();
  return found;
}
