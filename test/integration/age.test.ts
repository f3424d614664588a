/**
 * lib/process/age.ts with the real `age` CLI: what it encrypts, stock `age -d -i key` reads, and
 * nothing reads without the identity; bad recipients, wrong or missing identities and damaged
 * data are clear errors; a large stream goes through with flat memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Age, AgeError, identityFileFrom } from '../../lib/process/age.js';
import { Runner } from '../../lib/process/runner.js';

const MiB = 1024 * 1024;
const age = new Age(new Runner());
let dir: string;
let key: string;
let recipient: string;
let otherKey: string;
let otherRecipient: string;

function keypair(name: string): [string, string] {
  const file = path.join(dir, name);
  execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
  return [file, execFileSync('age-keygen', ['-y', file]).toString().trim()];
}

/** `size` bytes of varied content in 1 MiB chunks; `fail` errors the stream after that many bytes. */
function source(size: number, fail?: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (fail !== undefined && sent >= fail) return this.destroy(new Error('the dump died (test)'));
      if (sent >= size) return this.push(null);
      const len = Math.min(MiB, size - sent);
      const chunk = Buffer.alloc(len);
      for (let i = 0; i < len; i += 4096) chunk.writeUInt32LE((sent + i) >>> 0, i);
      sent += len;
      this.push(chunk);
    },
  });
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c);
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-age-'));
  [key, recipient] = keypair('key.txt');
  [otherKey, otherRecipient] = keypair('other.txt');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('age encryption through the CLI', () => {
  it('what it encrypts to a recipient, stock `age -d -i key` reads; without the identity nothing does', async () => {
    const plain = await collect(source(3 * MiB + 5));
    const enc = await collect(age.encrypt(Readable.from([plain]), [recipient]));
    expect(enc.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(enc.includes(plain.subarray(0, 4096))).toBe(false);
    const file = path.join(dir, 'dump.age');
    writeFileSync(file, enc);
    expect(sha(execFileSync('age', ['-d', '-i', key, file], { maxBuffer: 64 * MiB }))).toBe(sha(plain));
    const wrong = spawnSync('age', ['-d', '-i', otherKey, file]);
    expect(wrong.status).toBe(1);
    expect(wrong.stdout.length).toBe(0);
    expect(spawnSync('age', ['-d', file]).status).not.toBe(0);
    // And our own decrypt agrees.
    expect(sha(await collect(await age.decrypt(Readable.from([enc]), key)))).toBe(sha(plain));
  });

  it('encrypts to every recipient given', async () => {
    const enc = await collect(age.encrypt(Readable.from(['to both']), [recipient, otherRecipient]));
    for (const k of [key, otherKey]) expect((await collect(await age.decrypt(Readable.from([enc]), k))).toString()).toBe('to both');
  });

  it('a malformed recipient is a clear error before anything runs', () => {
    const bad = (r: string[]) => {
      try {
        age.encrypt(Readable.from(['x']), r);
      } catch (e) {
        return e as AgeError;
      }
      throw new Error('no error');
    };
    const short = bad([recipient, 'age1abc']);
    expect(short).toBeInstanceOf(AgeError);
    expect(short.reason).toBe('bad-recipient');
    expect(short.message).toMatch(/"age1abc": expected an age public key: "age1" followed by 58 characters/);
    const typo = recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q');
    expect(bad([typo]).message).toMatch(/checksum does not match/);
    expect(bad([]).message).toMatch(/no age recipients/);
  });

  it('a wrong identity, a missing one, damaged data and plaintext are clear errors, never a clean end', async () => {
    // 8 MiB: age exits on a wrong identity while its input is still being written (EPIPE), and must still say why.
    const enc = await collect(age.encrypt(Readable.from([Buffer.alloc(8 * MiB, 7)]), [recipient]));
    const wrong = await collect(await age.decrypt(Readable.from([enc]), otherKey)).catch((e) => e);
    expect(wrong).toBeInstanceOf(AgeError);
    expect(wrong.reason).toBe('wrong-identity');
    expect(wrong.message).toMatch(/age decryption: the identity is not one this backup was encrypted to/);
    const secret = readFileSync(otherKey, 'utf8').match(/AGE-SECRET-KEY-\S+/)![0];
    expect(wrong.message).not.toContain(secret);

    const missing = await age.decrypt(Readable.from([enc]), path.join(dir, 'nope')).catch((e) => e);
    expect(missing).toMatchObject({ reason: 'no-identity', exitCode: 2 });
    expect(() => identityFileFrom({})).toThrow(/PGFLEET_AGE_IDENTITY_FILE is not set/);

    const flipped = Buffer.from(enc);
    flipped[flipped.length - 100] ^= 1;
    const damaged = await collect(await age.decrypt(Readable.from([flipped]), key)).catch((e) => e);
    expect(damaged).toMatchObject({ reason: 'damaged' });
    const cut = await collect(await age.decrypt(Readable.from([enc.subarray(0, enc.length - 1000)]), key)).catch((e) => e);
    expect(cut).toMatchObject({ reason: 'damaged' });
    const plain = await collect(await age.decrypt(Readable.from(['not encrypted\n']), key)).catch((e) => e);
    expect(plain).toMatchObject({ reason: 'not-encrypted' });
  });

  it('an input that fails mid-stream makes the output fail, not end', async () => {
    const err = await collect(age.encrypt(source(20 * MiB, 8 * MiB), [recipient])).catch((e) => e);
    expect(String(err.message)).toMatch(/age encryption: its input failed: the dump died/);
  });

  it('an aborted signal stops it as an interruption', async () => {
    const ac = new AbortController();
    const out = age.encrypt(source(400 * MiB), [recipient], { signal: ac.signal });
    setTimeout(() => ac.abort('SIGTERM'), 200);
    const err = await collect(out).catch((e) => e);
    expect(err.exitCode).toBe(130);
  });

  it('streams a large input through encrypt and decrypt with flat memory', async () => {
    const size = 512 * MiB;
    const expected = createHash('sha256');
    for await (const c of source(size)) expected.update(c);
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    try {
      const h = createHash('sha256');
      let n = 0;
      for await (const c of await age.decrypt(age.encrypt(source(size), [recipient]), key)) {
        h.update(c);
        n += c.length;
      }
      expect(n).toBe(size);
      expect(h.digest('hex')).toBe(expected.digest('hex'));
    } finally {
      clearInterval(timer);
    }
    expect(peak - before).toBeLessThan(96 * MiB);
  });
});
