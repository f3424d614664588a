/**
 * S3Store against a real S3 API: the project's own local Ceph RADOS Gateway
 * (scripts/sandbox/objectstore.ts), started fresh for this file on its own dir and port. First the
 * conformance suite every Store passes, then what is S3's own: multipart uploads aborted, object
 * lock, credentials, unreachable endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { S3Store, type S3StoreOptions } from '../../lib/storage/s3.js';
import { NotFoundError } from '../../lib/storage/store.js';
import { InterruptedError } from '../../lib/core/errors.js';
import { startObjectStore, type RunningObjectStore } from '../../scripts/sandbox/objectstore.js';
import { describeStore } from '../storage/conformance.js';

const PORT = 7491;
const MiB = 1024 * 1024;
let gw: RunningObjectStore;
let dir: string;
let n = 0;

function store(o: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store({ url: 's3://pgfleet-test/base/prefix', endpoint: gw.endpoint, region: gw.region, pathStyle: true, env: gw.env(), ...o });
}

async function bucket(client: S3Client, lock = false): Promise<string> {
  const name = `pgfleet-t${++n}-${process.pid}`;
  await client.send(new CreateBucketCommand({ Bucket: name, ...(lock ? { ObjectLockEnabledForBucket: true } : {}) }));
  return name;
}

/** `size` bytes of deterministic content, in 1 MiB chunks; `fail` errors the stream after that many bytes. */
function source(size: number, o: { fail?: number; onChunk?: (sent: number) => void } = {}): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (o.fail !== undefined && sent >= o.fail) return this.destroy(new Error('pg_dump died (test)'));
      if (sent >= size) return this.push(null);
      const len = Math.min(MiB, size - sent);
      const chunk = Buffer.alloc(len, sent % 251);
      sent += len;
      o.onChunk?.(sent);
      this.push(chunk);
    },
  });
}

const sha = async (r: Readable) => {
  const h = createHash('sha256');
  for await (const c of r) h.update(c);
  return h.digest('hex');
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-s3-'));
  // A fixed directory per port: a run killed before its afterAll leaves daemons the next start stops.
  gw = await startObjectStore(path.join(os.tmpdir(), `pgfleet-s3-test-${PORT}`), PORT);
  await store().client.send(new CreateBucketCommand({ Bucket: 'pgfleet-test' }));
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// 5 MiB parts (the least S3 allows), so that the suite's slow and failing saves go multipart.
describeStore('S3Store on the RADOS Gateway', async () => {
  const s = store({ url: 's3://pgfleet-test/conformance', partSize: 5 * MiB });
  return {
    store: s,
    // What a SIGKILL mid-save leaves: an unfinished multipart upload with a part in it.
    crash: async (key, data) => {
      const Key = `${s.prefix}/${key}`;
      const { UploadId } = await s.client.send(new CreateMultipartUploadCommand({ Bucket: s.bucket, Key }));
      await s.client.send(new UploadPartCommand({ Bucket: s.bucket, Key, UploadId, PartNumber: 1, Body: data }));
    },
  };
});

describe('S3Store on the RADOS Gateway', () => {
  it('saves, loads, reads, stats, lists and removes under its prefix', async () => {
    const s = store();
    expect(s.location).toBe('s3://pgfleet-test/base/prefix');
    await s.save('p/e/database/b.json', '{"b":1}');
    await s.save('p/e/database/a.json', Buffer.from('{"a":1}'));
    await s.save('p/other/x', Readable.from([Buffer.from('x')]));
    expect((await s.read('p/e/database/a.json')).toString()).toBe('{"a":1}');
    expect(await sha(await s.load('p/e/database/b.json'))).toBe(createHash('sha256').update('{"b":1}').digest('hex'));
    expect(await s.stat('p/e/database/a.json')).toMatchObject({ key: 'p/e/database/a.json', size: 7 });
    expect(await s.stat('p/e/database/none')).toBeNull();
    expect((await s.list('p/e/')).map((o) => o.key)).toEqual(['p/e/database/a.json', 'p/e/database/b.json']);
    expect((await s.list('')).map((o) => o.key)).toEqual(['p/e/database/a.json', 'p/e/database/b.json', 'p/other/x']);
    // Keys really live under the URL's prefix.
    await expect(store({ url: 's3://pgfleet-test/base' }).read('prefix/p/other/x')).resolves.toEqual(Buffer.from('x'));
    await expect(s.read('p/e/none')).rejects.toBeInstanceOf(NotFoundError);
    await expect(s.load('p/e/none')).rejects.toBeInstanceOf(NotFoundError);
    await s.remove('p/e/database/a.json');
    await s.remove('p/e/database/a.json');
    expect((await s.list('p/e/')).map((o) => o.key)).toEqual(['p/e/database/b.json']);
  });

  it('streams a large object in parts, whole and byte-identical', async () => {
    const s = store({ partSize: 5 * MiB });
    const r = await s.save('big/dump', source(23 * MiB + 17));
    expect(r.size).toBe(23 * MiB + 17);
    expect(await sha(await s.load('big/dump'))).toBe(await sha(source(23 * MiB + 17)));
    expect((await s.stat('big/dump'))?.size).toBe(23 * MiB + 17);
  });

  it('memory stays flat while a large stream is uploaded and downloaded (default part size)', async () => {
    const s = store();
    const size = 256 * MiB;
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      expect((await s.save('flat/dump', source(size))).size).toBe(size);
      let n = 0;
      for await (const c of await s.load('flat/dump')) n += c.length;
      expect(n).toBe(size);
    } finally {
      clearInterval(timer);
    }
    // Two 8 MiB parts in flight, the one being filled, their copies and garbage not yet
    // collected (77-90 MiB measured); the whole object would be 256 MiB.
    expect(peak - before).toBeLessThan(128 * MiB);
    await s.remove('flat/dump');
  });

  it('a source that fails mid-upload aborts the multipart upload: no object, no upload left', async () => {
    const s = store({ partSize: 5 * MiB });
    const err = await s.save('fail/dump', source(40 * MiB, { fail: 17 * MiB })).catch((e) => e);
    expect(String(err.message)).toMatch(/s3:\/\/pgfleet-test\/base\/prefix: save fail\/dump: the source failed, upload aborted: pg_dump died/);
    expect(await s.stat('fail/dump')).toBeNull();
    expect(await s.abandoned('fail/', new Date(Date.now() + 60_000))).toEqual([]);
    const raw = await s.client.send(new ListMultipartUploadsCommand({ Bucket: 'pgfleet-test' }));
    expect(raw.Uploads ?? []).toEqual([]);
  });

  it('an aborted signal mid-upload aborts the multipart upload and rejects as interrupted', async () => {
    const s = store({ partSize: 5 * MiB });
    const ac = new AbortController();
    const err = await s.save('abort/dump', source(60 * MiB, { onChunk: (sent) => sent === 12 * MiB && ac.abort('SIGTERM') }), { signal: ac.signal }).catch((e) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(await s.stat('abort/dump')).toBeNull();
    expect(await s.abandoned('', new Date(Date.now() + 60_000))).toEqual([]);
    await expect(s.save('abort/again', 'x', { signal: ac.signal })).rejects.toBeInstanceOf(InterruptedError);
    expect(await s.stat('abort/again')).toBeNull();
  });

  it('finds what an interrupted save left (an unfinished upload), never lists it, and removes it idempotently', async () => {
    const s = store();
    const Key = 'base/prefix/crash/dump';
    const { UploadId } = await s.client.send(new CreateMultipartUploadCommand({ Bucket: 'pgfleet-test', Key }));
    await s.client.send(new UploadPartCommand({ Bucket: 'pgfleet-test', Key, UploadId, PartNumber: 1, Body: Buffer.alloc(5 * MiB, 1) }));
    expect(await s.list('crash/')).toEqual([]);
    expect(await s.stat('crash/dump')).toBeNull();
    expect(await s.abandoned('crash/', new Date(Date.now() - 3600_000))).toEqual([]);
    const found = await s.abandoned('crash/', new Date(Date.now() + 60_000));
    expect(found).toEqual([{ key: 'crash/dump', handle: UploadId, startedAt: expect.any(Date) }]);
    expect(await s.abandoned('other/', new Date(Date.now() + 60_000))).toEqual([]);
    await s.removeAbandoned(found[0]);
    await s.removeAbandoned(found[0]);
    expect(await s.abandoned('crash/', new Date(Date.now() + 60_000))).toEqual([]);
  });

  it('names bucket and key but never a credential when the service refuses', async () => {
    const env = { AWS_ACCESS_KEY_ID: gw.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong-secret-value-1234' };
    const bad = await store({ env }).save('k/x', 'x').catch((e) => e);
    expect(bad.message).toMatch(/^s3:\/\/pgfleet-test\/base\/prefix: save k\/x: the service refused the credentials/);
    expect(bad.message).not.toContain('wrong-secret-value-1234');
    expect(bad.message).not.toContain(gw.accessKeyId);
    const missing = await store({ url: 's3://no-such-bucket-here' }).list('').catch((e) => e);
    expect(missing.message).toMatch(/^s3:\/\/no-such-bucket-here: list \(all\): no such bucket no-such-bucket-here/);
    const none = await store({ env: { AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), AWS_CONFIG_FILE: path.join(dir, 'none') } }).stat('k').catch((e) => e);
    expect(none.message).toMatch(/no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    const noProfile = await store({ env: { AWS_PROFILE: 'nope', AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), AWS_CONFIG_FILE: path.join(dir, 'none') } }).stat('k').catch((e) => e);
    expect(noProfile.message).toMatch(/no S3 credentials from profile "nope" \(AWS_PROFILE\)/);
    expect(() => store({ env: { AWS_ACCESS_KEY_ID: 'x' } })).toThrow(/must be set together/);
  });

  it('writes with the storage class configured, and a class the service lacks is a clear error', async () => {
    await store({ storageClass: 'STANDARD' }).save('class/std', 'x');
    const h = await store().client.send(new HeadObjectCommand({ Bucket: 'pgfleet-test', Key: 'base/prefix/class/std' }));
    expect(h.StorageClass ?? 'STANDARD').toBe('STANDARD');
    const err = await store({ storageClass: 'NO_SUCH_CLASS' }).save('class/bad', 'x').catch((e) => e);
    expect(err.message).toMatch(/^s3:\/\/pgfleet-test\/base\/prefix: save class\/bad: the service refused the request \(.*\); is storage class NO_SUCH_CLASS one it offers\?$/);
    expect(await store().stat('class/bad')).toBeNull();
  });

  it('takes credentials from a profile of the shared credentials file', async () => {
    const file = path.join(dir, 'credentials');
    writeFileSync(file, `[offsite]\naws_access_key_id = ${gw.accessKeyId}\naws_secret_access_key = ${gw.secretAccessKey}\n`, { mode: 0o600 });
    const s = store({ env: { AWS_PROFILE: 'offsite', AWS_SHARED_CREDENTIALS_FILE: file, AWS_CONFIG_FILE: path.join(dir, 'none') } });
    await s.save('profile/x', 'via profile');
    expect((await s.read('profile/x')).toString()).toBe('via profile');
  });

  it('fails within bounded time when the endpoint refuses connections or never answers', async () => {
    const closed = new S3Store({ url: 's3://pgfleet-test/p', endpoint: 'http://127.0.0.1:9', pathStyle: true, env: gw.env(), maxAttempts: 2 });
    let t = Date.now();
    const e1 = await closed.save('a/b', source(3 * MiB)).catch((e) => e);
    expect(e1.message).toMatch(/^s3:\/\/pgfleet-test\/p: save a\/b: cannot reach http:\/\/127\.0\.0\.1:9/);
    expect(Date.now() - t).toBeLessThan(10_000);
    // A server that accepts and then says nothing: the idle timeout ends each attempt.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const mute = new S3Store({ url: 's3://pgfleet-test/p', endpoint: `http://127.0.0.1:${port}`, pathStyle: true, env: gw.env(), maxAttempts: 2, idleTimeoutMs: 1000 });
      t = Date.now();
      const e2 = await mute.list('a/').catch((e) => e);
      expect(e2.message).toMatch(/^s3:\/\/pgfleet-test\/p: list a\/: no answer from/);
      expect(Date.now() - t).toBeLessThan(10_000);
      t = Date.now();
      const e3 = await mute.save('a/b', source(2 * MiB)).catch((e) => e);
      expect(e3.message).toMatch(/save a\/b: no answer from/);
      expect(Date.now() - t).toBeLessThan(10_000);
    } finally {
      silent.close();
    }
  });

  it('the endpoint killed mid-upload: save fails in bounded time, nothing complete; the unfinished upload is found and removed once it is back', async () => {
    const s = store({ url: 's3://pgfleet-test/killed', partSize: 5 * MiB, maxAttempts: 2, idleTimeoutMs: 2000, connectTimeoutMs: 1000 });
    let killing: Promise<void> | undefined;
    const t = Date.now();
    const err = await s.save('p/e/database/db.dump', source(80 * MiB, { onChunk: (sent) => sent === 16 * MiB && (killing = gw.killGateway()) })).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^s3:\/\/pgfleet-test\/killed: save p\/e\/database\/db\.dump: cannot reach http:\/\/127\.0\.0\.1:7491/);
    expect(Date.now() - t).toBeLessThan(30_000);
    await killing;
    await gw.startGateway();
    expect(await s.stat('p/e/database/db.dump')).toBeNull();
    expect(await s.list('')).toEqual([]);
    // The abort could not reach a dead endpoint: what it left is an unfinished upload, never an object.
    const left = await s.abandoned('', new Date(Date.now() + 60_000));
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((a) => a.key === 'p/e/database/db.dump')).toBe(true);
    for (const a of left) await s.removeAbandoned(a);
    expect(await s.abandoned('', new Date(Date.now() + 60_000))).toEqual([]);
    await s.save('p/e/database/db.dump', 'after');
    expect((await s.read('p/e/database/db.dump')).toString()).toBe('after');
  });

  it('with object lock, every object written carries its retention and its delete is refused', async () => {
    const b = await bucket(store().client, true);
    const s = store({ url: `s3://${b}/locked`, objectLock: { mode: 'COMPLIANCE', days: 1 }, partSize: 5 * MiB });
    const before = Date.now();
    await s.save('p/e/database/small.json', '{}');
    await s.save('p/e/database/big.dump', source(11 * MiB));
    for (const k of ['small.json', 'big.dump']) {
      const h = await s.client.send(new HeadObjectCommand({ Bucket: b, Key: `locked/p/e/database/${k}` }));
      expect(h.ObjectLockMode).toBe('COMPLIANCE');
      const until = h.ObjectLockRetainUntilDate!.getTime();
      expect(until).toBeGreaterThan(before + 86_400_000 - 60_000);
      expect(until).toBeLessThan(Date.now() + 86_400_000 + 60_000);
      // Deleting the locked version itself is refused by the service.
      const raw = await s.client.send(new DeleteObjectCommand({ Bucket: b, Key: `locked/p/e/database/${k}`, VersionId: h.VersionId })).catch((e) => e);
      expect(raw.name).toBe('AccessDenied');
    }
    const err = await s.remove('p/e/database/small.json').catch((e) => e);
    expect(err.message).toMatch(new RegExp(`^s3://${b}/locked: remove p/e/database/small.json: access denied .*object lock`));
    expect((await s.list('p/')).map((o) => o.key)).toEqual(['p/e/database/big.dump', 'p/e/database/small.json']);
    expect((await s.read('p/e/database/small.json')).toString()).toBe('{}');
  });
});
