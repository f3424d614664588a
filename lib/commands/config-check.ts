/** `pgfleet config check`: validate projects.yml and the env files; list projects × environments. */
import { checkEnvFile, loadConfig } from '../config/load.js';
import type { Deps } from '../runtime/context.js';
import { ConfigError, type ConfigIssue } from '../core/errors.js';
import { renderTable } from '../core/text.js';

export async function runConfigCheck(deps: Deps, o: { config: string }): Promise<void> {
  const config = loadConfig(o.config, deps.env); // throws ConfigError with every problem in the file
  const issues: ConfigIssue[] = config.targets.flatMap(checkEnvFile);
  const rows = config.targets.map((t) => [
    t.project,
    t.environment,
    t.database,
    t.container ? `container ${t.container}` : 'DATABASE_URL',
    t.backup.enabled ? 'enabled' : 'disabled',
  ]);
  for (const l of renderTable(['PROJECT', 'ENVIRONMENT', 'DATABASE', 'REACHED THROUGH', 'BACKUP'], rows)) deps.out(l);
  deps.out(`${config.targets.length} target(s); backup_root ${config.platform.backupRoot}; container CLI ${config.platform.containerCli}`);
  if (issues.length) throw new ConfigError(issues);
}
