/**
 * Free space on backup_root against what the next dumps need. The expected size of a target's
 * next dump is its newest complete backup's size × SPACE_MARGIN (a dump rarely grows by half from
 * one night to the next); a target never backed up has no estimate and is not checked.
 *
 * Promises: freeBytes() reads the filesystem's statfs (the blocks an unprivileged writer may use)
 * of backup_root, or of its nearest existing parent before the first backup creates it; null for a
 * store that is not a local directory. checkSpace() throws InsufficientSpaceError (exit 1) before
 * anything is written when the free space is below the target's expected size; it never writes.
 */
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError } from '../core/errors.js';
import { humanSize } from '../core/text.js';
import type { Context } from '../runtime/context.js';

/** Expected size of the next dump = the newest complete backup's size × this. */
export const SPACE_MARGIN = 1.5;

export class InsufficientSpaceError extends PgfleetError {
  constructor(
    target: Target,
    readonly freeBytes: number,
    readonly neededBytes: number,
    root: string,
    latest: number,
  ) {
    super(
      `${target.project}/${target.environment}: not enough free space on ${root} for the next dump: ${humanSize(freeBytes)} free, ${humanSize(neededBytes)} expected (the previous backup's ${humanSize(latest)} × ${SPACE_MARGIN}); nothing dumped. Free space, move backup_root, or prune`,
      EXIT.FAILED,
      { project: target.project, environment: target.environment },
    );
  }
}

/** Bytes free for an unprivileged writer on the filesystem of `ctx.repo`'s root; null when it is not local. */
export async function freeBytes(ctx: Pick<Context, 'repo'>): Promise<number | null> {
  if (!ctx.repo.store.pathOf) return null;
  for (let dir = ctx.repo.root; ; dir = path.dirname(dir)) {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(dir) === dir) throw e;
    }
  }
}

/** The expected size of a target's next dump (null: never backed up, no estimate). */
export async function expectedBytes(ctx: Pick<Context, 'repo'>, target: Target): Promise<{ needed: number; latest: number } | null> {
  const [latest] = await ctx.repo.list(target.project, target.environment);
  return latest ? { needed: Math.ceil(latest.meta.size_bytes * SPACE_MARGIN), latest: latest.meta.size_bytes } : null;
}

/** Refuse (InsufficientSpaceError) when backup_root has less free space than the target's next dump is expected to need. */
export async function checkSpace(ctx: Pick<Context, 'repo'>, target: Target): Promise<void> {
  const expected = await expectedBytes(ctx, target);
  if (!expected) return;
  const free = await freeBytes(ctx);
  if (free !== null && free < expected.needed) throw new InsufficientSpaceError(target, free, expected.needed, ctx.repo.root, expected.latest);
}

/** backup_root's free bytes against what the next run of every enabled target is expected to need (null: not a local store). */
export interface DiskOutlook {
  backup_root: string;
  free_bytes: number;
  /** Sum of the enabled targets' expected next dumps (targets never backed up count 0). */
  needed_bytes: number;
  /** Set when free_bytes < needed_bytes. */
  warning?: string;
}

export async function diskOutlook(ctx: Pick<Context, 'repo' | 'config'>): Promise<DiskOutlook | null> {
  const free = await freeBytes(ctx);
  if (free === null) return null;
  const expected = await Promise.all(ctx.config.targets.filter((t) => t.backup.enabled).map((t) => expectedBytes(ctx, t)));
  const needed = expected.reduce((a, e) => a + (e?.needed ?? 0), 0);
  const out: DiskOutlook = { backup_root: ctx.repo.root, free_bytes: free, needed_bytes: needed };
  if (free < needed) out.warning = `${ctx.repo.root} has ${humanSize(free)} free; the next run of the enabled targets is expected to need ${humanSize(needed)} (each one's previous backup × ${SPACE_MARGIN}): free space, or backups will be refused`;
  return out;
}
