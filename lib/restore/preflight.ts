/**
 * The preflight of a safe restore over a live database (lib/restore/over.ts): what can be known
 * wrong before anything is touched, asked while the dump is staged. The target's container runs;
 * the live database exists (its properties, which the swap gives the restored copy); the role may
 * create and rename databases; the name the live database will be kept under is free; every app
 * container exists (and whether it runs, so that only those running are stopped and started).
 *
 * Promises: reads only, through the caller's maintenance session; a reason to refuse is returned
 * as data (the caller closes what it opened, then refuses), a failure to ask is thrown.
 */
import type { Target } from '../config/load.js';
import { canCreateDatabases, dbProps, type DbProps } from '../postgres/dbadmin.js';
import type { PsqlSession } from '../postgres/psql.js';
import type { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import { freeBeforeName } from './kept.js';

export interface Preflight {
  /** The live database's properties. */
  props: DbProps;
  /** The free `<db>__before_<stamp>` name the live database will be kept under. */
  keepAs: string;
  /** Each app container: running (to stop, and start again) or not (left as it is). */
  appState: Map<string, boolean>;
}

export async function preflight(ctx: Context, target: Target, sh: TargetShell, admin: PsqlSession, now: Date, signal?: AbortSignal): Promise<Preflight | { refusal: string }> {
  const ref = { project: target.project, environment: target.environment };
  const where = `${target.project}/${target.environment}`;
  const live = target.database;
  if (target.container) await ctx.containers.requireRunning(target.container, ref);
  const [props, mayCreate, keepAs, apps] = await Promise.all([
    dbProps(sh, live, { signal, session: admin }),
    canCreateDatabases(sh, admin),
    freeBeforeName(sh, live, now, admin),
    Promise.all(target.appContainers.map(async (c) => [c, await ctx.containers.isRunning(c, ref)] as const)),
  ]);
  if (!props) return { refusal: `${where}: database "${live}" does not exist (${sh.where}); to create it from the dump, restore with --into ${live}` };
  if (!mayCreate) return { refusal: `${where}: role ${target.user ?? '(default)'} may not create or rename databases; a safe restore needs CREATEDB (ALTER ROLE … CREATEDB)` };
  const appState = new Map<string, boolean>();
  for (const [c, r] of apps) {
    if (r === null) return { refusal: `${where}: app container "${c}" (database.app_containers.${target.environment}) does not exist` };
    appState.set(c, r);
  }
  return { props, keepAs, appState };
}
