import { UsageError } from './errors.js';

/** The clock every command takes: PGFLEET_NOW (ISO-8601) when set, for what-if runs and tests. */
export type Clock = () => Date;

export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const fixed = env.PGFLEET_NOW;
  if (!fixed) return () => new Date();
  const t = Date.parse(fixed);
  if (Number.isNaN(t)) throw new UsageError(`PGFLEET_NOW is not an ISO-8601 time: ${JSON.stringify(fixed)}`);
  return () => new Date(t);
}
