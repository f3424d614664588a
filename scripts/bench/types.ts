/**
 * The benchmark's shape: each section measures pgfleet side by side with the stock tools in one
 * run and records its figures; scripts/bench.ts prints them as a table and writes them as JSON.
 */
import type { Runner } from '../../lib/process/runner.js';
import type { Sandbox } from '../sandbox/tenants.js';

export interface BigTenant {
  container: string;
  database: string;
  /** projects.yml pointing at it (project "bench", environment "production"), backup_root inside the bench dir. */
  configFile: string;
  backupRoot: string;
  /** pg_database_size of the big database. */
  sizeBytes: number;
}

export interface BenchEnv {
  runner: Runner;
  sandbox: Sandbox;
  /** A scratch directory for this bench run. */
  dir: string;
  /** Rounds per measurement (BENCH_ROUNDS, default 5). */
  rounds: number;
  /** The ~1 GB tenant database (pgbench scale 30 + a jsonb events table), built once on first use. */
  bigTenant(): Promise<BigTenant>;
  /** Run the built CLI as a child process; returns wall time and the child's peak RSS (MB). */
  pgfleet(args: string[], env?: NodeJS.ProcessEnv): Promise<{ wallMs: number; peakRssMb: number; stdout: string }>;
  /** Wall time of a command (an argv array, through the runner). */
  time(argv: string[], o?: { env?: Record<string, string> }): Promise<number>;
  /** Record a figure: shown in the table, written to the JSON. `target` states the goal, `ok` whether it was met. */
  record(section: string, name: string, value: number | string, unit: string, target?: string, ok?: boolean): void;
  log(msg: string): void;
}

export interface BenchSection {
  name: string;
  run(env: BenchEnv): Promise<void>;
}
