/**
 * The databases a safe restore keeps: the live database it replaced stays as
 * `<db>__before_<stamp>` (lib/postgres/dbadmin.ts names them) until dropped on purpose. A free
 * name for the next one, the ones earlier restores left, and putting one back after a failure.
 *
 * Promises: nothing here drops a database; swapBack acts only on a swap that happened (checked by
 * name), so it is safe to run from any point of a failed restore.
 */
import type { Target } from '../config/load.js';
import { beforeName, beforePrefix, databasesStartingWith, existing, swapDatabases } from '../postgres/dbadmin.js';
import type { PsqlSession } from '../postgres/psql.js';
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

/** The `<db>__before_<stamp>` databases earlier restores kept, oldest first. */
export async function leftoverDatabases(ctx: Context, target: Target): Promise<string[]> {
  const prefix = beforePrefix(target.database);
  const names = await databasesStartingWith(ctx.shellFor(target), prefix);
  return names.filter((n) => /^\d{8}_\d{6}(_\d+)?$/.test(n.slice(prefix.length)));
}
