/**
 * One database of a cluster as it was at a point in time, recovered next to the live cluster:
 *
 *   the newest base backup finished by the target (else: the window's earliest point named)
 *   → a private directory in the tenant's container (/tmp/pgfleet-recover-<random>)
 *   → the base backup's tar unpacked there, and the archived WAL from its start up to the first
 *     segment archived after the target (decompressed on the host, each copied in whole)
 *   → a temporary postmaster of the container's own binaries on that data directory, a private
 *     socket directory and port, no TCP, archive_mode off, restore_command reading the staged WAL,
 *     recovery_target_time (inclusive), then promote
 *   → pg_dump -Fc of the one database into `outFile` on the host
 *   → always, also on failure or an abort: the temporary postmaster stopped and its directory removed
 *
 * The live cluster is only read (its binaries, its container's /tmp); its data directory, its
 * socket and its other databases are never touched.
 */
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { EXIT, PgfleetError } from '../core/errors.js';
import type { BaseBackupMetadata, WalRecord } from '../formats/pitr.js';
import type { Context } from '../runtime/context.js';
import { archiveOf, ref, SUPERUSER, type Cluster } from './cluster.js';
import { segmentOfLsn } from './segments.js';

const PORT = 54329;

export interface Recovered {
  base: BaseBackupMetadata;
  /** WAL files staged for replay. */
  wal: number;
  outFile: string;
}

export async function recoverDatabase(ctx: Context, c: Cluster, o: { to: Date; database: string; outFile: string; waitMs?: number }): Promise<Recovered> {
  const archive = archiveOf(ctx, c);
  const [bases, recs] = await Promise.all([archive.baseBackups(), archive.walRecords()]);
  const to = o.to.toISOString();
  const base = bases.items.filter((b) => b.finished_at <= to).sort((a, b) => (a.finished_at < b.finished_at ? -1 : 1)).at(-1);
  const earliest = bases.items.map((b) => b.finished_at).sort()[0];
  if (!base) throw new PgfleetError(`${c.container}: ${to} is before the earliest restorable point (${earliest ?? 'no base backup'})`, EXIT.FAILED, ref(c));
  const size = recs.items.find((r) => r.kind === 'segment')?.size_bytes ?? 16 << 20;
  const first = segmentOfLsn(base.start_lsn, base.timeline, size);
  const segs = recs.items.filter((r) => r.kind === 'segment' && r.timeline === base.timeline && r.name >= first).sort((a, b) => (a.name < b.name ? -1 : 1));
  const after = segs.findIndex((r) => r.archived_at > to);
  if (after < 0) throw new PgfleetError(`${c.container}: ${to} is after the latest archived point (${segs.at(-1)?.archived_at ?? base.finished_at}); archive more WAL first (pitr check)`, EXIT.FAILED, ref(c));
  const wal = [...recs.items.filter((r) => r.kind === 'history'), ...segs.slice(0, after + 1)];

  return withRecoveryInstance(ctx, c, { base, wal, target: to, waitMs: o.waitMs }, async ({ dir, on }) => {
    const out = createWriteStream(o.outFile, { mode: 0o600 });
    const dump = ctx.runner.spawn(on(['exec', c.container, 'pg_dump', '-Fc', '-h', dir, '-p', String(PORT), '-U', SUPERUSER, '-d', o.database]).argv, { what: 'pg_dump (recovered)', program: 'pg_dump', role: 'dump', via: ctx.containers.cli, target: ref(c), signal: ctx.signal, env: on([]).env });
    dump.stdout.pipe(out);
    await Promise.all([dump.done, once(out, 'finish')]);
    return { base, wal: wal.length, outFile: o.outFile };
  });
}

/** The running temporary instance, as withRecoveryInstance hands it to its user. */
export interface RecoveryInstance {
  /** Its private directory in the container (data/, wal/, log; its socket). */
  dir: string;
  /** Container CLI argv (and env) on the target's container_host. */
  on: (args: string[]) => { argv: string[]; env: Record<string, string | undefined> };
  /** One query on the instance, unaligned tuples. */
  psql: (sql: string) => Promise<string>;
}

/**
 * `base` and `wal` staged in a private directory of the cluster's container, a temporary
 * postmaster recovering them (to `target`, inclusive, then promote; without one: to the end of
 * the staged WAL, then promote), `use` called once it promoted; always, also on failure or an
 * abort: the postmaster stopped and the directory removed. The WAL is copied as recorded (the
 * caller checks it first when it must be whole).
 */
export async function withRecoveryInstance<T>(ctx: Context, c: Cluster, o: { base: BaseBackupMetadata; wal: readonly WalRecord[]; target?: string; waitMs?: number }, use: (i: RecoveryInstance) => Promise<T>): Promise<T> {
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
    const base$ = ctx.runner.spawn(['zstd', '-dc', '--', archive.store.pathOf!(archive.baseKey(base.id))], { what: 'zstd -d (base backup)', role: 'decompress', signal: ctx.signal });
    await Promise.all([exec(['tar', '-x', '-C', `${dir}/data`], { input: base$.stdout, what: 'tar -x (base backup)' }), base$.done]);
    for (const r of wal) {
      ctx.signal?.throwIfAborted();
      const z = ctx.runner.spawn(['zstd', '-dc', '--', archive.store.pathOf!(archive.walKey(r.name))], { what: `zstd -d (WAL ${r.name})`, role: 'decompress' });
      await Promise.all([exec(['sh', '-c', 'cat > "$1.part" && mv "$1.part" "$1"', 'sh', `${dir}/wal/${r.name}`], { input: z.stdout, what: `stage WAL ${r.name}` }), z.done]);
    }
    const conf = [`restore_command = 'cp ${dir}/wal/%f %p'`, ...(to ? [`recovery_target_time = '${to.replace('T', ' ').replace('Z', '+00')}'`, "recovery_target_action = 'promote'"] : []), 'archive_mode = off', ''].join('\n');
    await exec(['sh', '-c', 'cat >> "$1/data/postgresql.auto.conf" && touch "$1/data/recovery.signal"', 'sh', dir], { input: conf, what: 'recovery settings' });
    const logTail = () => exec(['tail', '-n', '15', `${dir}/log`], { what: 'the recovery log' }).then((r) => r.stdout.trim(), () => '(no log)');
    await exec([pgCtl, '-D', `${dir}/data`, '-w', '-t', '300', '-l', `${dir}/log`, '-o', `-c listen_addresses= -k ${dir} -p ${PORT} -c archive_mode=off`, 'start'], { what: 'pg_ctl start (recovery)' }).catch(async (e: Error) => {
      throw new PgfleetError(`${c.container}: the temporary instance did not start: ${e.message.split('\n')[0]}\n${await logTail()}`, EXIT.FAILED, ref(c));
    });
    const psql = (sql: string) => exec(['psql', '-X', '-A', '-t', '-h', dir, '-p', String(PORT), '-U', SUPERUSER, '-d', 'postgres', '-c', sql], { what: 'psql (recovery)' }).then((r) => r.stdout.trim());
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
