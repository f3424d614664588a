/**
 * The sha256 and size of a stored object, read at disk speed: on the local store straight from its
 * file with large reads into one reused buffer (no stream machinery per chunk); on another store
 * through its load() stream. Read-only; never changes the object. Throws NotFoundError for a
 * missing key and InterruptedError-free AbortErrors when `signal` aborts (the caller maps them).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { NotFoundError, type Store } from './store.js';

/** Bytes per read: large enough that the per-call cost vanishes beside hashing. */
const CHUNK = 8 * 1024 * 1024;

export async function hashObject(store: Store, key: string, o: { signal?: AbortSignal } = {}): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  if (store.pathOf) {
    const fh = await open(store.pathOf(key), 'r').catch((e: NodeJS.ErrnoException) => Promise.reject(e.code === 'ENOENT' ? new NotFoundError(key, store.location) : e));
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        o.signal?.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
        if (!bytesRead) break;
        hash.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
        size += bytesRead;
      }
    } finally {
      await fh.close();
    }
  } else {
    for await (const chunk of await store.load(key, { signal: o.signal })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  }
  return { sha256: hash.digest('hex'), size };
}
