/**
 * A target's offsite bucket: the S3Store rooted at its offsite URL (keys mirror the local layout,
 * so `new Repository(bucket(target))` reads it with the local code), and the key its copy of a
 * backup has there. Credentials from the target's env file or the process environment
 * (lib/config/load.ts offsiteEnv), never projects.yml.
 */
import type { Target } from '../config/load.js';
import { offsiteEnv } from '../config/load.js';
import { InternalError } from '../core/errors.js';
import { AGE_EXT, DUMP_EXT } from '../storage/repository.js';
import type { S3Store, S3StoreOptions } from '../storage/s3.js';

/** The key of a backup's offsite copy, below the URL's prefix: the local key, `.age` when the target encrypts. */
export function offsiteKey(target: Pick<Target, 'project' | 'environment' | 'encryption'>, id: string): string {
  return `${target.project}/${target.environment}/database/${id}${DUMP_EXT}${target.encryption ? AGE_EXT : ''}`;
}

/**
 * The S3Store of a target's offsite copies (throws InternalError for a target without offsite: a
 * caller's bug). The store, and with it the AWS SDK, is loaded here on first use: a run that never
 * reaches a bucket does not pay the SDK's start-up (~0.3 s and ~17 MiB per process).
 */
export async function offsiteStore(target: Target, o: Partial<S3StoreOptions> = {}, env: NodeJS.ProcessEnv = process.env): Promise<S3Store> {
  const s = target.offsite;
  if (!s) throw new InternalError(`${target.project}/${target.environment}: no offsite configured`);
  const { S3Store } = await import('../storage/s3.js');
  return new S3Store({
    url: s.url,
    endpoint: s.endpoint,
    region: s.region,
    pathStyle: s.pathStyle,
    storageClass: s.storageClass,
    objectLock: s.objectLock,
    env: offsiteEnv(target, env),
    ...o,
  });
}
