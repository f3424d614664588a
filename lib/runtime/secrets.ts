/**
 * The values to redact, built once per target for a whole run and handed to everything that
 * shows a target's output: its TargetShell (process errors), its hooks (their output tail) and the
 * notifications that report on the run.
 *
 * A target's set: its credentials in every form they take (lib/core/redact.ts credentialSecrets)
 * and the platform's own secrets (the webhook URL and the ping URLs, the platform's and every
 * project's, which every child sees in pgfleet's environment). Reading a target's env file can throw ConfigError, as loadCredentials does.
 */
import { loadCredentials, type LoadedConfig, type Target } from '../config/load.js';
import { credentialSecrets, webhookSecrets } from '../core/redact.js';

export class Secrets {
  private readonly byTarget = new Map<string, readonly string[]>();
  private readonly platform: readonly string[];

  constructor(
    config: Pick<LoadedConfig, 'platform'> & { targets?: readonly Target[] },
    private readonly env: NodeJS.ProcessEnv,
  ) {
    const { webhookUrlEnv, pingUrlEnv } = config.platform.notify;
    const pings = new Set([pingUrlEnv, ...(config.targets ?? []).map((t) => t.pingUrlEnv)].filter((n): n is string => !!n));
    this.platform = [...(webhookUrlEnv ? webhookSecrets(env[webhookUrlEnv]) : []), ...[...pings].flatMap((n) => webhookSecrets(env[n]))];
  }

  /** This target's set; its env file is read the first time only. */
  for(target: Target): readonly string[] {
    const key = `${target.project}/${target.environment}`;
    let set = this.byTarget.get(key);
    if (!set) {
      set = [...new Set([...credentialSecrets(loadCredentials(target, this.env)), ...this.platform])];
      this.byTarget.set(key, set);
    }
    return set;
  }

  /** Every set built so far in this run, and the platform's: for what reports on many targets at once. */
  all(): readonly string[] {
    return [...new Set([...this.platform, ...[...this.byTarget.values()].flat()])];
  }
}
