/**
 * psql sessions kept open between the backups of one fleet run (scheduled-backup), so that a
 * target's snapshot session costs no container exec and no psql start of its own: a kept session
 * of the same server, role and credentials (TargetShell.identity) is moved to the next target's
 * database with \connect, a new backend on which nothing of the last one's transaction or settings
 * is left. And what a server said about itself (its version) is kept per place (container and host),
 * for the direct path to its client programs (clientPath).
 *
 * Promises: a session is kept only when its lease ended cleanly (close() after every query
 * answered); a lease that failed or was killed ends its psql, so a broken session is never lent
 * again. A kept session that cannot be moved to the next database is ended and that lease gets a
 * new session, whose own error (a missing database, a refused password) is the lease's, exactly
 * as without the pool. A kept session is lent to one lease at a time. close() quits them all.
 */
import { PgfleetError } from '../core/errors.js';
import type { TargetShell } from '../process/container.js';
import { PsqlSession } from './psql.js';

/** What a backup needs of its snapshot session: PsqlSession, or a lease of a kept one. */
export interface Session {
  query(sql: string, signal?: AbortSignal): Promise<string>;
  /** The session's last use: quits psql (a lease: hands it back to be kept); rejects with its failure. */
  close(): Promise<void>;
  /** End it now; a query still running on the server is ended too. */
  kill(): void;
}

/**
 * Where Debian's packages (and so the official postgres image) install the client programs of a
 * major version. On PATH, /usr/bin/<program> is postgresql-common's pg_wrapper, a Perl script that
 * starts before every program to choose a version; a dump goes straight to the binary of the
 * server's own major instead (always new enough for its server).
 */
const DEBIAN_BINDIR = (major: string) => `/usr/lib/postgresql/${major}/bin`;

/** The major version as Debian names its directory: "15" for 15.4, "9.6" for 9.6.24. */
export function debianMajor(serverVersion: string): string | null {
  const m = /^(\d+)(?:\.(\d+))?/.exec(serverVersion.trim());
  if (!m) return null;
  return Number(m[1]) >= 10 || m[2] === undefined ? m[1] : `${m[1]}.${m[2]}`;
}

export class SessionPool {
  private readonly kept = new Map<string, PsqlSession[]>();
  private readonly versions = new Map<string, string>();
  /** Sessions started, and leases served by a kept one (the debug log's figures). */
  readonly counts = { opened: 0, reused: 0 };

  /** A session on `database`, reached through `sh`: a kept one of the same identity moved there, else a new psql. */
  lease(sh: TargetShell, database: string): Session {
    const key = sh.identity;
    const kept = this.kept.get(key)?.pop();
    const session = kept ? this.move(kept, sh, database) : Promise.resolve(this.open(sh, database));
    return new Lease(session, (s) => this.keep(key, s));
  }

  private open(sh: TargetShell, database: string): PsqlSession {
    this.counts.opened++;
    return PsqlSession.open(sh, database);
  }

  private async move(kept: PsqlSession, sh: TargetShell, database: string): Promise<PsqlSession> {
    try {
      await kept.connect(database);
      this.counts.reused++;
      return kept;
    } catch {
      // Gone (its backend terminated, the container restarted) or refused: this target's own session says why.
      kept.kill();
      return this.open(sh, database);
    }
  }

  private keep(key: string, s: PsqlSession): void {
    const list = this.kept.get(key) ?? [];
    list.push(s);
    this.kept.set(key, list);
  }

  /** The server reached through `sh` reported this version (SHOW server_version). */
  serverSeen(sh: TargetShell, version: string): void {
    this.versions.set(sh.place, version);
  }

  /**
   * The direct path of `program` for the server `sh` reaches, by Debian's layout, once its version
   * is known; '' before. The caller checks that it exists there and falls back to the program's
   * name on PATH (an alpine image's /usr/local/bin, a host without Debian's packages).
   */
  clientPath(sh: TargetShell, program: string): string {
    const v = this.versions.get(sh.place);
    const major = v === undefined ? null : debianMajor(v);
    return major ? `${DEBIAN_BINDIR(major)}/${program}` : '';
  }

  /** Quit every kept session (each waits for nothing: kept sessions are idle). */
  async close(): Promise<void> {
    const all = [...this.kept.values()].flat();
    this.kept.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }
}

/** One backup's use of a session; its close() hands a healthy session back to the pool. */
class Lease implements Session {
  private session?: PsqlSession;
  private killed = false;
  private returned = false;

  constructor(
    private readonly ready: Promise<PsqlSession>,
    private readonly giveBack: (s: PsqlSession) => void,
  ) {
    ready.then(
      (s) => {
        this.session = s;
        if (this.killed) s.kill();
      },
      () => undefined,
    );
  }

  query(sql: string, signal?: AbortSignal): Promise<string> {
    return this.ready.then((s) => s.query(sql, signal));
  }

  async close(): Promise<void> {
    const s = await this.ready;
    await s.idle(); // a killed or failed session rejects here and is never kept
    if (this.killed) throw new PgfleetError('psql session closed');
    this.returned = true;
    this.giveBack(s);
  }

  /** Ends the session, unless it was handed back (then it is no longer this lease's: another may hold it). */
  kill(): void {
    if (this.returned) return;
    this.killed = true;
    this.session?.kill();
  }
}
