/**
 * Take one backup of one target: the runbook (ARCHITECTURE.md "The shape of a backup"). The
 * caller holds the target's lock. Each step's machinery is in a file beside this one:
 *
 *   1. start the dump's processes          snapshot.ts  zstd, pg_dump waiting for a snapshot, the snapshot session
 *   2. preflight and snapshot              snapshot.ts  one round trip: versions, container, database, an exported snapshot
 *   3. name the backup, sweep leftovers    the repository: newId; what runs killed outright left (their writer gone)
 *   4. stream the dump into the store      pipeline.ts  pg_dump → zstd → sha256 + bytes → store.save (temp, fsync,
 *                                                       rename), while the same snapshot counts every table's rows
 *   5. write the metadata, last            record.ts    the marker that makes the dump a backup
 *
 * Promises: on any failure (pg_dump or its connection killed, container stopped, disk full, bad
 * password, interrupt) every process is stopped, no dump and no metadata is left behind, older
 * backups are untouched, and the error names project, environment and the tail of the failing
 * command's stderr (failure.ts). Nothing here touches backup_root but through the repository.
 */
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Target } from '../config/load.js';
import { targetLogger } from '../core/log.js';
import { redact } from '../core/redact.js';
import { Steps } from '../core/steps.js';
import { Terminal } from '../core/terminal.js';
import type { BackupType } from '../formats/metadata.js';
import type { SessionPool } from '../postgres/pool.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';
import { backupFailure } from './failure.js';
import { exclusionsFor } from './exclusions.js';
import { streamDump } from './pipeline.js';
import { backupMetadata } from './record.js';
import { DumpRun } from './run.js';
import { openSnapshot, startDump } from './snapshot.js';

export interface BackupOptions {
  type: BackupType;
  release?: string | null;
  /** Overrides the target's backup.lock_wait_timeout. */
  lockWaitTimeoutMs?: number;
  /** Given the new backup's id, where the dump's bytes go too as they are produced (the offsite upload; lib/backup/pipeline.ts teeTo). */
  tee?: (id: string) => Writable | null;
  /** A fleet run's kept psql sessions (lib/postgres/pool.ts): the snapshot session is leased from it, pg_dump called by its direct path once known. */
  sessions?: SessionPool;
}

/** Take the backup. The caller holds the target's lock. Returns the stored backup. */
export async function takeBackup(ctx: Context, target: Target, opts: BackupOptions): Promise<StoredBackup> {
  const { project, environment } = target;
  const log = targetLogger(ctx.logger, target);
  const sh = ctx.shellFor(target);
  const startedAt = ctx.clock();
  const t0 = performance.now();
  const lockWaitMs = opts.lockWaitTimeoutMs ?? target.backup.lock_wait_timeout_ms;
  const level = target.backup.compression_level;
  const run = new DumpRun(ctx.signal);
  // Without progress (dumps in parallel), nothing on the terminal: a fleet command draws its table.
  const term = ctx.progress ? ctx.term : Terminal.off();
  const steps = new Steps(log, term, { prefix: 'backup', level: 'debug' });
  const step = (name: string) => {
    run.throwIfStopped(); // interrupted (or failed) between steps
    steps.step(name);
  };
  let id: string | undefined;

  try {
    step('start pg_dump (waiting for its snapshot), zstd and the snapshot session');
    const exclusions = exclusionsFor(target, opts.type);
    const procs = startDump(ctx, target, sh, { level, lockWaitMs, exclusions, sessions: opts.sessions, track: (p) => run.track(p) });

    step('preflight and snapshot, in one round trip');
    const pre = await run.watch(openSnapshot(ctx, target, sh, procs, lockWaitMs));
    opts.sessions?.serverSeen(sh, pre.serverVersion);

    step('name the backup; sweep what runs killed outright left');
    id = await ctx.repo.newId(project, environment, startedAt);
    const leftovers = await ctx.repo.abandoned(project, environment, new Date(0)); // their writer is gone; ours is named after this pid
    for (const a of leftovers) await ctx.repo.removeAbandoned(a);
    if (leftovers.length) log.warn({ files: leftovers.map((a) => path.basename(a.handle)) }, 'removed temporary files left by a killed run');
    log.info({ id, type: opts.type, database: target.database, where: sh.where }, 'backup started');

    step('stream pg_dump → zstd → sha256 → the store, counting rows in the same snapshot');
    const bar = term.shows ? term.progress(`dump ${target.database}`, await previousSize(ctx, target)) : null;
    const streamed = await streamDump(ctx.repo, run, procs, { project, environment, id, snapshot: pre.snapshot, bar, exclusions, tee: opts.tee?.(id) });

    step('write the metadata, last');
    const meta = backupMetadata(target, { id, type: opts.type, release: opts.release ?? null, startedAt, durationMs: Math.round(performance.now() - t0), level, container: sh.container ?? null, preflight: pre, streamed });
    await ctx.repo.saveMetadata(meta);
    const b = ctx.repo.stored(meta);
    log.info({ id, path: b.path, size_bytes: meta.size_bytes, duration_ms: meta.duration_ms, tables: Object.keys(meta.tables).length, rows: meta.total_rows, ...(meta.partial ? { partial: { tables_excluded: meta.partial.tables_excluded, data_excluded: meta.partial.data_excluded } } : {}) }, 'backup complete');
    steps.done();
    return b;
  } catch (e) {
    steps.fail();
    run.stop(e);
    await run.settle();
    // Whatever got saved under the new id goes, metadata first (the id is this run's alone: taken under the lock).
    if (id) await ctx.repo.remove(ctx.repo.keysOf(project, environment, id)).catch((re) => log.error({ id, err: (re as Error).message }, 'could not remove what the failed backup saved'));
    const err = backupFailure(run.error ?? e, target, { lockWaitMs, signal: ctx.signal });
    log.error({ id, err: err instanceof Error ? redact(err.message) : String(err) }, 'backup failed, nothing kept');
    throw err;
  } finally {
    run.dispose();
  }
}

/** The bar's estimate: the size of the target's newest complete backup, if there is one. */
async function previousSize(ctx: Context, target: Target): Promise<{ total: number | null; basis: string }> {
  const prev = (await ctx.repo.list(target.project, target.environment).catch(() => []))[0];
  return { total: prev?.meta.size_bytes ?? null, basis: "previous backup's size" };
}
