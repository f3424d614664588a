/**
 * `pgfleet list [<project> [<env>]] [--json]`: the complete backups of the selected targets.
 *
 *   select the targets → each one's complete backups (lib/storage/repository.ts) → newest first
 *   → --json: an array of ListedBackup · else a table (target, id, type, time, size, verification, path)
 *
 * Read-only: takes no lock, writes nothing. A dump without complete metadata is not a backup and
 * is never listed.
 */
import { selectTargets } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';
import { newestFirst } from '../formats/metadata.js';
import { humanSize, renderTable } from '../core/text.js';

export interface ListedBackup {
  id: string;
  project: string;
  environment: string;
  database: string;
  type: string;
  release: string | null;
  created_at: string;
  size_bytes: number;
  sha256: string;
  path: string;
  verification: { status: string; verified_at: string; error?: string } | null;
}

export function listed(b: StoredBackup): ListedBackup {
  const m = b.meta;
  return {
    id: m.id,
    project: m.project,
    environment: m.environment,
    database: m.database,
    type: m.type,
    release: m.release,
    created_at: m.created_at,
    size_bytes: m.size_bytes,
    sha256: m.sha256,
    path: b.path,
    verification: m.verification ? { status: m.verification.status, verified_at: m.verification.verified_at, ...(m.verification.error ? { error: m.verification.error } : {}) } : null,
  };
}

export async function runList(ctx: Context, o: { project?: string; environment?: string; json?: boolean }): Promise<ListedBackup[]> {
  const targets = selectTargets(ctx.config, o.project, o.environment);
  const all = (await Promise.all(targets.map((t) => ctx.repo.list(t.project, t.environment)))).flat().map(listed);
  all.sort(newestFirst);
  if (o.json) {
    ctx.out(JSON.stringify(all, null, 2));
    return all;
  }
  if (!all.length) {
    ctx.out('no backups');
    return all;
  }
  const rows = all.map((b) => [
    `${b.project}/${b.environment}`,
    b.id,
    b.type,
    b.created_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    humanSize(b.size_bytes),
    b.verification ? `${b.verification.status} ${b.verification.verified_at.slice(0, 10)}` : 'unverified',
    b.path,
  ]);
  for (const l of renderTable(['TARGET', 'ID', 'TYPE', 'CREATED (UTC)', 'SIZE', 'VERIFIED', 'PATH'], rows)) ctx.out(l);
  return all;
}
