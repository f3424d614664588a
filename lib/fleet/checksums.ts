/**
 * The fast integrity pass (`verify-backups --checksums`): every stored dump of the given targets
 * re-read and hashed (lib/storage/checksum.ts) against its metadata's size_bytes and sha256, a few
 * files at once, and the result recorded in the metadata's `checksum` (never `verification`: a
 * matching hash proves the bytes unchanged, not that they restore).
 *
 * Promises: read-only on dumps; each result is written by an atomic replace of a freshly read
 * copy of the metadata (as verify-backups records), so it needs no lock; a backup that vanished or
 * changed meanwhile is reported `error` and nothing is recorded. A recorded failure makes the
 * backup damaged (lib/storage/repository.ts) until a later pass finds its bytes whole again:
 * backups whose only problem is a failed pass are hashed again. A damaged backup that cannot be
 * hashed (dump missing, of another size, no metadata) fails without being read.
 */
import os from 'node:os';
import type { Target } from '../config/load.js';
import { InterruptedError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import type { ChecksumResult } from '../formats/metadata.js';
import type { Context } from '../runtime/context.js';
import { hashObject } from '../storage/checksum.js';
import type { StoredBackup } from '../storage/repository.js';

export interface ChecksumOutcome {
  project: string;
  environment: string;
  id: string;
  /** error: could not be checked (vanished, unreadable); nothing recorded. */
  status: 'passed' | 'failed' | 'error';
  error?: string;
  bytes: number;
  duration_ms: number;
}

/** Files hashed at once: the cores, at most 4 (one file per core keeps the disk streaming). */
const PARALLEL = Math.max(1, Math.min(4, os.availableParallelism()));

type Item = { t: Target; b: StoredBackup } | { t: Target; id: string; problem: string };

/** Plan: the target's complete backups and those failed only by an earlier pass, hashed; other damage, failed unread. `backup`: that id only. */
async function plan(ctx: Context, targets: readonly Target[], backup?: string): Promise<Item[]> {
  const items: Item[] = [];
  for (const t of targets) {
    const { complete, damaged } = await ctx.repo.survey(t.project, t.environment, ctx.clock());
    for (const b of complete) items.push({ t, b });
    for (const d of damaged) items.push(d.recheck ? { t, b: d.recheck } : { t, id: d.id, problem: d.problem });
  }
  return backup ? items.filter((i) => ('b' in i ? i.b.meta.id : i.id) === backup) : items;
}

/** Hash every planned dump and record each result. Never throws for one backup's failure; InterruptedError when aborted. */
export async function checksumPass(ctx: Context, targets: readonly Target[], o: { backup?: string; dryRun?: boolean } = {}): Promise<{ results: ChecksumOutcome[]; planned: number }> {
  const items = await plan(ctx, targets, o.backup);
  if (o.dryRun) return { results: [], planned: items.length };
  const results: ChecksumOutcome[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await checkOne(ctx, items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return { results, planned: items.length };
}

async function checkOne(ctx: Context, item: Item): Promise<ChecksumOutcome> {
  const { t } = item;
  const log = targetLogger(ctx.logger, t);
  const base = { project: t.project, environment: t.environment };
  if (!('b' in item)) return { ...base, id: item.id, status: 'failed', error: `damaged backup: ${item.problem}`, bytes: 0, duration_ms: 0 };
  const { b } = item;
  const t0 = performance.now();
  let got: { sha256: string; size: number };
  try {
    got = await hashObject(ctx.repo.store, b.key, { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal?.aborted) throw new InterruptedError(String(ctx.signal.reason ?? 'SIGINT'));
    const error = `could not read ${b.path}: ${(e as Error).message}`;
    log.error({ id: b.meta.id, err: error }, 'checksum could not run; nothing recorded');
    return { ...base, id: b.meta.id, status: 'error', error, bytes: 0, duration_ms: Math.round(performance.now() - t0) };
  }
  const duration_ms = Math.round(performance.now() - t0);
  const problem =
    got.size !== b.meta.size_bytes ? `dump is ${got.size} bytes, metadata says ${b.meta.size_bytes}` : got.sha256 !== b.meta.sha256 ? `sha256 is ${got.sha256}, metadata says ${b.meta.sha256}` : null;
  const checksum: ChecksumResult = { status: problem ? 'failed' : 'passed', checked_at: ctx.clock().toISOString(), duration_ms, ...(problem ? { error: problem } : {}) };
  // Record on a freshly read copy (another run may have rewritten it); a backup gone meanwhile is not brought back.
  const fresh = await ctx.repo.check(b.metaKey);
  const now = fresh.backup ?? fresh.recheck;
  if (!now || now.meta.sha256 !== b.meta.sha256) {
    log.warn({ id: b.meta.id, problem: fresh.problem }, 'the backup changed or disappeared during its checksum; result not recorded');
    return { ...base, id: b.meta.id, status: 'error', error: `changed or removed while it was read (${fresh.problem ?? 'metadata rewritten'})`, bytes: got.size, duration_ms };
  }
  await ctx.repo.saveMetadata({ ...now.meta, checksum });
  log[problem ? 'error' : 'debug']({ id: b.meta.id, ...checksum }, `checksum ${checksum.status}`);
  return { ...base, id: b.meta.id, status: checksum.status, ...(problem ? { error: problem } : {}), bytes: got.size, duration_ms };
}
