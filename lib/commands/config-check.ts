/**
 * `pgfleet config check`: is projects.yml (and every env file it implies) usable?
 *
 *   load and check projects.yml (every problem at once, exit 2) → check each target's env file
 *   → print projects × environments and where each is reached (its container and the container
 *   host its CLI calls go to: database.container_host, else platform.container_host) → exit 2 if any env file is wrong,
 *   or if no target has backups enabled (nothing would be backed up; `allowEmpty` when intended)
 *
 * Reads only; needs no container. Secrets are never printed: a bad env file is named, not shown.
 */
import { checkEnvFile, loadConfig, requireEnabled } from '../config/load.js';
import type { Deps } from '../runtime/context.js';
import { ConfigError, type ConfigIssue } from '../core/errors.js';
import { renderTable } from '../core/text.js';
import { hostText } from '../process/container.js';

export async function runConfigCheck(deps: Deps, o: { config: string; allowEmpty?: boolean }): Promise<void> {
  const config = loadConfig(o.config, deps.env); // throws ConfigError with every problem in the file
  const issues: ConfigIssue[] = config.targets.flatMap(checkEnvFile);
  const rows = config.targets.map((t) => [
    t.project,
    t.environment,
    t.database,
    t.container ? `container ${t.container}${hostText(t.containerHost)}` : 'DATABASE_URL',
    t.backup.enabled ? 'enabled' : 'disabled',
  ]);
  for (const l of renderTable(['PROJECT', 'ENVIRONMENT', 'DATABASE', 'REACHED THROUGH', 'BACKUP'], rows)) deps.out(l);
  deps.out(`${config.targets.length} target(s); backup_root ${config.platform.backupRoot}; container CLI ${config.platform.containerCli}`);
  if (issues.length) throw new ConfigError(issues);
  requireEnabled(config, config.targets, { allowEmpty: o.allowEmpty, command: 'config check' });
}
