/**
 * Deployment manifests (<root>/<project>/<env>/deployments/<release>.json). The deployments
 * feature fills this module in; retention calls `pinnedByDeployments` from the start so it keeps
 * the pre-deploy backups of the latest two manifests as soon as manifests exist.
 */
import type { Repository } from './repository.js';

/** Backup id → why it is kept, for the pre-deploy backups of the latest two deployment manifests. */
export async function pinnedByDeployments(_repo: Repository, _project: string, _environment: string): Promise<Map<string, string>> {
  return new Map();
}
