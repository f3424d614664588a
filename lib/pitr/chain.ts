/**
 * Verification of a base backup's chain (`verify-backups` of a PITR target): proof that the base
 * backup and the archived WAL after it recover, to the end of the archive.
 *
 *   the WAL it needs: every segment on its path (its timeline, and across a timeline switch the
 *   newer one its history files lead to: lib/pitr/timelines.ts) from the one holding its start
 *   LSN to the newest archived, with no gap (a missing one is named) → each stored file hashed against its
 *   record (the compressed object's sha256, then the segment's own, decompressed) → the temporary
 *   instance of lib/pitr/recover.ts (which hashes the tar against its metadata on the stream that
 *   stages it: read once) recovering it with no target: to
 *   the end of the staged WAL, then promote → pg_last_wal_replay_lsn() must lie in or past the
 *   last archived segment (else recovery stopped short) → the result recorded in the base
 *   backup's metadata (`verification`), on a freshly read copy, written atomically.
 *
 * A fault of the archive (a gap, a missing or damaged file, recovery stopping short or failing
 * on its WAL) is a failed verification (recorded; exit 4). A fault of the machinery (the container
 * down, no exec) is an error: nothing recorded, the backup is not to blame (as verify-backups does
 * for dumps). The instance and its files are removed always (withRecoveryInstance).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CommandError, InterruptedError, VerificationError } from '../core/errors.js';
import type { BaseBackupMetadata, WalRecord } from '../formats/pitr.js';
import type { Context } from '../runtime/context.js';
import { archiveOf, ref, type Cluster } from './cluster.js';
import type { ClusterArchive } from './archive.js';
import { withRecoveryInstance } from './recover.js';
import { lsnBytes, segmentNumber, timelineOf } from './segments.js';
import { describePath, historiesMissing, missingHistoryProblem, readHistories, walkChain, type TimelineHistory } from './timelines.js';

export type ChainVerification = NonNullable<BaseBackupMetadata['verification']>;

export interface ChainOutcome {
  container: string;
  id: string;
  /** error: the check could not run (not recorded). */
  status: 'passed' | 'failed' | 'error';
  error?: string;
  verification?: ChainVerification;
}

export { lsnBytes } from './segments.js';

/**
 * The WAL `base` needs to recover to the end of the archive (pure): the segments on its path
 * (lib/pitr/timelines.ts: across timeline switches its histories lead to) from the one holding its
 * start LSN, in order, and the history files up to its target timeline; or why the chain is broken.
 */
export function chainOf(base: BaseBackupMetadata, records: readonly WalRecord[], histories: readonly TimelineHistory[] = []): { wal: WalRecord[]; segments: WalRecord[]; size: number; timeline: number; path: string } | { broken: string } {
  const size = records.find((r) => r.kind === 'segment')?.size_bytes ?? 16 << 20;
  const lost = historiesMissing(records.map((r) => r.name), histories);
  if (lost.length) return { broken: missingHistoryProblem(lost) };
  const w = walkChain(base, histories, records.map((r) => r.name), size);
  if (!w.run.length) return { broken: `segment ${w.next} (where base backup ${base.id} starts) is missing from the archive` };
  if (w.missing.length) return { broken: `the WAL archive has a gap after base backup ${base.id}: ${w.missing.slice(0, 5).join(', ')}${w.missing.length > 5 ? ` and ${w.missing.length - 5} more` : ''} missing` };
  const byName = new Map(records.map((r) => [r.name, r]));
  const segments = w.run.map((n) => byName.get(n)!);
  return { wal: [...records.filter((r) => r.kind === 'history' && timelineOf(r.name) <= w.timeline), ...segments], segments, size, timeline: w.timeline, path: describePath(w, size) };
}

async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every stored WAL file of the chain against its record; throws VerificationError naming the first that differs. (The tar is checked as the recovery stages it.) */
async function checkFiles(ctx: Context, a: ClusterArchive, wal: readonly WalRecord[]): Promise<void> {
  const path = (key: string) => a.store.pathOf!(key);
  for (const r of wal) {
    ctx.signal?.throwIfAborted();
    const stored = await sha256File(path(a.walKey(r.name)), ctx.signal).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? 'missing' : null));
    if (stored === 'missing') throw new VerificationError(`WAL ${r.name}: ${a.walKey(r.name)} is missing from the archive (its record exists)`);
    if (stored !== r.stored.sha256) throw new VerificationError(`WAL ${r.name}: the stored file's sha256 is ${stored ?? 'unreadable'}, its record says ${r.stored.sha256} (damaged)`);
    const z = ctx.runner.spawn(['zstd', '-dc', '--', path(a.walKey(r.name))], { what: `zstd -d (WAL ${r.name})`, program: 'zstd', role: 'decompress', signal: ctx.signal });
    const h = createHash('sha256');
    z.stdout.on('data', (c: Buffer) => h.update(c));
    await z.done;
    const raw = h.digest('hex');
    if (raw !== r.sha256) throw new VerificationError(`WAL ${r.name}: sha256 ${raw} decompressed, its record says ${r.sha256} (damaged)`);
  }
}

/** Verify one base backup's chain and record the result; see the header. */
export async function verifyChain(ctx: Context, c: Cluster, base: BaseBackupMetadata): Promise<ChainOutcome> {
  const a = archiveOf(ctx, c);
  const t0 = performance.now();
  const log = ctx.logger.child({ container: c.container, ...ref(c) });
  const out = { container: c.container, id: base.id };
  let segments: WalRecord[] = [];
  let replayed: string | null = null;
  let verification: ChainVerification;
  try {
    const recs = await a.walRecords();
    if (recs.problems.length) throw new VerificationError(`damaged WAL records: ${recs.problems.join('; ')}`);
    const hist = await readHistories(ctx, a, recs.items);
    if (hist.problems.length) throw new VerificationError(hist.problems.join('; '));
    const chain = chainOf(base, recs.items, hist.histories);
    if ('broken' in chain) throw new VerificationError(chain.broken);
    segments = chain.segments;
    await checkFiles(ctx, a, chain.wal);
    const last = segments.at(-1)!;
    replayed = await withRecoveryInstance(ctx, c, { base, wal: chain.wal, timeline: chain.timeline }, ({ psql }) => psql('select pg_last_wal_replay_lsn()'));
    if (!replayed || lsnBytes(replayed) < segmentNumber(last.name, chain.size) * chain.size)
      throw new VerificationError(`recovery stopped short at ${replayed ?? 'an unknown point'}, before the last archived segment ${last.name}`);
    verification = { status: 'passed', verified_at: ctx.clock().toISOString(), duration_ms: Math.round(performance.now() - t0), segments: segments.length, through: last.name, replayed_lsn: replayed };
  } catch (e) {
    if (e instanceof InterruptedError || ctx.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError(String(ctx.signal?.reason ?? 'SIGINT'));
    const error = ((e as Error)?.message ?? String(e)).slice(0, 2000);
    // The instance's own failure to start or replay is the chain's; a container CLI that cannot run is not.
    const archiveFault = e instanceof VerificationError || (e instanceof CommandError && e.program === 'zstd') || /did not start|did not finish/.test(error);
    if (!archiveFault) {
      log.error({ id: base.id, err: error }, 'chain verification could not run; nothing recorded');
      return { ...out, status: 'error', error };
    }
    verification = { status: 'failed', verified_at: ctx.clock().toISOString(), duration_ms: Math.round(performance.now() - t0), segments: segments.length, through: segments.at(-1)?.name ?? null, replayed_lsn: replayed, error };
  }
  // Record on a freshly read copy: a prune may have removed it meanwhile (then nothing is recorded).
  const fresh = (await a.baseBackups()).items.find((b) => b.id === base.id);
  if (fresh) await a.saveBaseMeta({ ...fresh, verification });
  else log.warn({ id: base.id }, 'the base backup disappeared during verification; result not recorded');
  log[verification.status === 'passed' ? 'info' : 'error']({ id: base.id, ...verification }, `chain verification ${verification.status}`);
  return { ...out, status: verification.status, verification, ...(verification.error ? { error: verification.error } : {}) };
}
