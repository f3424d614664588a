/**
 * The Store on S3-compatible object storage (AWS, R2, B2, Wasabi, MinIO, Ceph's gateway), with the
 * AWS SDK v3. Keys live under the URL's prefix: `s3://bucket/prefix` + `/` + key.
 *
 * Beyond store.ts's promises:
 * - save() streams a multipart upload (16 MiB parts, two in flight: memory stays flat); S3 makes
 *   the object appear only when the upload completes. A source error or an aborted signal aborts
 *   the multipart upload before save() rejects; if even the abort fails (endpoint gone), the
 *   upload is left for abandoned()/removeAbandoned(), never listed.
 * - With `objectLock`, every object written carries that retention (mode, retain-until = now +
 *   days), and remove() deletes the key's versions, so a locked one is refused (not hidden behind
 *   a delete marker).
 * - Credentials come only from `env` (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN:
 *   the process environment or an env file's values) or a profile of the shared files
 *   (AWS_PROFILE). Never from config or argv; no instance-metadata lookups.
 * - Every request is bounded: a connect timeout, an idle-socket timeout, a few attempts; an
 *   unreachable endpoint fails in seconds. Errors name the bucket and key, never a credential.
 * Content is checked by pgfleet's own sha256 (metadata): not every service supports the newer
 * x-amz-checksum-* headers, so custom endpoints send checksums only where the API requires them.
 */
import { Readable, Transform, addAbortSignal, pipeline } from 'node:stream';
import {
  S3Client,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  PutObjectRetentionCommand,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { PgfleetError, InterruptedError, EXIT } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { parseS3Url } from '../config/offsite.js';
import { NotFoundError, checkKey, checkPrefix, isKey, type Abandoned, type ObjectInfo, type SaveOptions, type SaveResult, type Store } from './store.js';

export interface S3StoreOptions {
  /** s3://bucket[/prefix] */
  url: string;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  storageClass?: string;
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
  /** Where credentials are read (default: process.env). */
  env?: Record<string, string | undefined>;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxAttempts?: number;
  partSize?: number;
  now?: () => Date;
}

export class S3StoreError extends PgfleetError {}

/**
 * Make a client without the SDK's multi-line notice that its releases after January 2027 need
 * Node 22 (emitted once, as the first client is made): off a TTY, stderr carries JSON log lines
 * only. The notice is for whoever upgrades the locked SDK, not for an operator.
 */
function quietly<T>(make: () => T): T {
  const KEY = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
  const before = process.env[KEY];
  process.env[KEY] = 'true';
  try {
    return make();
  } finally {
    if (before === undefined) delete process.env[KEY];
    else process.env[KEY] = before;
  }
}

/** An abort's reason for InterruptedError: 'SIGTERM' whether given as a string or an Error. */
const reasonOf = (signal: AbortSignal) => (signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'SIGINT'));

const MiB = 1024 * 1024;

/** The credentials of `env`, else a shared-file profile; a clear error when there are none. */
function credentialsFrom(env: Record<string, string | undefined>) {
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (id && secret) return { provider: async () => ({ accessKeyId: id, secretAccessKey: secret, sessionToken: env.AWS_SESSION_TOKEN || undefined }), secrets: [id, secret, env.AWS_SESSION_TOKEN ?? ''] };
  if (id || secret) throw new S3StoreError('S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together', EXIT.USAGE);
  const ini = fromIni({ profile: env.AWS_PROFILE, filepath: env.AWS_SHARED_CREDENTIALS_FILE, configFilepath: env.AWS_CONFIG_FILE });
  const provider = async () => {
    try {
      return await ini();
    } catch {
      throw new S3StoreError(
        `no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (environment or env file), or AWS_PROFILE with a shared credentials file`,
        EXIT.USAGE,
      );
    }
  };
  return { provider, secrets: [] as string[] };
}

export class S3Store implements Store {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly secrets: string[];
  private readonly now: () => Date;

  constructor(private readonly o: S3StoreOptions) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(o.url));
    this.location = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
    this.now = o.now ?? (() => new Date());
    const env = o.env ?? process.env;
    const creds = credentialsFrom(env);
    this.secrets = creds.secrets;
    this.client = quietly(() => new S3Client({
      endpoint: o.endpoint,
      region: o.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: o.pathStyle ?? false,
      credentials: creds.provider,
      maxAttempts: o.maxAttempts ?? 3,
      requestHandler: { connectionTimeout: o.connectTimeoutMs ?? 5000, socketTimeout: o.idleTimeoutMs ?? 30_000 },
      requestChecksumCalculation: o.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
      responseChecksumValidation: o.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
    }));
  }

  private full(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private base(): string {
    return this.prefix ? `${this.prefix}/` : '';
  }

  /** A PgfleetError naming what failed and where, with the service's reason; never a credential. */
  private fail(op: string, key: string, e: unknown): Error {
    if (e instanceof PgfleetError) return e;
    const err = e as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    let why = `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message || err.code || 'unknown error'}${status ? ` (HTTP ${status})` : ''}`;
    if (err.name === 'NoSuchBucket') why = `no such bucket ${this.bucket} (${why})`;
    else if (['InvalidAccessKeyId', 'SignatureDoesNotMatch'].includes(err.name ?? '')) why = `the service refused the credentials (${err.name})`;
    else if (err.name === 'AccessDenied') why = `access denied (${why}); check the credentials' permissions${this.o.objectLock ? ' and the object lock' : ''}`;
    else if (['InvalidArgument', 'InvalidStorageClass'].includes(err.name ?? '') && this.o.storageClass) why = `the service refused the request (${why}); is storage class ${this.o.storageClass} one it offers?`;
    else if (err.code && /^E[A-Z]+/.test(err.code)) why = `cannot reach ${this.o.endpoint ?? 'the S3 endpoint'} (${why})`;
    else if (err.name === 'TimeoutError') why = `no answer from ${this.o.endpoint ?? 'the S3 endpoint'} in time (${why})`;
    return new S3StoreError(redact(`${this.location}: ${op} ${key}: ${why}`, this.secrets));
  }

  async save(key: string, data: Readable | Buffer | string, o: SaveOptions = {}): Promise<SaveResult> {
    const Key = this.full(key);
    const signal = o.signal;
    if (signal?.aborted) throw new InterruptedError(reasonOf(signal));
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        cb(null, chunk);
      },
    });
    // An aborted signal ends the source with an error: the upload then aborts its multipart
    // upload before it rejects (an abort passed to Upload itself would reject first, leaving it).
    const source = typeof data === 'string' || Buffer.isBuffer(data) ? Readable.from([Buffer.from(data)]) : data;
    let sourceError: unknown;
    source.on('error', (e) => (sourceError ??= e));
    pipeline(source, signal ? addAbortSignal(signal, counted) : counted, () => undefined);
    const lock = this.o.objectLock;
    const retainUntil = lock ? new Date(this.now().getTime() + lock.days * 86_400_000) : undefined;
    const upload = new Upload({
      client: this.client,
      partSize: this.o.partSize ?? 16 * MiB,
      queueSize: 2,
      params: {
        Bucket: this.bucket,
        Key,
        Body: counted,
        StorageClass: this.o.storageClass as StorageClass | undefined,
        ...(lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: retainUntil } : {}),
      },
    });
    let versionId: string | undefined;
    try {
      versionId = (await upload.done()).VersionId;
    } catch (e) {
      counted.destroy();
      source.destroy();
      if (signal?.aborted) throw new InterruptedError(reasonOf(signal));
      // The source's own failure (a dump that died) is the save's reason, not the service.
      if (sourceError instanceof PgfleetError) throw sourceError;
      if (sourceError) throw new S3StoreError(redact(`${this.location}: save ${key}: the source failed, upload aborted: ${(sourceError as Error).message}`, this.secrets));
      throw this.fail('save', key, e);
    }
    if (lock) await this.ensureRetention(key, versionId, lock.mode, retainUntil!);
    return { key, size };
  }

  /**
   * Make sure the version just written carries its retention: some services (Ceph's gateway 16)
   * ignore the lock headers of a multipart upload. When it cannot be set, the version is deleted
   * (best effort) and the save fails: an unlocked copy must not pass for a locked one.
   */
  private async ensureRetention(key: string, VersionId: string | undefined, mode: 'GOVERNANCE' | 'COMPLIANCE', until: Date): Promise<void> {
    const Key = this.full(key);
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key, VersionId }));
      if (h.ObjectLockMode === mode && (h.ObjectLockRetainUntilDate?.getTime() ?? 0) >= until.getTime() - 1000) return;
      await this.client.send(new PutObjectRetentionCommand({ Bucket: this.bucket, Key, VersionId: VersionId ?? h.VersionId, Retention: { Mode: mode, RetainUntilDate: until } }));
    } catch (e) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key, VersionId })).catch(() => undefined);
      throw this.fail('set retention of', key, e);
    }
  }

  async load(key: string, o: { signal?: AbortSignal } = {}): Promise<Readable> {
    const Key = this.full(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: o.signal });
      const body = r.Body as Readable;
      return o.signal ? addAbortSignal(o.signal, body) : body;
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(key, this.location);
      throw this.fail('load', key, e);
    }
  }

  async read(key: string): Promise<Buffer> {
    const Key = this.full(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(key, this.location);
      throw this.fail('read', key, e);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const Key = this.full(key);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, size: r.ContentLength ?? 0, mtime: r.LastModified ?? new Date(0) };
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404 && (e as { name?: string }).name !== 'NoSuchBucket') return null;
      throw this.fail('stat', key, e);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const base = this.base();
    const out: ObjectInfo[] = [];
    let ContinuationToken: string | undefined;
    try {
      do {
        const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base + prefix, ContinuationToken }));
        for (const c of r.Contents ?? []) {
          const key = c.Key!.slice(base.length);
          if (isKey(key)) out.push({ key, size: c.Size ?? 0, mtime: c.LastModified ?? new Date(0) });
        }
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (ContinuationToken);
    } catch (e) {
      throw this.fail('list', prefix || '(all)', e);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    const Key = this.full(key);
    try {
      if (!this.o.objectLock) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
        return;
      }
      // A locked bucket is versioned: delete the versions themselves, so a lock refuses it.
      const r = await this.client.send(new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: Key }));
      for (const v of [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])].filter((v) => v.Key === Key))
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key, VersionId: v.VersionId }));
    } catch (e) {
      throw this.fail('remove', key, e);
    }
  }

  async abandoned(prefix: string, before: Date): Promise<Abandoned[]> {
    checkPrefix(prefix);
    const base = this.base();
    const out: Abandoned[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    try {
      do {
        const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: base + prefix, KeyMarker, UploadIdMarker }));
        for (const u of r.Uploads ?? []) {
          const key = u.Key!.slice(base.length);
          if (u.UploadId && u.Initiated && u.Initiated < before && isKey(key)) out.push({ key, handle: u.UploadId, startedAt: u.Initiated });
        }
        [KeyMarker, UploadIdMarker] = r.IsTruncated ? [r.NextKeyMarker, r.NextUploadIdMarker] : [undefined, undefined];
      } while (KeyMarker);
    } catch (e) {
      throw this.fail('list uploads', prefix || '(all)', e);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async removeAbandoned(a: Abandoned): Promise<void> {
    const Key = this.full(a.key);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: a.handle }));
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchUpload') return;
      throw this.fail('abort upload', a.key, e);
    }
  }
}
