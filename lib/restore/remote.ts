/**
 * Which copy `restore --from-offsite` and `verify-backups --offsite` read: a backup of the
 * target's offsite bucket (lib/offsite/catalog.ts: from the bucket alone) by id or the newest
 * (--latest), with the age identity that reads it checked before anything else happens.
 *
 * Promises: reads only (the bucket's listing and metadata, the identity file through
 * age-keygen -y); a missing, unreadable or wrong identity (PGFLEET_AGE_IDENTITY_FILE) is an
 * AgeError told here, before a byte of the dump is read or anything is touched.
 */
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import { BACKUP_ID } from '../formats/metadata.js';
import { offsiteRepository } from '../offsite/catalog.js';
import { checkIdentity, remoteDump, type RemoteDump } from '../offsite/fetch.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';

/** The copy in the bucket, ready to read (lib/offsite/fetch.ts), its identity checked. */
export async function readableCopy(ctx: Context, t: Target, b: StoredBackup): Promise<RemoteDump> {
  const ref = { project: t.project, environment: t.environment };
  const store = (await offsiteRepository(t, ctx.env)).store;
  const identity = await checkIdentity(ctx.runner, b.meta, ctx.env, ref);
  return remoteDump(ctx.runner, store, b, identity, ref);
}

/** `--from-offsite` with a backup id or --latest (never a path: the bucket holds backups only). */
export async function resolveOffsiteSource(ctx: Context, t: Target, o: { source?: string; latest?: boolean }): Promise<RemoteDump> {
  const where = `${t.project}/${t.environment}`;
  if (!!o.source === !!o.latest) throw new UsageError('name exactly one backup to restore from the bucket: a backup id or --latest');
  if (o.source && !BACKUP_ID.test(o.source)) throw new UsageError(`--from-offsite takes a backup id (db_YYYYMMDD_HHMMSSZ) or --latest, not ${JSON.stringify(o.source)}`);
  const repo = await offsiteRepository(t, ctx.env);
  let b: StoredBackup | undefined;
  if (o.latest) {
    [b] = await repo.list(t.project, t.environment);
    if (!b) throw new PgfleetError(`${where}: no complete copy in ${repo.root} to restore`, EXIT.FAILED, t);
  } else {
    b = await repo.find(t.project, t.environment, o.source!);
    if (!b) throw new UsageError(`${where}: no complete copy ${o.source} in ${repo.root} (see pgfleet list ${t.project} ${t.environment} --offsite)`);
  }
  return readableCopy(ctx, t, b);
}
