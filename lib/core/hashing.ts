/**
 * A pass-through that hashes (sha256) and counts what flows through it. Chunks pass as they are:
 * never copied, never held. With `gate`, the stream ends only once `gate` resolves, and a rejection
 * is the stream's error: a reader (a store's save) then never takes a stream whose producer (pg_dump,
 * zstd, pg_basebackup) failed for a whole one. digest() is read once, after the end.
 * `highWaterMark` (bytes) is how much it takes in before a writer must wait (Node's default: 16 KiB).
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export interface HashingTap {
  stream: Transform;
  bytes(): number;
  digest(): string;
}

export function hashingTap(gate?: Promise<unknown>, highWaterMark?: number): HashingTap {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    writableHighWaterMark: highWaterMark,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      if (!gate) return cb();
      gate.then(
        () => cb(),
        (e: unknown) => cb(e as Error),
      );
    },
  });
  return { stream, bytes: () => bytes, digest: () => hash.digest('hex') };
}
