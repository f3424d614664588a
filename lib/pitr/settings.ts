/**
 * Judging a cluster's archiving (pure): from its settings, pg_stat_archiver and its mounts, what
 * is wrong and the exact lines that fix it. `pitr check` (lib/pitr/check.ts) prints the verdict.
 *
 * The one archive_command pgfleet accepts is the safe form: a segment is copied under a `.part`
 * name and renamed into place, so no partial segment ever looks whole in the landing directory
 * (a plain `cp` shows a half-written file under the final name), and an existing file is never
 * overwritten (`test ! -f`, which makes a repeat fail rather than replace).
 */

/** Where the landing directory is mounted inside the container, by default. */
export const ARCHIVE_MOUNT = '/wal-archive';

export const safeArchiveCommand = (dir: string = ARCHIVE_MOUNT) => `test ! -f ${dir}/%f && cp %p ${dir}/%f.part && mv ${dir}/%f.part ${dir}/%f`;

/** The in-container directory of a safe archive_command, or null when it is not that form. */
export function archiveDirOf(command: string): string | null {
  const m = /^\s*test\s+!\s+-f\s+(\/[^\s%]*?)\/%f\s*&&\s*cp\s+(?:-f\s+)?%p\s+(\/[^\s%]*?)\/%f\.part\s*&&\s*mv\s+(?:-f\s+)?(\/[^\s%]*?)\/%f\.part\s+(\/[^\s%]*?)\/%f\s*$/.exec(command);
  return m && m.slice(2).every((d) => d === m[1]) ? m[1] : null;
}

export interface ClusterState {
  settings: Record<string, string>;
  archiver: { archived_count: number; failed_count: number; last_archived_wal: string | null; last_archived_time: string | null; last_failed_wal: string | null; last_failed_time: string | null };
  /** The container's bind mounts. */
  mounts: { source: string; destination: string }[];
}

export interface Verdict {
  /** What is wrong, one sentence each. Empty: healthy. */
  problems: string[];
  /** postgresql.conf lines to set (restart the container after wal_level or archive_mode). */
  settings: string[];
  /** The mount to add, when the landing directory is not mounted where archive_command writes. */
  mount?: string;
  /** Where archive_command writes inside the container (the safe form's, else the default). */
  dir: string;
  notes: string[];
}

/** What `landingDir` (the host's, resolved) lacks to receive this cluster's WAL; maxWalAgeMs bounds archive_timeout. */
export function judge(s: ClusterState, landingDir: string, maxWalAgeMs: number): Verdict {
  const v: Verdict = { problems: [], settings: [], dir: ARCHIVE_MOUNT, notes: [] };
  const set = (line: string) => v.settings.push(line);
  const wal = s.settings.wal_level;
  if (wal !== 'replica' && wal !== 'logical') {
    v.problems.push(`wal_level is ${wal ?? 'unknown'}: archived WAL can rebuild the cluster only at replica or logical`);
    set('wal_level = replica');
  }
  if (s.settings.archive_mode !== 'on' && s.settings.archive_mode !== 'always') {
    v.problems.push(`archive_mode is ${s.settings.archive_mode ?? 'unknown'}: nothing is archived`);
    set('archive_mode = on');
  }
  const library = s.settings.archive_library ?? '';
  const cmd = s.settings.archive_command ?? '';
  const dir = archiveDirOf(cmd);
  if (dir) v.dir = dir;
  if (library) v.problems.push(`archive_library is ${JSON.stringify(library)}: it replaces archive_command; pgfleet takes WAL from archive_command's directory only (set archive_library = '')`);
  if (!dir) {
    v.problems.push(
      cmd === '(disabled)'
        ? 'archive_command cannot be judged while archive_mode is off (PostgreSQL shows it as "(disabled)"); set the safe form with archive_mode'
        : !cmd
        ? 'archive_command is not set'
        : `archive_command is not the safe form (copy to %f.part, then rename; never overwrite): ${JSON.stringify(cmd)}${/\bcp\b/.test(cmd) && !cmd.includes('.part') ? ' copies straight to the final name, so a half-copied segment can look whole' : ''}`,
    );
    set(`archive_command = '${safeArchiveCommand(v.dir)}'`);
  }
  if (library) set("archive_library = ''");
  const timeout = Number(s.settings.archive_timeout ?? '0');
  const bound = Math.floor(maxWalAgeMs / 1000);
  if (!(timeout > 0) || timeout > bound) {
    v.problems.push(`archive_timeout is ${timeout}s: ${timeout > 0 ? `above max_wal_age (${bound}s), so a quiet cluster looks stale` : 'a quiet cluster never switches segments, so its last writes are never archived'}`);
    set(`archive_timeout = ${Math.min(60, bound)}`);
  }
  if (Number(s.settings.max_wal_senders ?? '0') < 1) {
    v.problems.push('max_wal_senders is 0: pg_basebackup needs a WAL sender');
    set('max_wal_senders = 4');
  }
  const a = s.archiver;
  if (a.failed_count > 0 && a.last_failed_time && (!a.last_archived_time || a.last_failed_time > a.last_archived_time))
    v.problems.push(`the archiver is failing: ${a.failed_count} failure(s), the last for ${a.last_failed_wal} at ${a.last_failed_time}, no success since (the server log says why: a missing or unwritable ${v.dir}, or a file of that name already there)`);
  else if (a.failed_count > 0) v.notes.push(`${a.failed_count} earlier archiver failure(s), the last for ${a.last_failed_wal} at ${a.last_failed_time}; archiving has succeeded since`);
  const mounted = s.mounts.find((m) => m.destination === v.dir);
  if (!mounted || mounted.source !== landingDir) {
    v.problems.push(mounted ? `${v.dir} in the container is ${mounted.source} on the host, not the archive_dir ${landingDir}` : `${v.dir} is not mounted from the host: segments would stay inside the container`);
    v.mount = `-v ${landingDir}:${v.dir}`;
  }
  return v;
}
