import type { Context, Deps } from '../../lib/runtime/context.js';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
export type Values = Record<string, string | boolean | string[] | undefined>;

/** One CLI verb: its usage line, its options, and how it calls lib/commands. */
export interface Verb {
  name: string;
  usage: string;
  summary: string;
  options: OptionSpec;
  /** Positional arguments: [min, max]. */
  positionals: [number, number];
  /** Commands that need no config (config check loads it itself) get the bare deps. */
  bare?: boolean;
  run(ctx: Context, values: Values, positionals: string[]): Promise<number | void>;
  runBare?(deps: Deps, values: Values, positionals: string[], configFile: string): Promise<number | void>;
}
