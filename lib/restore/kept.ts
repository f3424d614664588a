/**
 * The databases a safe restore keeps: the live database it replaced stays as
 * `<db>__before_<stamp>` (lib/postgres/dbadmin.ts names them) until dropped on purpose. A free
 * name for the next one, the ones earlier restores left, and putting one back after a failure.
 *
 * Promises: nothing here drops a database; swapBack acts only on a swap that happened (checked by
 * name), so it is safe to run from any point of a failed restore.
 */
import type { Target } from '../config/load.js';
import { BEFORE_MARK, beforeName, beforePrefix, databasesStartingWith, existing, MAINTENANCE_DB, swapDatabases } from '../postgres/dbadmin.js';
import { literal, psql, type PsqlSession } from '../postgres/psql.js';
import type { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';

/** The first `<db>__before_<stamp>[_n]` name not taken on the server. */
export async function freeBeforeName(sh: TargetShell, live: string, at: Date, session: PsqlSession): Promise<string> {
  const taken = new Set(await databasesStartingWith(sh, beforePrefix(live), session));
  for (let n = 1; ; n++) if (!taken.has(beforeName(live, at, n))) return beforeName(live, at, n);
}

/** Undo a swap that happened (checked by name): live → scratch name (dropped next), kept → live. */
export async function swapBack(sh: TargetShell, live: string, keepAs: string, scratch: string): Promise<void> {
  const present = await existing(sh, [live, keepAs, scratch]);
  if (!present.includes(keepAs)) return; // the swap never happened
  await swapDatabases(sh, live, keepAs, scratch);
}

/** Of a server's database names, the `<db>__before_<stamp>` ones kept for `database`, in the order given. */
export function keptOf(database: string, names: readonly string[]): string[] {
  const prefix = beforePrefix(database);
  return names.filter((n) => n.startsWith(prefix) && /^\d{8}_\d{6}(_\d+)?$/.test(n.slice(prefix.length)));
}

/** The `<db>__before_<stamp>` databases earlier restores kept, oldest first. */
export async function leftoverDatabases(ctx: Context, target: Target): Promise<string[]> {
  return keptOf(target.database, await databasesStartingWith(ctx.shellFor(target), beforePrefix(target.database)));
}

/**
 * Which targets one look at pg_database answers for: the same server (container host and
 * container) reached as the same role. A target reached by DATABASE_URL is a group of its own.
 */
export function serverKey(ctx: Pick<Context, 'containers'>, target: Target): string {
  if (!target.container) return `url:${target.project}/${target.environment}`;
  return JSON.stringify([ctx.containers.hostOf({ project: target.project, environment: target.environment }) ?? null, target.container, target.user ?? null]);
}

/**
 * leftoverDatabases for many targets, with ONE psql call per server (serverKey): it lists every
 * `…__before_…` database there, sorted, and each target takes its own. A server that cannot be
 * reached gives null for each of its targets (unknown, never "none").
 */
export async function leftoverDatabasesOf(ctx: Context, targets: readonly Target[]): Promise<Map<Target, string[] | null>> {
  const groups = new Map<string, Target[]>();
  for (const t of targets) groups.set(serverKey(ctx, t), [...(groups.get(serverKey(ctx, t)) ?? []), t]);
  const out = new Map<Target, string[] | null>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const names = await keptCandidates(ctx, group[0]).catch(() => null);
      for (const t of group) out.set(t, names && keptOf(t.database, names));
    }),
  );
  return out;
}

/** Every database on the target's server whose name holds the kept mark, sorted. */
async function keptCandidates(ctx: Context, target: Target): Promise<string[]> {
  const out = await psql(ctx.shellFor(target), MAINTENANCE_DB, `SELECT datname FROM pg_database WHERE strpos(datname, ${literal(BEFORE_MARK)}) > 0 ORDER BY 1`);
  return out.split('\n').filter(Boolean);
}
