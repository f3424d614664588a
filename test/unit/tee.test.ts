import { PassThrough, Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { teeTo } from '../../lib/backup/pipeline.js';

const chunks = (n: number, size: number) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, i % 251));

/** A sink that keeps what it is given, slowly (every write waits a tick), optionally failing after `failAfter` chunks. */
function sink(o: { failAfter?: number } = {}) {
  const got: Buffer[] = [];
  let ended = false;
  const w = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _e, cb) {
      if (o.failAfter !== undefined && got.length >= o.failAfter) return cb(new Error('upload failed'));
      got.push(chunk);
      setImmediate(cb);
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  w.on('error', () => undefined);
  return { w, got, ended: () => ended };
}

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('teeTo (the dump to its offsite upload too)', () => {
  it('gives the second destination every chunk, in order, and ends it', async () => {
    const data = chunks(50, 4096);
    const s = sink();
    const tee = teeTo(s.w);
    const [main] = await Promise.all([collect(tee), pipeline(Readable.from(data), tee)]);
    expect(main.equals(Buffer.concat(data))).toBe(true);
    await finished(s.w);
    expect(Buffer.concat(s.got).equals(Buffer.concat(data))).toBe(true);
    expect(s.ended()).toBe(true);
  });

  it('a destination that fails midway is left behind: the main stream still gets everything', async () => {
    const data = chunks(50, 4096);
    const s = sink({ failAfter: 5 });
    const tee = teeTo(s.w);
    const [main] = await Promise.all([collect(tee), pipeline(Readable.from(data), tee)]);
    expect(main.equals(Buffer.concat(data))).toBe(true);
    expect(s.got.length).toBe(5);
    expect(s.ended()).toBe(false);
  });

  it('a destination destroyed before the first chunk (the upload never started) is never written', async () => {
    const s = sink();
    s.w.destroy();
    const tee = teeTo(s.w);
    const [main] = await Promise.all([collect(tee), pipeline(Readable.from(chunks(3, 10)), tee)]);
    expect(main.length).toBe(30);
    expect(s.got.length).toBe(0);
  });

  it('the dump failing destroys the destination with its error, never ends it', async () => {
    const s = sink();
    const dest = new PassThrough();
    dest.resume();
    const seen = new Promise<Error>((r) => dest.once('error', r));
    const tee = teeTo(dest);
    const src = new Readable({ read() {} });
    const done = pipeline(src, tee, s.w);
    src.push(Buffer.alloc(100));
    src.destroy(new Error('pg_dump died'));
    await expect(done).rejects.toThrow('pg_dump died');
    expect((await seen).message).toBe('pg_dump died');
    expect(dest.writableEnded).toBe(false);
  });
});
