/**
 * Reading a backup's copy back from the offsite bucket: the stored object streamed, its bytes'
 * sha256 and size checked against its own metadata, decrypted with age when it is encrypted, and
 * the decrypted archive's sha256 and size taken on the way (the caller checks those against the
 * plaintext's, see plaintextView()). For restore --from-offsite and verify-backups --offsite.
 *
 * Promises:
 * - Streamed end to end (S3 → age -d → the consumer): memory stays flat, and no plaintext ever
 *   lands in a file on this host.
 * - The stream never emits 'error' (a pipe would leave it unheard): on any failure it ends early,
 *   and digest() rejects with that failure. A damaged copy (stored sha256 or size, or age unable
 *   to authenticate it) is a VerificationError (exit 4); a missing or wrong identity an AgeError,
 *   told before any byte is read by checkIdentity().
 * - The identity is only ever a file path (age -i FILE; age-keygen -y FILE); its content never
 *   enters argv, a log or an error.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { CommandError, InterruptedError, PgfleetError, VerificationError, type TargetRef } from '../core/errors.js';
import type { BackupMetadata } from '../formats/metadata.js';
import { Age, AgeError, identityFileFrom } from '../process/age.js';
import type { Runner } from '../process/runner.js';
import type { StoredBackup } from '../storage/repository.js';
import type { Store } from '../storage/store.js';

/** One read of a dump's bytes: a stream, and once it has been read, the sha256 and size of what it gave. */
export interface HashedRead {
  stream: Readable;
  /** After the stream ended: what passed through it, or the failure that ended it early. */
  digest(): Promise<{ sha256: string; bytes: number }>;
  /** The failure that ended the read early, if one did yet (a consumer that failed asks: its input may be why). */
  failed(): unknown;
  /** Stop reading (idempotent). */
  destroy(): void;
}

/** A backup in the bucket, ready to be read as its plaintext archive (lib/restore/dump.ts reads it). */
export interface RemoteDump {
  /** Where it is, for messages: `<bucket URL>/<key>`. */
  path: string;
  /** The copy's own metadata (the stored bytes' sha256/size, encryption). */
  stored: BackupMetadata;
  /** The same backup as its plaintext archive: sha256/size/file of the decrypted bytes. */
  meta: BackupMetadata;
  /** A fresh read of the stored object, decrypted. */
  open(signal?: AbortSignal): HashedRead;
}

/** The metadata of the decrypted archive (what a local backup's metadata would say). */
export function plaintextView(m: BackupMetadata): BackupMetadata {
  if (!m.encryption) return m;
  return { ...m, file: m.file.replace(/\.age$/, ''), sha256: m.encryption.plaintext_sha256, size_bytes: m.encryption.plaintext_size_bytes, encryption: null };
}

/**
 * The identity file (PGFLEET_AGE_IDENTITY_FILE) that reads `meta`'s copy, checked before anything
 * is read: it must exist and hold an identity of one of the copy's recipients (age-keygen -y names
 * its public keys). null for an unencrypted copy. Throws AgeError: no-identity (exit 2) or wrong-identity.
 */
export async function checkIdentity(runner: Runner, meta: Pick<BackupMetadata, 'id' | 'encryption'>, env: NodeJS.ProcessEnv, target?: TargetRef): Promise<string | null> {
  if (!meta.encryption) return null;
  const file = identityFileFrom(env);
  let mine: string[];
  try {
    const r = await runner.run(['age-keygen', '-y', file], { what: 'age-keygen -y', target });
    mine = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('age1'));
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    throw new AgeError(`age identity ${file} (${'PGFLEET_AGE_IDENTITY_FILE'}): not a readable age identity file`, 'no-identity', target);
  }
  if (!mine.some((k) => meta.encryption!.recipients.includes(k)))
    throw new AgeError(
      `age identity ${file}: it is not one backup ${meta.id} was encrypted to (the identity's public key ${mine.join(', ') || '(none)'}; the backup's recipients ${meta.encryption.recipients.join(', ')})`,
      'wrong-identity',
      target,
    );
  return file;
}

/** A Transform that hashes what passes through it. */
function tap() {
  const hash = createHash('sha256');
  let bytes = 0;
  let sha256: string | undefined;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  return { t, result: () => ({ sha256: (sha256 ??= hash.digest('hex')), bytes }) };
}

/**
 * The bucket's copy of `b` (a backup of `new Repository(store)`) as a RemoteDump. `identityFile`:
 * from checkIdentity(), required when the copy is encrypted.
 */
export function remoteDump(runner: Runner, store: Store, b: StoredBackup, identityFile: string | null, target?: TargetRef): RemoteDump {
  const stored = b.meta;
  const where = `${store.location}/${b.key}`;
  if (stored.encryption && !identityFile) throw new AgeError(`${where} is encrypted: an identity is needed to read it`, 'no-identity', target);
  return { path: where, stored, meta: plaintextView(stored), open: (signal) => openRemote(runner, store, b.key, where, stored, identityFile, signal, target) };
}

/**
 * A fresh read of the object `key` of `store`, decrypted (remoteDump's, and a PITR copy's:
 * lib/pitr/offsite.ts): `stored` says the stored bytes' size and sha256 and how they are encrypted.
 */
export function openRemote(runner: Runner, store: Store, key: string, where: string, stored: Pick<BackupMetadata, 'size_bytes' | 'sha256'> & { encryption?: BackupMetadata['encryption'] }, identityFile: string | null, signal: AbortSignal | undefined, target?: TargetRef): HashedRead {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const raw = tap();
  const plain = tap();
  let failure: unknown;
  let finished = false;
  let source: Readable | undefined;
  let resolveDone: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const onAbort = () => stop(new InterruptedError(String(signal?.reason ?? 'SIGINT')));
  const stop = (e: unknown) => {
    if (!finished) failure ??= e;
    finished = true;
    signal?.removeEventListener('abort', onAbort);
    source?.destroy();
    raw.t.destroy();
    if (!out.writableEnded) out.end();
    resolveDone();
  };
  const damaged = (why: string) => new VerificationError(`${where}: ${why}: the copy in the bucket is damaged; refusing to use it`, target);
  (async () => {
    source = await store.load(key, { signal });
    source.once('error', stop);
    source.pipe(raw.t);
    let decrypted: Readable = raw.t;
    if (stored.encryption) decrypted = await new Age(runner).decrypt(raw.t, identityFile!, { signal, target });
    decrypted.once('error', (e) => {
      if (e instanceof AgeError && (e.reason === 'damaged' || e.reason === 'not-encrypted' || e.reason === 'wrong-identity')) stop(damaged(e.message));
      else stop(e);
    });
    decrypted.pipe(plain.t).pipe(out, { end: false });
    plain.t.once('end', () => {
      if (failure) return;
      const s = raw.result();
      if (s.bytes !== stored.size_bytes) return stop(damaged(`read ${s.bytes} bytes of ${stored.size_bytes}`));
      if (s.sha256 !== stored.sha256) return stop(damaged(`sha256 of the stored object is ${s.sha256} but its metadata says ${stored.sha256}`));
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      out.end();
      resolveDone();
    });
  })().catch(stop);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return {
    stream: out,
    digest: async () => {
      await done;
      if (failure) throw failure instanceof PgfleetError || failure instanceof Error ? failure : new Error(String(failure));
      return plain.result();
    },
    failed: () => failure,
    destroy: () => stop(new InterruptedError('closed')),
  };
}

/** Whether a restore's source is a copy in the bucket. */
export function isRemoteDump(src: object): src is RemoteDump {
  return 'open' in src && 'stored' in src;
}
