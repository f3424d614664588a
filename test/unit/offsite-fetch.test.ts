/**
 * Reading a copy back (lib/offsite/fetch.ts) from a Store, with the real age CLI: the plaintext
 * comes out with its sha256; a flipped byte (encrypted or not), a cut copy or a wrong identity
 * ends the stream early (never an 'error' event) and digest() says why; the identity is checked
 * against the copy's recipients before anything is read. The Store is the local one (the reader
 * takes any Store; the gateway's is tested in test/integration/offsite-read.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { VerificationError } from '../../lib/core/errors.js';
import type { BackupMetadata } from '../../lib/formats/metadata.js';
import { checkIdentity, plaintextView, remoteDump } from '../../lib/offsite/fetch.js';
import { Age, AgeError } from '../../lib/process/age.js';
import { Runner } from '../../lib/process/runner.js';
import { LocalStore } from '../../lib/storage/local.js';
import type { StoredBackup } from '../../lib/storage/repository.js';

const runner = new Runner();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let dir: string;
let store: LocalStore;
let identity: string;
let recipient: string;
const plain = randomBytes(300_000); // several age chunks (64 KiB each)

function meta(over: Partial<BackupMetadata>): BackupMetadata {
  return {
    format_version: 1, id: 'db_20250106_020000Z', project: 'acme', environment: 'production', database: 'acme_production', type: 'manual', release: null,
    created_at: '2025-01-06T02:00:00.000Z', started_at: '2025-01-06T02:00:00.000Z', finished_at: '2025-01-06T02:00:01.000Z', duration_ms: 1000,
    file: 'db_20250106_020000Z.dump.zst', size_bytes: plain.length, sha256: sha(plain), format: 'custom', compression: { algorithm: 'zstd', level: 3 },
    encryption: null, pg_dump_version: '15', server_version: '15', source: { container: null, user: null }, tables: {}, total_rows: 0, pgfleet_version: 'test', verification: null,
    ...over,
  };
}

async function readAll(r: { stream: Readable; digest(): Promise<{ sha256: string; bytes: number }> }) {
  const chunks: Buffer[] = [];
  let errored = false;
  r.stream.on('error', () => (errored = true));
  for await (const c of r.stream as AsyncIterable<Buffer>) chunks.push(c);
  expect(errored).toBe(false);
  return { out: Buffer.concat(chunks), digest: await r.digest().catch((e: unknown) => e) };
}

const backup = (key: string, m: BackupMetadata): StoredBackup => ({ meta: m, key, metaKey: `${key}.json`, path: key, metaPath: `${key}.json` });

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-fetch-'));
  store = new LocalStore(path.join(dir, 'bucket'));
  identity = path.join(dir, 'key.txt');
  await runner.run(['age-keygen', '-o', identity]);
  recipient = (await runner.run(['age-keygen', '-y', identity])).stdout.trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('reading a copy back', () => {
  it('an encrypted copy: the plaintext and its sha256, the stored bytes checked; a flipped byte anywhere is damage (VerificationError)', async () => {
    const enc = Buffer.concat(await new Age(runner).encrypt(Readable.from([plain]), [recipient]).toArray());
    const m = meta({ file: 'db_20250106_020000Z.dump.zst.age', size_bytes: enc.length, sha256: sha(enc), encryption: { algorithm: 'age', recipients: [recipient], plaintext_sha256: sha(plain), plaintext_size_bytes: plain.length } });
    expect(plaintextView(m)).toMatchObject({ file: 'db_20250106_020000Z.dump.zst', sha256: sha(plain), size_bytes: plain.length, encryption: null });
    const key = 'acme/production/database/db_20250106_020000Z.dump.zst.age';
    await store.save(key, enc);
    const id = await checkIdentity(runner, m, { PGFLEET_AGE_IDENTITY_FILE: identity });
    const good = await readAll(remoteDump(runner, store, backup(key, m), id).open());
    expect(good.out.equals(plain)).toBe(true);
    expect(good.digest).toEqual({ sha256: sha(plain), bytes: plain.length });
    // The header, a recipient stanza, the payload's middle, its last byte.
    for (const at of [10, 60, Math.floor(enc.length / 2), enc.length - 1]) {
      const bad = Buffer.from(enc);
      bad[at] ^= 0x20;
      await store.save(key, bad);
      const r = await readAll(remoteDump(runner, store, backup(key, m), id).open());
      expect(r.digest, `byte ${at}`).toBeInstanceOf(VerificationError);
      expect((r.digest as Error).message).toContain('the copy in the bucket is damaged');
    }
    await store.save(key, enc.subarray(0, enc.length - 100));
    expect((await readAll(remoteDump(runner, store, backup(key, m), id).open())).digest).toBeInstanceOf(VerificationError);
  });

  it('an unencrypted copy: a flipped byte is caught by the stored sha256', async () => {
    const m = meta({});
    const key = 'acme/production/database/db_20250106_020000Z.dump.zst';
    const bad = Buffer.from(plain);
    bad[1000] ^= 1;
    await store.save(key, bad);
    const r = await readAll(remoteDump(runner, store, backup(key, m), null).open());
    expect(r.digest).toBeInstanceOf(VerificationError);
    expect((r.digest as Error).message).toContain(`sha256 of the stored object is ${sha(bad)} but its metadata says ${sha(plain)}`);
    await store.save(key, plain);
    expect((await readAll(remoteDump(runner, store, backup(key, m), null).open())).digest).toEqual({ sha256: sha(plain), bytes: plain.length });
  });

  it('the identity: unset or unreadable is exit 2, one that is not a recipient exit 1 naming public keys only', async () => {
    const m = meta({ encryption: { algorithm: 'age', recipients: [recipient], plaintext_sha256: sha(plain), plaintext_size_bytes: plain.length } });
    await expect(checkIdentity(runner, m, {})).rejects.toMatchObject({ reason: 'no-identity', exitCode: 2 });
    await expect(checkIdentity(runner, m, { PGFLEET_AGE_IDENTITY_FILE: path.join(dir, 'none') })).rejects.toMatchObject({ reason: 'no-identity', exitCode: 2 });
    const other = path.join(dir, 'other.txt');
    await runner.run(['age-keygen', '-o', other]);
    const e = await checkIdentity(runner, m, { PGFLEET_AGE_IDENTITY_FILE: other }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AgeError);
    expect(e).toMatchObject({ reason: 'wrong-identity', exitCode: 1 });
    expect((e as Error).message).toContain(recipient);
    expect((e as Error).message).not.toContain('AGE-SECRET-KEY');
    expect(await checkIdentity(runner, meta({}), {})).toBeNull();
  });
});
