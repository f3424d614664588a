/**
 * One database of a cluster as it was at a point in time, recovered next to the live cluster:
 *
 *   planRecovery(): the restorable window as `status` computes it (lib/pitr/status.ts: from the
 *     oldest base backup's end to the last segment reachable without a gap; `latest` is its end);
 *     a point outside it, a gap in the WAL the point needs, or no base backup: refused (exit 2),
 *     the window's points or the missing segment named; else the newest base backup finished by
 *     the point and its WAL up to the first segment archived after the point, along its timeline
 *     and across the timeline switches its history files lead to (lib/pitr/timelines.ts)
 *   → checkRecoverySpace(): the base backup's unpacked size and the WAL, against `df` of the
 *     container's /tmp, before anything is created there (exit 2 when short)
 *   → a private directory in the tenant's container (/tmp/pgfleet-recover-<random>)
 *   → the base backup's tar unpacked there, and the archived WAL from its start up to the first
 *     segment archived after the target (decompressed on the host, each copied in whole)
 *   → a temporary postmaster of the container's own binaries on that data directory, a private
 *     socket directory and port, no TCP, archive_mode off, restore_command reading the staged WAL,
 *     recovery_target_time (inclusive), then promote; with no segment archived after the point
 *     (every archived change is at or before it), to the end of the staged WAL, then promote
 *   → pg_dump -Fc of the one database into `outFile` on the host
 *   → always, also on failure or an abort: the temporary postmaster stopped and its directory removed
 *
 * The live cluster is only read (its binaries, its container's /tmp); its data directory, its
 * socket and its other databases are never touched.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { pipeline } from 'node:stream';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { backupMetadata } from '../backup/record.js';
import type { Target } from '../config/load.js';
import { CommandError, EXIT, InternalError, PgfleetError, UsageError, VerificationError } from '../core/errors.js';
import { hashingTap } from '../core/hashing.js';
import { schemaProblems } from '../core/schema-files.js';
import { humanSize } from '../core/text.js';
import type { BackupMetadata } from '../formats/metadata.js';
import { WAL_NAME, type BaseBackupMetadata, type WalRecord } from '../formats/pitr.js';
import { parseRowCounts, ROW_COUNTS_SQL } from '../postgres/psql.js';
import type { Spawned } from '../process/runner.js';
import type { Context } from '../runtime/context.js';
import { backupStem, META_EXT } from '../storage/repository.js';
import { archiveOf, ref, SUPERUSER, withClusterLock, type Cluster } from './cluster.js';
import { landed, takeInWal, WalGapError } from './intake.js';
import { timelineOf } from './segments.js';
import { describePath, historiesMissing, missingHistoryProblem, readHistories, walkChain } from './timelines.js';
import { clusterStatus } from './status.js';

const PORT = 54329;

/** `--to`: an ISO-8601 time with its zone, or `latest` (the end of the archive). */
export function parsePointInTime(s: string): Date | 'latest' {
  if (s === 'latest') return 'latest';
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s) || Number.isNaN(Date.parse(s)))
    throw new UsageError(`--to must be an ISO-8601 time with its zone, like 2026-03-01T14:32:00Z, or latest; not ${JSON.stringify(s)}`);
  return new Date(s);
}

/** What a recovery to a point will read, before anything is touched. */
export interface RecoveryPlan {
  /** The point asked for (`latest`: the window's end), ISO. */
  point: string;
  /** recovery_target_time; undefined: to the end of the staged WAL (no archived change is after the point). */
  target?: string;
  /** The restorable window, as `status` shows it. */
  window: { from: string; to: string };
  base: BaseBackupMetadata;
  /** History files and the segments to stage, in order. */
  wal: WalRecord[];
  /** Segments the plan needs that are still in the landing directory (taken in before a recovery; only a dry run plans with them). */
  waiting: string[];
  /** The first and last segment staged. */
  segments: { first: string; last: string };
  /** recovery_target_timeline: the base backup's, or the newest its history files lead to (lib/pitr/timelines.ts). */
  timeline: number;
  /** The timelines replayed, as an operator reads them (`timeline 1`, `timelines 1 → 2 (switch at …)`). */
  timelines: string;
}

/** A recovery refused before anything was touched (exit 2): the point, the window or the archive is wrong. */
export class RecoveryRefused extends PgfleetError {
  constructor(message: string, c: Cluster) {
    super(message, EXIT.USAGE, ref(c));
  }
}

/**
 * The WAL waiting in the landing directory taken into the archive first (as `pitr archive`, under
 * the cluster's lock), so the window `status` shows (which counts it) is the one recovered from.
 * A gap is left for planRecovery to name; a conflicting duplicate stops here.
 */
export async function takeInLanded(ctx: Context, c: Cluster): Promise<void> {
  await withClusterLock(ctx, c, 'restore --to', () => takeInWal(ctx, archiveOf(ctx, c), c.archiveDir)).catch((e: unknown) => {
    if (!(e instanceof WalGapError)) throw e;
  });
}

/** See the header. `to`: a time, or `latest` (the end of the archive). Read-only. */
export async function planRecovery(ctx: Context, c: Cluster, to: Date | 'latest'): Promise<RecoveryPlan> {
  const st = await clusterStatus(ctx, c, ctx.clock());
  // What ends the window early, named with a refusal outside it: a gap, or a timeline switch recovery cannot follow.
  const gap = st.problems.find((p) => p.startsWith('the WAL archive has a gap') || p.startsWith('segments of a newer timeline'));
  if (!st.window) throw new RecoveryRefused(`${c.container}: no base backup to recover from: take one first (pgfleet basebackup ${ref(c).project} ${ref(c).environment})`, c);
  const window = st.window;
  const point = to === 'latest' ? window.to : to.toISOString();
  if (point < window.from || point > window.to)
    throw new RecoveryRefused(`${c.container}: ${point} is outside the restorable window: earliest ${window.from}, latest ${window.to}${gap ? `; ${gap}` : ''}`, c);
  const archive = archiveOf(ctx, c);
  const [bases, recs] = await Promise.all([archive.baseBackups(), archive.walRecords()]);
  const base = bases.items.filter((b) => b.finished_at <= point).sort((a, b) => (a.finished_at < b.finished_at ? -1 : 1)).at(-1);
  if (!base) throw new RecoveryRefused(`${c.container}: ${point} is before the earliest restorable point ${window.from} (latest ${window.to})`, c);
  const size = recs.items.find((r) => r.kind === 'segment')?.size_bytes ?? 16 << 20;
  // The repository's WAL and, as status counts them, the files waiting in the landing directory.
  const known = new Map<string, { name: string; archived_at: string; record?: WalRecord }>(recs.items.map((r) => [r.name, { name: r.name, archived_at: r.archived_at, record: r }]));
  for (const n of (await landed(c.archiveDir).catch(() => [])).filter((x) => (WAL_NAME.segment.test(x) || WAL_NAME.history.test(x)) && !known.has(x))) {
    const st = await fs.stat(path.join(c.archiveDir, n)).catch(() => null);
    if (st) known.set(n, { name: n, archived_at: st.mtime.toISOString() });
  }
  const hist = await readHistories(ctx, archive, recs.items, c.archiveDir);
  if (hist.problems.length) throw new RecoveryRefused(`${c.container}: ${hist.problems.join('; ')}`, c);
  const lost = historiesMissing(known.keys(), hist.histories);
  // The run of segments without a gap from the base backup's first one, along its timelines; the point must be inside it.
  const walk = walkChain(base, hist.histories, known.keys(), size);
  const reachable = walk.run.map((n) => known.get(n)!);
  const lastArchived = reachable.reduce((t, r) => (r.archived_at > t ? r.archived_at : t), base.finished_at);
  if (point > lastArchived)
    throw new RecoveryRefused(
      lost.length
        ? `${c.container}: ${missingHistoryProblem(lost)} (pgfleet basebackup ${ref(c).project} ${ref(c).environment}); recovery would stop at ${lastArchived}`
        : walk.missing.length
        ? `${c.container}: the WAL archive has a gap: ${walk.next} missing (needed to recover base backup ${base.id} to ${point}; recovery would stop at ${lastArchived}); take a new base backup`
        : `${c.container}: the WAL up to ${point} is not in the archive yet (its newest segment was archived ${lastArchived}): take it in first (pgfleet pitr archive)`,
      c,
    );
  if (!reachable.length) throw new RecoveryRefused(`${c.container}: no archived WAL from base backup ${base.id} on (${walk.next} first): run pgfleet pitr archive, or pitr check`, c);
  const after = reachable.findIndex((r) => r.archived_at > point);
  const staged = after < 0 ? reachable : reachable.slice(0, after + 1);
  const history = [...known.values()].filter((r) => WAL_NAME.history.test(r.name) && timelineOf(r.name) <= walk.timeline);
  const files = [...history, ...staged];
  return {
    point,
    target: after < 0 ? undefined : point,
    window,
    base,
    timeline: walk.timeline,
    timelines: describePath(walk, size),
    wal: files.flatMap((r) => (r.record ? [r.record] : [])),
    waiting: files.filter((r) => !r.record).map((r) => r.name),
    segments: { first: staged[0].name, last: staged.at(-1)!.name },
  };
}

/**
 * The space the temporary instance needs in the container's /tmp (the base backup unpacked: its
 * metadata's tar_size_bytes, or for metadata from before it was recorded, counted by
 * decompressing the tar on the host; the staged WAL twice: the staged copy and the one
 * restore_command puts in pg_wal; 64 MiB of room), against what `df` says is free there.
 * Refused (exit 2) when short, before anything is created. Read-only.
 */
export async function checkRecoverySpace(ctx: Context, c: Cluster, plan: RecoveryPlan): Promise<{ needed: number; available: number }> {
  const unpacked = plan.base.tar_size_bytes ?? (await countUnpacked(ctx, c, plan.base));
  const wal = plan.wal.reduce((n, r) => n + r.size_bytes, 0);
  const needed = unpacked + 2 * wal + (64 << 20);
  const df = ctx.containers.command(['exec', c.container, 'df', '-Pk', '/tmp'], ref(c));
  const out = (await ctx.runner.run(df.argv, { what: 'df (recovery space)', role: 'inspect', target: ref(c), env: df.env })).stdout.trim().split('\n').at(-1) ?? '';
  const available = Number(out.split(/\s+/)[3]) * 1024;
  if (!Number.isFinite(available)) throw new PgfleetError(`${c.container}: cannot read the free space of /tmp from df: ${JSON.stringify(out)}`, EXIT.FAILED, ref(c));
  if (available < needed)
    throw new RecoveryRefused(`${c.container}: /tmp has ${humanSize(available)} free; the temporary instance needs ${humanSize(needed)} (base backup ${plan.base.id} unpacked ${humanSize(unpacked)}, WAL ${humanSize(wal)} staged and replayed, 64 MiB of room): free space there first; nothing was started`, c);
  return { needed, available };
}

/** A base backup's tar size counted by decompressing it (metadata from before tar_size_bytes). */
async function countUnpacked(ctx: Context, c: Cluster, base: BaseBackupMetadata): Promise<number> {
  const archive = archiveOf(ctx, c);
  const count = ctx.runner.spawn(['zstd', '-dc', '--', archive.store.pathOf!(archive.baseKey(base.id))], { what: 'zstd -d (base backup size)', role: 'decompress', target: ref(c), signal: ctx.signal });
  let unpacked = 0;
  for await (const chunk of count.stdout as AsyncIterable<Buffer>) unpacked += chunk.length;
  await count.done;
  return unpacked;
}

export interface Recovered {
  base: BaseBackupMetadata;
  /** WAL files staged for replay. */
  wal: number;
  outFile: string;
  plan: RecoveryPlan;
  /** The metadata written beside `outFile` (`<outFile>.json`), when asked for (`describe`). */
  meta?: BackupMetadata;
}

/**
 * planRecovery, checkRecoverySpace, then the database dumped from the recovered instance into
 * `outFile` (0600). With `describe` (the database's target; `outFile` then named `<id>.dump`),
 * the instance's row counts (ROW_COUNTS_SQL, as a backup counts them; the instance is private and
 * nothing else writes to it, so they are the dump's) are written beside it as a backup's metadata
 * (lib/backup/record.ts), so that the safe restore checks the restored copy against them.
 */
export async function recoverDatabase(ctx: Context, c: Cluster, o: { to: Date | 'latest'; database: string; outFile: string; waitMs?: number; plan?: RecoveryPlan; describe?: Target }): Promise<Recovered> {
  const plan = o.plan ?? (await planRecovery(ctx, c, o.to));
  if (plan.waiting.length)
    throw new RecoveryRefused(`${c.container}: WAL ${plan.waiting[0]}${plan.waiting.length > 1 ? ` and ${plan.waiting.length - 1} more` : ''} needed to recover to ${plan.point} is still in the landing directory ${c.archiveDir}, not taken in: run pgfleet pitr archive`, c);
  await checkRecoverySpace(ctx, c, plan);
  return withRecoveryInstance(ctx, c, { base: plan.base, wal: plan.wal, target: plan.target, timeline: plan.timeline, waitMs: o.waitMs }, async ({ dir, on, psql }) => {
    const startedAt = ctx.clock();
    const t0 = performance.now();
    const facts = o.describe
      ? await Promise.all([
          psql(`SHOW server_version;\n${ROW_COUNTS_SQL}`, o.database),
          ctx.runner.run(on(['exec', c.container, 'pg_dump', '--version']).argv, { what: 'pg_dump --version', role: 'inspect', target: ref(c), env: on([]).env }).then((r) => r.stdout.trim().replace(/^pg_dump \(PostgreSQL\)\s*/, '')),
        ])
      : null;
    const out = createWriteStream(o.outFile, { mode: 0o600 });
    const tap = hashingTap();
    const dump = ctx.runner.spawn(on(['exec', c.container, 'pg_dump', '-Fc', '-h', dir, '-p', String(PORT), '-U', SUPERUSER, '-d', o.database]).argv, { what: 'pg_dump (recovered)', program: 'pg_dump', role: 'dump', via: ctx.containers.cli, target: ref(c), signal: ctx.signal, env: on([]).env });
    dump.stdout.pipe(tap.stream).pipe(out);
    await Promise.all([dump.done, once(out, 'finish')]);
    const recovered: Recovered = { base: plan.base, wal: plan.wal.length, outFile: o.outFile, plan };
    if (!o.describe || !facts) return recovered;
    const [[serverVersion], pgDumpVersion] = [facts[0].split('\n'), facts[1]];
    const id = path.basename(o.outFile, '.dump');
    const meta: BackupMetadata = {
      ...backupMetadata(o.describe, { id, type: 'manual', release: null, startedAt, durationMs: Math.round(performance.now() - t0), level: 0, container: c.container, preflight: { pgDumpVersion, serverVersion }, streamed: { size: tap.bytes(), sha256: tap.digest(), tables: parseRowCounts(facts[0]), partial: null } }),
      file: path.basename(o.outFile),
      compression: { algorithm: 'none', level: null },
      offsite: null,
    };
    const problems = schemaProblems('backup-metadata', meta);
    if (problems.length) throw new InternalError(`the recovered dump's metadata does not match its schema: ${problems.join('; ')}`);
    await fs.writeFile(o.outFile + META_EXT, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
    return { ...recovered, meta };
  });
}

/**
 * recoverDatabase into a temporary file with its metadata beside it (the row counts of the
 * recovered database, checked by the safe restore), `use` called with its path; the file (0600)
 * lives in a new private directory (0700) under backup_root (`.pitr-restore-<random>`, a name the
 * store never lists), removed always: also on failure or an abort. The file is named as a backup
 * of the recovered point would be (`db_<its UTC second>.dump`).
 */
export async function withRecoveredDump<T>(ctx: Context, c: Cluster, o: { plan: RecoveryPlan; database: string; waitMs?: number }, use: (file: string, r: Recovered) => Promise<T>): Promise<T> {
  const target = c.targets.find((t) => t.database === o.database);
  const dir = await fs.mkdtemp(path.join(ctx.config.platform.backupRoot, '.pitr-restore-'));
  try {
    await fs.chmod(dir, 0o700);
    const outFile = path.join(dir, `${backupStem(new Date(o.plan.point))}.dump`);
    const r = await recoverDatabase(ctx, c, { to: new Date(o.plan.point), plan: o.plan, database: o.database, outFile, waitMs: o.waitMs, describe: target });
    return await use(outFile, r);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The running temporary instance, as withRecoveryInstance hands it to its user. */
export interface RecoveryInstance {
  /** Its private directory in the container (data/, wal/, log; its socket). */
  dir: string;
  /** Container CLI argv (and env) on the target's container_host. */
  on: (args: string[]) => { argv: string[]; env: Record<string, string | undefined> };
  /** One SQL text (sent on stdin: psql meta-commands allowed) on the instance, in `database` (default postgres), unaligned tuples. */
  psql: (sql: string, database?: string) => Promise<string>;
}

/**
 * `base` and `wal` staged in a private directory of the cluster's container, a temporary
 * postmaster recovering them along `timeline` (recovery_target_timeline; its history file staged
 * with the WAL) to `target`, inclusive, then promote (without one: to the end of the staged WAL,
 * then promote), `use` called once it promoted; always, also on failure or an
 * abort: the postmaster stopped and the directory removed. The base backup's tar is hashed as it
 * is staged (its size and sha256 against its metadata: VerificationError, before the postmaster
 * starts); the WAL is copied as recorded (the caller checks it first when it must be whole).
 */
export async function withRecoveryInstance<T>(ctx: Context, c: Cluster, o: { base: BaseBackupMetadata; wal: readonly WalRecord[]; target?: string; timeline?: number; waitMs?: number }, use: (i: RecoveryInstance) => Promise<T>): Promise<T> {
  const { base, wal, target: to } = o;
  const archive = archiveOf(ctx, c);
  const on = (args: string[]) => ctx.containers.command(args, ref(c)); // every call on the target's container_host
  const dir = `/tmp/pgfleet-recover-${randomBytes(6).toString('hex')}`;
  const exec = (args: string[], extra: { input?: string | Readable; what: string }) =>
    ctx.runner.run(on(['exec', ...(extra.input !== undefined ? ['-i'] : []), c.container, ...args]).argv, { what: extra.what, role: 'setup', target: ref(c), input: extra.input, env: on([]).env });
  const bin = (await exec(['sh', '-c', 'dirname "$(readlink /proc/1/exe)"'], { what: 'find the server binaries' })).stdout.trim();
  const pgCtl = `${bin}/pg_ctl`;
  try {
    await exec(['mkdir', '-m', '700', dir, `${dir}/data`, `${dir}/wal`], { what: 'mkdir (recovery directory)' });
    // The stored tar hashed on the stream that stages it (as a restore checks a dump): damaged, nothing starts on it.
    const tap = hashingTap();
    let readFailed: Error | undefined;
    // A read that fails ends zstd (it would wait for the rest of its input), and is the error.
    const read = pipeline(createReadStream(archive.store.pathOf!(archive.baseKey(base.id)), { highWaterMark: 1 << 20 }), tap.stream, (e) => {
      if (!e) return;
      readFailed = e;
      base$.kill();
    });
    const base$: Spawned = ctx.runner.spawn(['zstd', '-dc'], { what: 'zstd -d (base backup)', program: 'zstd', role: 'decompress', signal: ctx.signal, input: read });
    await Promise.all([exec(['tar', '-x', '-C', `${dir}/data`], { input: base$.stdout, what: 'tar -x (base backup)' }), base$.done]).catch((e: unknown) => {
      if (ctx.signal?.aborted) throw e;
      if (readFailed) throw new PgfleetError(`base backup ${base.id}: its tar cannot be read: ${readFailed.message}`, EXIT.FAILED, ref(c));
      if (e instanceof CommandError && e.program === 'zstd') throw new VerificationError(`base backup ${base.id}: its tar does not decompress (damaged): ${e.stderrTail.trim().split('\n').at(-1)}; nothing was started on it`, ref(c));
      throw e;
    });
    const staged = { bytes: tap.bytes(), sha256: tap.digest() };
    if (staged.bytes !== base.size_bytes || staged.sha256 !== base.sha256)
      throw new VerificationError(`base backup ${base.id}: ${staged.bytes !== base.size_bytes ? `${staged.bytes} bytes read, metadata says ${base.size_bytes}` : `sha256 ${staged.sha256}, metadata says ${base.sha256}`} (damaged); nothing was started on it`, ref(c));
    for (const r of wal) {
      ctx.signal?.throwIfAborted();
      const z = ctx.runner.spawn(['zstd', '-dc', '--', archive.store.pathOf!(archive.walKey(r.name))], { what: `zstd -d (WAL ${r.name})`, role: 'decompress' });
      await Promise.all([exec(['sh', '-c', 'cat > "$1.part" && mv "$1.part" "$1"', 'sh', `${dir}/wal/${r.name}`], { input: z.stdout, what: `stage WAL ${r.name}` }), z.done]);
    }
    const conf = [`restore_command = 'cp ${dir}/wal/%f %p'`, ...(o.timeline ? [`recovery_target_timeline = '${o.timeline}'`] : []), ...(to ? [`recovery_target_time = '${to.replace('T', ' ').replace('Z', '+00')}'`, "recovery_target_action = 'promote'"] : []), 'archive_mode = off', ''].join('\n');
    await exec(['sh', '-c', 'cat >> "$1/data/postgresql.auto.conf" && touch "$1/data/recovery.signal"', 'sh', dir], { input: conf, what: 'recovery settings' });
    const logTail = () => exec(['tail', '-n', '15', `${dir}/log`], { what: 'the recovery log' }).then((r) => r.stdout.trim(), () => '(no log)');
    await exec([pgCtl, '-D', `${dir}/data`, '-w', '-t', '300', '-l', `${dir}/log`, '-o', `-c listen_addresses= -k ${dir} -p ${PORT} -c archive_mode=off`, 'start'], { what: 'pg_ctl start (recovery)' }).catch(async (e: Error) => {
      throw new PgfleetError(`${c.container}: the temporary instance did not start: ${e.message.split('\n')[0]}\n${await logTail()}`, EXIT.FAILED, ref(c));
    });
    const psql = (sql: string, database = 'postgres') =>
      exec(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(PORT), '-U', SUPERUSER, '-d', database], { input: sql, what: 'psql (recovery)' }).then((r) => r.stdout.trim());
    const until = performance.now() + (o.waitMs ?? 600_000);
    while ((await psql('select pg_is_in_recovery()')) !== 'f') {
      ctx.signal?.throwIfAborted();
      if (performance.now() > until) throw new PgfleetError(`${c.container}: recovery to ${to ?? 'the end of the archive'} did not finish in time`, EXIT.FAILED, ref(c));
      await new Promise((r) => setTimeout(r, 250));
    }
    return await use({ dir, on, psql });
  } finally {
    await exec([pgCtl, '-D', `${dir}/data`, '-m', 'immediate', 'stop'], { what: 'pg_ctl stop (recovery)' }).catch(() => undefined);
    await exec(['rm', '-rf', dir], { what: 'rm (recovery directory)' }).catch(() => undefined);
  }
}
