/**
 * A base backup of a cluster (`basebackup`, and `scheduled-backup` when one is due):
 *
 *   container running → the server's version and databases → under the cluster's lock: a fresh id
 *   → pg_basebackup -D - -Ft -X fetch -c fast -v inside the container → the tar's byte count →
 *     zstd on the host → sha256 + byte count → the Store: _clusters/<container>/base/<id>.tar.zst
 *     (atomic)
 *   → its metadata (start/stop LSN and timeline from pg_basebackup -v, times, version,
 *     databases, the tar's size and the stored object's), written last
 *
 * Promises: the tar is streamed (`-D -`): nothing of the cluster is written inside the container,
 * none of it held in this process. The object ends only once pg_basebackup and zstd exited 0, so
 * a failed backup never becomes an object; a failure after the save (the metadata's) removes it.
 * With -X fetch the tar holds the WAL it needs: it starts on its own, without the archive.
 */
import { pipeline } from 'node:stream';
import { EXIT, InternalError, PgfleetError } from '../core/errors.js';
import { hashingTap } from '../core/hashing.js';
import type { BaseBackupMetadata } from '../formats/pitr.js';
import { VERSION } from '../core/package.js';
import type { Context } from '../runtime/context.js';
import { archiveOf, clusterSql, ref, SUPERUSER, withClusterLock, type Cluster } from './cluster.js';

export const BASE_ZSTD_LEVEL = 3;

const INFO_SQL = `select json_build_object('version_num', current_setting('server_version_num')::int, 'version', version(),
  'databases', (select json_agg(datname order by datname) from pg_database where not datistemplate))`;

/** The WAL points pg_basebackup -v reports on stderr; null when it did not say them. */
export function parseBasebackupLog(stderr: string): { startLsn: string; timeline: number; stopLsn: string } | null {
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/.exec(stderr);
  const stop = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/.exec(stderr);
  return start && stop ? { startLsn: start[1], timeline: Number(start[2]), stopLsn: stop[1] } : null;
}

/**
 * pg_basebackup's refusal for want of replication rights (the role lacks REPLICATION, or no
 * pg_hba.conf line allows it a replication connection, or max_wal_senders is 0), as a clear error
 * naming the role and what to grant; null for any other failure.
 */
export function replicationRightsError(stderr: string, container: string, role: string): string | null {
  const grant = `run in ${container}: ALTER ROLE ${role} REPLICATION; and let it connect for replication over the local socket with a pg_hba.conf line "local replication ${role} peer" (or trust, as initdb writes), then SELECT pg_reload_conf()`;
  if (/must be superuser or replication role|permission denied to start WAL sender|must have the REPLICATION attribute/i.test(stderr)) return `${container}: role ${role} may not take a base backup: it lacks the REPLICATION attribute; ${grant}`;
  if (/no pg_hba\.conf entry for replication connection/i.test(stderr)) return `${container}: role ${role} may not take a base backup: pg_hba.conf allows it no replication connection; ${grant}`;
  if (/number of requested standby connections exceeds max_wal_senders|max_wal_senders/i.test(stderr)) return `${container}: no WAL sender is free for the base backup (max_wal_senders): set max_wal_senders to at least 2 and restart the cluster`;
  return null;
}

export async function takeBaseBackup(ctx: Context, c: Cluster, command = 'basebackup'): Promise<BaseBackupMetadata> {
  await ctx.containers.requireRunning(c.container, ref(c));
  const info = JSON.parse(await clusterSql(ctx, c, INFO_SQL)) as { version_num: number; version: string; databases: string[] };
  const shell = ctx.shellFor(c.targets[0]);
  const pbVersion = (await shell.run('pg_basebackup', ['--version'], { role: 'dump' })).stdout.trim();
  return withClusterLock(ctx, c, command, async () => {
    const archive = archiveOf(ctx, c);
    const started = ctx.clock();
    const id = await archive.newBaseId(started);
    const zstd = ctx.runner.spawn(['zstd', `-${BASE_ZSTD_LEVEL}`, '-T0', '-q', '-c'], { what: 'zstd (base backup)', role: 'compress', target: ref(c), signal: ctx.signal });
    const pb = shell.spawn('pg_basebackup', ['-D', '-', '-Ft', '-X', 'fetch', '-c', 'fast', '-v', '-w', '-U', SUPERUSER], { role: 'dump', signal: ctx.signal });
    // The plaintext tar counted on its way into zstd: what it unpacks to (recover.ts's space check).
    const plain = hashingTap();
    pipeline(pb.stdout, plain.stream, zstd.stdin, () => undefined);
    const finished = Promise.all([pb.done, zstd.done]);
    finished.catch(() => undefined);
    const tap = hashingTap(finished);
    pipeline(zstd.stdout, tap.stream, () => undefined);
    let saved;
    try {
      saved = await archive.saveBase(id, tap.stream, { signal: ctx.signal });
      await finished;
    } catch (e) {
      pb.kill();
      zstd.kill();
      await Promise.allSettled([pb.done, zstd.done]);
      const rights = ctx.signal?.aborted ? null : replicationRightsError(pb.stderrTail(), c.container, SUPERUSER);
      if (rights) throw new PgfleetError(rights, EXIT.USAGE, ref(c), { cause: e });
      throw e;
    }
    if (saved.size !== tap.bytes()) throw new InternalError(`the store saved ${saved.size} bytes of the ${tap.bytes()} streamed`);
    try {
      const points = parseBasebackupLog(pb.stderrTail());
      if (!points) throw new PgfleetError(`${c.container}: pg_basebackup -v did not report its WAL start and end points: ${pb.stderrTail().trim()}`, EXIT.FAILED, ref(c));
      const meta: BaseBackupMetadata = {
        format_version: 1,
        id,
        container: c.container,
        file: `${id}.tar.zst`,
        size_bytes: saved.size,
        sha256: tap.digest(),
        tar_size_bytes: plain.bytes(),
        compression: { algorithm: 'zstd', level: BASE_ZSTD_LEVEL },
        started_at: started.toISOString(),
        finished_at: ctx.clock().toISOString(),
        start_lsn: points.startLsn,
        stop_lsn: points.stopLsn,
        timeline: points.timeline,
        server_version_num: info.version_num,
        server_version: info.version,
        databases: info.databases,
        pg_basebackup_version: pbVersion,
        pgfleet_version: VERSION,
      };
      await archive.saveBaseMeta(meta);
      return meta;
    } catch (e) {
      await archive.store.remove(archive.baseMetaKey(id)).catch(() => undefined);
      await archive.store.remove(archive.baseKey(id)).catch(() => undefined);
      throw e;
    }
  });
}
