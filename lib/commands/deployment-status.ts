/**
 * `pgfleet deployment-status <project> <env> [--release R] [--json]`: the latest (or the named)
 * deployment manifest and the recent history. Reads only; takes no lock.
 *
 * --json prints the manifest itself. Exit: 0 · 1 no deployment recorded · 2 unknown release, or an
 * unusable manifest among the target's (each named, with its problem, on stderr).
 */
import { findTarget } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import type { DeploymentManifest, StoredManifest } from '../storage/manifests.js';
import { EXIT } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { howEnded, renderTable } from '../core/text.js';
import { chooseManifest } from '../deployments/choose.js';

export interface DeploymentStatusOptions {
  project: string;
  environment: string;
  release?: string;
  json?: boolean;
  /** How many history lines to show (default 10). */
  history?: number;
}

function statusWord(m: DeploymentManifest): string {
  if (m.status === 'rolled-back') return `rolled back ${m.rollback?.finished_at ?? m.rollback?.started_at ?? ''} (${m.rollback?.outcome ?? '?'})`.replace('  ', ' ');
  if (m.rollback?.outcome === 'restore-failed') return 'deployed (a rollback attempt failed)';
  return 'deployed';
}

function describe(s: StoredManifest, latest: boolean): string[] {
  const m = s.manifest;
  const lines = [
    `${m.project}/${m.environment}: ${latest ? 'latest release' : 'release'} ${m.release}, deployed ${m.created_at}, ${statusWord(m)}`,
    `  previous release  ${m.previous_release ?? '(none)'}`,
    `  pre-deploy backup ${m.backup}  ${m.database_backup}`,
    `  manifest          ${s.file}`,
  ];
  for (const c of m.app_containers) lines.push(`  app container     ${c.name}  ${c.image ?? '(image unknown)'}`);
  const r = m.rollback;
  if (r) {
    lines.push(`  rollback          ${r.outcome}, started ${r.started_at}${r.finished_at ? `, finished ${r.finished_at}` : ''}`);
    if (r.safety_backup) lines.push(`  safety backup     ${r.safety_backup}`);
    if (r.previous_database) lines.push(`  replaced database kept as ${r.previous_database}`);
    if (r.hook) lines.push(`  rollback hook     ${r.hook.argv.join(' ')}: ${howEnded(r.hook.exit_code, r.hook.signal)}`);
    if (r.error) lines.push(`  error             ${r.error}`);
  }
  return lines;
}

export async function runDeploymentStatus(ctx: Context, o: DeploymentStatusOptions): Promise<number> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const log = targetLogger(ctx.logger, target);
  const { chosen, manifests, bad } = await chooseManifest(ctx, target, {
    release: o.release,
    onUnusable: (b) => log.error({ file: b.file, problem: b.problem }, `unusable deployment manifest ${b.file}: ${b.problem}`),
  });

  if (o.json) {
    ctx.out(JSON.stringify(chosen.manifest, null, 2));
  } else {
    for (const l of describe(chosen, chosen === manifests[0])) ctx.out(l);
    ctx.out('');
    ctx.out('history (newest first):');
    const rows = manifests.slice(0, o.history ?? 10).map((s) => [s.manifest.release, s.manifest.created_at, s.manifest.backup, statusWord(s.manifest)]);
    for (const l of renderTable(['RELEASE', 'DEPLOYED', 'BACKUP', 'STATUS'], rows, { indent: '  ', gap: ' ', minWidths: [24, 24, 22] })) ctx.out(l);
    if (manifests.length > (o.history ?? 10)) ctx.out(`  … ${manifests.length - (o.history ?? 10)} older`);
    for (const b of bad) ctx.out(`  UNUSABLE ${b.file}: ${b.problem}`);
  }
  return bad.length ? EXIT.USAGE : EXIT.OK;
}
