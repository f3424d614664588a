/**
 * The S3 client of S3Store (lib/storage/s3.ts), and how its failures read. Promises:
 * - credentials only from `env` (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN: the
 *   process environment or an env file's values) or a profile of the shared files (AWS_PROFILE);
 *   never config or argv, and no instance-metadata lookups (no request leaves for a metadata
 *   address when nothing is set: a clear error instead);
 * - every request bounded: a connect timeout, an idle-socket timeout, a few attempts;
 * - checksums: the newer x-amz-checksum-* headers only where the API requires them when the
 *   endpoint is not AWS (many S3-compatible services lack them; pgfleet's sha256 is the check);
 * - failures as S3StoreError naming the store's URL, the operation and the key, with the
 *   service's reason; never a credential.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { PgfleetError, EXIT } from '../core/errors.js';
import { redact } from '../core/redact.js';

export interface S3ClientOptions {
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  /** Where credentials are read (default: process.env). */
  env?: Record<string, string | undefined>;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxAttempts?: number;
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
        env.AWS_PROFILE
          ? `no S3 credentials from profile ${JSON.stringify(env.AWS_PROFILE)} (AWS_PROFILE) in the shared credentials and config files`
          : `no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (environment or env file), or AWS_PROFILE with a shared credentials file`,
        EXIT.USAGE,
      );
    }
  };
  return { provider, secrets: [] as string[] };
}

/** A client for `o`, and the credential values to scrub from any message. */
export function makeS3Client(o: S3ClientOptions): { client: S3Client; secrets: string[] } {
  const env = o.env ?? process.env;
  const creds = credentialsFrom(env);
  const client = quietly(
    () =>
      new S3Client({
        endpoint: o.endpoint,
        region: o.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
        forcePathStyle: o.pathStyle ?? false,
        credentials: creds.provider,
        maxAttempts: o.maxAttempts ?? 3,
        requestHandler: { connectionTimeout: o.connectTimeoutMs ?? 5000, socketTimeout: o.idleTimeoutMs ?? 30_000 },
        requestChecksumCalculation: o.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
        responseChecksumValidation: o.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
      }),
  );
  return { client, secrets: creds.secrets };
}

export interface FailureContext {
  location: string;
  bucket: string;
  endpoint?: string;
  storageClass?: string;
  objectLock?: unknown;
  secrets: readonly string[];
}

/** A PgfleetError naming what failed and where, with the service's reason; never a credential. */
export function s3Failure(c: FailureContext, op: string, key: string, e: unknown): Error {
  if (e instanceof PgfleetError) return e;
  const err = e as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  let why = `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message || err.code || 'unknown error'}${status ? ` (HTTP ${status})` : ''}`;
  if (err.name === 'NoSuchBucket') why = `no such bucket ${c.bucket} (${why})`;
  else if (['InvalidAccessKeyId', 'SignatureDoesNotMatch'].includes(err.name ?? '')) why = `the service refused the credentials (${err.name})`;
  else if (err.name === 'AccessDenied') why = `access denied (${why}); check the credentials' permissions${c.objectLock ? ' and the object lock' : ''}`;
  else if (['InvalidArgument', 'InvalidStorageClass'].includes(err.name ?? '') && c.storageClass) why = `the service refused the request (${why}); is storage class ${c.storageClass} one it offers?`;
  else if (err.code && /^E[A-Z]+/.test(err.code)) why = `cannot reach ${c.endpoint ?? 'the S3 endpoint'} (${why})`;
  else if (err.name === 'TimeoutError') why = `no answer from ${c.endpoint ?? 'the S3 endpoint'} in time (${why})`;
  return new S3StoreError(redact(`${c.location}: ${op} ${key}: ${why}`, c.secrets));
}
