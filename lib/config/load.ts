/**
 * Load projects.yml: parse (yaml, keeping positions), validate (zod), check the rules zod cannot
 * express, and report every problem at once with file, line and key path. Returns the resolved
 * targets (project × environment) with every default filled in.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode, type Pair, type YAMLMap } from 'yaml';
import type { z } from 'zod';
import { ConfigError, UsageError, type ConfigIssue } from '../core/errors.js';
import { isSegment } from './names.js';
import { keyText, parseConfigYaml, readConfigText } from './read.js';
import { DURATION, ProjectsFile, type DatabaseConfig, type OffsiteConfig, type PlatformConfig } from './schema.js';
import { parseS3Url } from './offsite.js';
import { patternsFor } from './patterns.js';

export interface BackupPolicy {
  enabled: boolean;
  retention_days: number;
  keep_daily: number;
  keep_weekly: number;
  keep_monthly: number;
  pre_migration_days: number;
  verify_on_restore: boolean;
  compression_level: number;
  lock_wait_timeout_ms: number;
  /** pg_dump --exclude-table / --exclude-table-data patterns for this environment (empty: a full backup). */
  exclude_tables: string[];
  exclude_table_data: string[];
}

/** Where and how a target's offsite copies go (platform.offsite, then database.offsite over it). */
export interface OffsiteSettings {
  url: string;
  bucket: string;
  /** Key prefix, '' for the bucket's root. */
  prefix: string;
  endpoint?: string;
  region?: string;
  pathStyle: boolean;
  storageClass?: string;
  maxAgeMs: number;
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
  /** Offsite's own tiers; default the target's (or, platform-wide, platform.backup's). */
  keep: { daily: number; weekly: number; monthly: number };
}

export interface EncryptionSettings {
  /** age public keys every encrypted copy is readable by. */
  ageRecipients: string[];
}

/** A target's point-in-time recovery (database.pitr with enabled: true); its cluster is its container. */
export interface PitrSettings {
  /** The host directory the cluster's archive_command writes into (a bind mount), absolute. */
  archiveDir: string;
  maxWalAgeMs: number;
  baseBackupEveryMs: number;
  /** Base backup retention: always the newest keepBaseBackups, and every one younger than baseBackupRetentionMs. */
  keepBaseBackups: number;
  baseBackupRetentionMs: number;
}

export interface Target {
  project: string;
  environment: string;
  database: string;
  user?: string;
  /** Absent: reached directly with DATABASE_URL. */
  container?: string;
  /** database.notify.ping_url_env: the project's own ping check (fleet commands run for this project alone). */
  pingUrlEnv?: string;
  /** Where its container CLI calls go (database.container_host, else platform.container_host); absent: the CLI's default. */
  containerHost?: string;
  appContainers: string[];
  /** Argv arrays (database.hooks); timeout_ms bounds each (default 10m). */
  hooks: { rollback?: string[]; pre_backup?: string[]; post_backup?: string[]; timeout_ms: number };
  backup: BackupPolicy;
  /** configs/<project>/.env.<environment>, next to projects.yml. */
  envFile: string;
  /** Absent: no offsite copies for this target. */
  offsite?: OffsiteSettings;
  /** Absent: not encrypted. */
  encryption?: EncryptionSettings;
  /** Absent: no point-in-time recovery (database.pitr.enabled is not true). */
  pitr?: PitrSettings;
}

export interface PlatformSettings {
  backupRoot: string;
  containerCli: 'docker' | 'podman';
  /** platform.container_host: where container CLI calls go unless a project says otherwise. */
  containerHost?: string;
  concurrency: number;
  maxBackupAgeMs: number;
  verifyContainer?: string;
  notify: { webhookUrlEnv?: string; on: ('failure' | 'success')[]; pingUrlEnv?: string };
  metricsTextfile?: string;
  /** platform.offsite alone (a project may override or opt out: see Target.offsite). */
  offsite?: OffsiteSettings;
  encryption?: EncryptionSettings;
  /** platform.report: how far from its recent median a dump's size is flagged (a share), the backup window (its time's trend is held against it; default max_backup_age). */
  report: { anomalyShare: number; backupWindowMs?: number };
}

export interface LoadedConfig {
  file: string;
  platform: PlatformSettings;
  targets: Target[];
}

export const DEFAULTS = {
  backup_root: '/opt/backups',
  container_cli: 'docker' as const,
  concurrency: 2,
  max_backup_age: '26h',
  anomaly_share: 0.3,
  retention_days: 30,
  keep_daily: 7,
  keep_weekly: 4,
  keep_monthly: 12,
  pre_migration_days: 90,
  compression_level: 2,
  lock_wait_timeout: '5m',
  hook_timeout: '10m',
  max_wal_age: '5m',
  base_backup_every: '1d',
  keep_base_backups: 2,
  base_backup_retention: '7d',
};

export function parseDuration(s: string): number {
  const m = DURATION.exec(s);
  if (!m) throw new UsageError(`not a duration: ${JSON.stringify(s)} (expected e.g. 30s, 5m, 26h, 7d)`);
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2] as 's'];
  return Number(m[1]) * unit;
}

/** A map's pairs by key, indexed once per map: finding the lines of many problems stays linear. */
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();
function pairOf(map: YAMLMap, key: string): Pair | undefined {
  let idx = pairIndex.get(map);
  if (!idx) {
    idx = new Map();
    for (const it of map.items) if (isScalar(it.key) && !idx.has(String(it.key.value))) idx.set(String(it.key.value), it);
    pairIndex.set(map, idx);
  }
  return idx.get(key);
}

/** The line of a data path's node (of `key` in it, if given), else of its nearest existing parent. */
function lineOf(doc: Document, lc: LineCounter, p: readonly PropertyKey[], key?: string): number | undefined {
  const nodes: YamlNode[] = []; // the root, then each node along the path while it exists
  let node: unknown = doc.contents;
  for (let i = 0; isNode(node); i++) {
    nodes.push(node);
    node = i < p.length ? step(node, p[i]) : undefined;
  }
  const last = nodes.length === p.length + 1 ? nodes.at(-1) : undefined;
  if (key !== undefined && isMap(last)) {
    const r = (pairOf(last, key)?.key as YamlNode | undefined)?.range;
    if (r) return lc.linePos(r[0]).line;
  }
  for (const n of nodes.reverse()) if (n.range) return lc.linePos(n.range[0]).line;
  return undefined;
}

const step = (node: YamlNode, seg: PropertyKey): unknown => (isMap(node) ? pairOf(node, String(seg))?.value : isSeq(node) ? node.items[Number(seg)] : undefined);

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

export function didYouMean(key: string, known: readonly string[]): string | undefined {
  if (key.length > 64) return undefined; // no key is that long; the distance table would be huge
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** The zod object schema found at a data path, to list the keys it accepts. */
function keysAt(schema: z.ZodType, p: readonly PropertyKey[]): string[] {
  type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; catchall?: z.ZodType; valueType?: z.ZodType; element?: z.ZodType };
  const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;
  const unwrap = (s: z.ZodType): z.ZodType => {
    while (['optional', 'nullable', 'default'].includes(def(s).type) && def(s).innerType) s = def(s).innerType!;
    return s;
  };
  let s: z.ZodType | undefined = unwrap(schema);
  for (const seg of p) {
    if (!s) return [];
    const d = def(s);
    if (d.type === 'object') s = d.shape?.[String(seg)] ?? d.catchall;
    else if (d.type === 'record') s = d.valueType;
    else if (d.type === 'array') s = d.element;
    else return [];
    s = s && unwrap(s);
  }
  return s && def(s).type === 'object' ? Object.keys(def(s).shape ?? {}) : [];
}

/** A key path for messages; a segment that is not plain text is quoted, so a newline cannot forge a line, and a long one is cut. */
const dotted = (p: readonly PropertyKey[]) => p.map(keyText).join('.');

/** Parse and validate; returns every issue found, never throws for bad content. */
export function checkConfigText(text: string, file: string): { data?: z.infer<typeof ProjectsFile>; issues: ConfigIssue[] } {
  const { parsed: yaml, issues } = parseConfigYaml(text, file);
  if (!yaml) return { issues };
  const { doc, lc } = yaml;
  const raw = yaml.raw ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) return { issues: [{ file, line: 1, path: '', message: 'expected a mapping of project names' }] };

  const parsed = ProjectsFile.safeParse(raw);
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      if (iss.code === 'unrecognized_keys') {
        const known = keysAt(ProjectsFile, iss.path);
        for (const k of iss.keys) {
          const hint = didYouMean(k, known);
          issues.push({ file, line: lineOf(doc, lc, iss.path, k), path: dotted([...iss.path, k]), message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}` });
        }
      } else if (iss.code === 'invalid_key') {
        // A record key (an environment name) that is not a valid name: say which rule, not "Invalid key".
        const why = [...new Set(iss.issues.map((i) => i.message))].join('; ');
        issues.push({ file, line: lineOf(doc, lc, iss.path.slice(0, -1), String(iss.path.at(-1))), path: dotted(iss.path), message: why || iss.message });
      } else {
        issues.push({ file, line: lineOf(doc, lc, iss.path), path: dotted(iss.path), message: iss.message });
      }
    }
  }
  for (const name of Object.keys(raw)) {
    if (name !== 'platform' && !isSegment(name))
      issues.push({ file, line: lineOf(doc, lc, [], name), path: dotted([name]), message: 'not a valid project name (letters, digits, "_", "-", "."; no leading dash, no "..")' });
  }
  // Rules across keys: app_containers and hooks name environments that exist.
  for (const [name, proj] of Object.entries(raw as Record<string, { database?: DatabaseConfig }>)) {
    const db = name !== 'platform' ? proj?.database : undefined;
    if (!db || typeof db !== 'object' || !db.databases || typeof db.app_containers !== 'object' || !db.app_containers) continue;
    for (const env of Object.keys(db.app_containers))
      if (!(env in db.databases))
        issues.push({ file, line: lineOf(doc, lc, [name, 'database', 'app_containers'], env), path: `${name}.database.app_containers.${env}`, message: `no such environment in ${name}.database.databases` });
  }
  // Exclusions given per environment name environments that exist.
  for (const [name, proj] of Object.entries(raw as Record<string, { database?: DatabaseConfig }>)) {
    const db = name !== 'platform' && proj && typeof proj === 'object' ? proj.database : undefined;
    const b = db && typeof db === 'object' && db.databases && typeof db.databases === 'object' ? db.backup : undefined;
    for (const key of ['exclude_tables', 'exclude_table_data'] as const) {
      const v = b && typeof b === 'object' ? b[key] : undefined;
      if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
      for (const env of Object.keys(v))
        if (!(env in db!.databases))
          issues.push({ file, line: lineOf(doc, lc, [name, 'database', 'backup', key], env), path: `${name}.database.backup.${key}.${env}`, message: `no such environment in ${name}.database.databases` });
    }
  }
  // A project's offsite override needs a url from somewhere.
  const platformUrl = (raw as { platform?: { offsite?: { url?: unknown } } }).platform?.offsite?.url;
  for (const [name, proj] of Object.entries(raw as Record<string, { database?: { offsite?: OffsiteConfig } }>)) {
    const o = name !== 'platform' && proj && typeof proj === 'object' ? proj.database?.offsite : undefined;
    if (o && typeof o === 'object' && o.enabled !== false && !o.url && !platformUrl)
      issues.push({ file, line: lineOf(doc, lc, [name, 'database', 'offsite']), path: `${name}.database.offsite`, message: 'no url here and no platform.offsite.url to take it from' });
  }
  // PITR needs the cluster (a container) and where its WAL lands; one cluster, one landing directory.
  const landing = new Map<string, { dir: string; project: string }>();
  for (const [name, proj] of Object.entries(raw as Record<string, { database?: DatabaseConfig }>)) {
    const db = name !== 'platform' && proj && typeof proj === 'object' ? proj.database : undefined;
    const pitr = db && typeof db === 'object' ? db.pitr : undefined;
    if (!pitr || typeof pitr !== 'object' || pitr.enabled !== true) continue;
    const at = { file, line: lineOf(doc, lc, [name, 'database'], 'pitr'), path: `${name}.database.pitr` };
    if (!db!.container) issues.push({ ...at, message: 'point-in-time recovery needs database.container (the cluster it archives)' });
    if (!pitr.archive_dir) issues.push({ ...at, message: 'enabled: true needs archive_dir (the host directory the cluster archives WAL into)' });
    const seen = db!.container && pitr.archive_dir ? landing.get(db!.container) : undefined;
    if (seen && seen.dir !== pitr.archive_dir) issues.push({ ...at, message: `container ${db!.container} archives into ${seen.dir} (${seen.project}), not ${pitr.archive_dir}: one cluster, one archive_dir` });
    else if (db!.container && pitr.archive_dir) landing.set(db!.container, { dir: pitr.archive_dir, project: name });
  }
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return issues.length ? { issues } : { data: parsed.data, issues };
}

/** platform.offsite with a project's override over it (key by key); undefined when off. */
function resolveOffsite(base: OffsiteConfig | undefined, over: OffsiteConfig | undefined, tiers: { keep_daily: number; keep_weekly: number; keep_monthly: number }, maxAgeMs: number): OffsiteSettings | undefined {
  if (over?.enabled === false) return undefined;
  const o = { ...base, ...over };
  if (!o.url) return undefined;
  return {
    url: o.url,
    ...parseS3Url(o.url),
    endpoint: o.endpoint,
    region: o.region,
    pathStyle: o.path_style ?? false,
    storageClass: o.storage_class,
    maxAgeMs: o.max_age ? parseDuration(o.max_age) : maxAgeMs,
    objectLock: o.object_lock,
    keep: { daily: o.keep_daily ?? tiers.keep_daily, weekly: o.keep_weekly ?? tiers.keep_weekly, monthly: o.keep_monthly ?? tiers.keep_monthly },
  };
}

function resolvePlatform(p: PlatformConfig | undefined, env: NodeJS.ProcessEnv, dir: string): PlatformSettings {
  const root = env.PGFLEET_BACKUP_ROOT || p?.backup_root || DEFAULTS.backup_root;
  const cli = env.PGFLEET_CONTAINER_CLI || p?.container_cli || DEFAULTS.container_cli;
  if (cli !== 'docker' && cli !== 'podman') throw new UsageError(`PGFLEET_CONTAINER_CLI must be docker or podman, not ${JSON.stringify(cli)}`);
  const maxBackupAgeMs = parseDuration(p?.max_backup_age ?? DEFAULTS.max_backup_age);
  const tiers = { keep_daily: p?.backup?.keep_daily ?? DEFAULTS.keep_daily, keep_weekly: p?.backup?.keep_weekly ?? DEFAULTS.keep_weekly, keep_monthly: p?.backup?.keep_monthly ?? DEFAULTS.keep_monthly };
  return {
    backupRoot: path.resolve(dir, root),
    containerCli: cli,
    containerHost: p?.container_host,
    concurrency: p?.concurrency ?? DEFAULTS.concurrency,
    maxBackupAgeMs,
    verifyContainer: p?.verify?.container,
    notify: { webhookUrlEnv: p?.notify?.webhook_url_env, on: p?.notify?.on ?? ['failure'], pingUrlEnv: p?.notify?.ping_url_env },
    metricsTextfile: p?.metrics?.textfile ? path.resolve(dir, p.metrics.textfile) : undefined,
    offsite: resolveOffsite(p?.offsite, undefined, tiers, maxBackupAgeMs),
    encryption: p?.encryption ? { ageRecipients: p.encryption.age_recipients } : undefined,
    report: { anomalyShare: p?.report?.anomaly_share ?? DEFAULTS.anomaly_share, backupWindowMs: p?.report?.backup_window ? parseDuration(p.report.backup_window) : undefined },
  };
}

function resolveTargets(data: z.infer<typeof ProjectsFile>, dir: string): Target[] {
  const pb = data.platform?.backup ?? {};
  const maxBackupAgeMs = parseDuration(data.platform?.max_backup_age ?? DEFAULTS.max_backup_age);
  const targets: Target[] = [];
  for (const [project, proj] of Object.entries(data)) {
    if (project === 'platform') continue;
    const db = (proj as { database?: DatabaseConfig }).database;
    if (!db) continue;
    const b = db.backup ?? {};
    const enc = db.encryption ?? data.platform?.encryption;
    for (const [environment, database] of Object.entries(db.databases)) {
      const backup: BackupPolicy = {
        enabled: b.enabled ?? true,
        retention_days: b.retention_days ?? pb.retention_days ?? DEFAULTS.retention_days,
        keep_daily: b.keep_daily ?? pb.keep_daily ?? DEFAULTS.keep_daily,
        keep_weekly: b.keep_weekly ?? pb.keep_weekly ?? DEFAULTS.keep_weekly,
        keep_monthly: b.keep_monthly ?? pb.keep_monthly ?? DEFAULTS.keep_monthly,
        pre_migration_days: b.pre_migration_days ?? pb.pre_migration_days ?? DEFAULTS.pre_migration_days,
        verify_on_restore: b.verify_on_restore ?? true,
        compression_level: b.compression_level ?? pb.compression_level ?? DEFAULTS.compression_level,
        lock_wait_timeout_ms: parseDuration(b.lock_wait_timeout ?? pb.lock_wait_timeout ?? DEFAULTS.lock_wait_timeout),
        exclude_tables: patternsFor(b.exclude_tables, environment),
        exclude_table_data: patternsFor(b.exclude_table_data, environment),
      };
      targets.push({
        project,
        environment,
        database,
        user: db.user,
        container: db.container,
        containerHost: db.container_host ?? data.platform?.container_host,
        pingUrlEnv: db.notify?.ping_url_env,
        appContainers: db.app_containers?.[environment] ?? [],
        hooks: { rollback: db.hooks?.rollback, pre_backup: db.hooks?.pre_backup, post_backup: db.hooks?.post_backup, timeout_ms: parseDuration(db.hooks?.timeout ?? DEFAULTS.hook_timeout) },
        envFile: path.join(dir, 'configs', project, `.env.${environment}`),
        backup,
        offsite: resolveOffsite(data.platform?.offsite, db.offsite, backup, maxBackupAgeMs),
        encryption: enc ? { ageRecipients: enc.age_recipients } : undefined,
        pitr:
          db.pitr?.enabled === true && db.pitr.archive_dir
            ? {
                archiveDir: path.resolve(dir, db.pitr.archive_dir),
                maxWalAgeMs: parseDuration(db.pitr.max_wal_age ?? DEFAULTS.max_wal_age),
                baseBackupEveryMs: parseDuration(db.pitr.base_backup_every ?? DEFAULTS.base_backup_every),
                keepBaseBackups: db.pitr.keep_base_backups ?? DEFAULTS.keep_base_backups,
                baseBackupRetentionMs: parseDuration(db.pitr.base_backup_retention ?? DEFAULTS.base_backup_retention),
              }
            : undefined,
      });
    }
  }
  return targets;
}

/** Load and validate projects.yml. Throws ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const abs = path.resolve(file);
  const read = readConfigText(file, abs);
  if (read.text === undefined) throw new ConfigError(read.issues);
  const { data, issues } = checkConfigText(read.text, file);
  if (!data) throw new ConfigError(issues);
  const dir = path.dirname(abs);
  return { file: abs, platform: resolvePlatform(data.platform, env, dir), targets: resolveTargets(data, dir) };
}

export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env.PGFLEET_CONFIG || 'projects.yml';
}

/** The target for project/environment, or a usage error naming what exists. */
export function findTarget(config: LoadedConfig, project: string, environment: string): Target {
  const ofProject = config.targets.filter((t) => t.project === project);
  if (ofProject.length === 0) {
    const names = [...new Set(config.targets.map((t) => t.project))];
    throw new UsageError(`unknown project "${project}" in ${config.file} (projects with a database: ${names.join(', ') || 'none'})`);
  }
  const t = ofProject.find((x) => x.environment === environment);
  if (!t) throw new UsageError(`project "${project}" has no environment "${environment}" (has: ${ofProject.map((x) => x.environment).join(', ')})`);
  return t;
}

/** Targets matching optional project/environment filters; an unknown filter is a usage error. */
export function selectTargets(config: LoadedConfig, project?: string, environment?: string): Target[] {
  if (project && environment) return [findTarget(config, project, environment)];
  if (project) {
    const ts = config.targets.filter((t) => t.project === project);
    if (!ts.length) findTarget(config, project, '');
    return ts;
  }
  const ts = config.targets.filter((t) => !environment || t.environment === environment);
  if (environment && !ts.length) throw new UsageError(`no project has an environment "${environment}"`);
  return ts;
}

/**
 * "Nothing to do is an error": throws a UsageError (exit 2) saying why when none of `targets` has
 * backups enabled (an empty projects.yml, projects without `database:`, every target disabled, or
 * a filter that selects only disabled ones), unless `allowEmpty` (an empty run that is intended).
 */
export function requireEnabled(config: LoadedConfig, targets: readonly Target[], o: { allowEmpty?: boolean; command: string }): void {
  if (o.allowEmpty || targets.some((t) => t.backup.enabled)) return;
  const why = !config.targets.length
    ? 'no project in it has a database: section'
    : targets.length
      ? `${targets.length === config.targets.length ? 'every target' : 'every selected target'} has backup.enabled: false`
      : 'no target selected';
  throw new UsageError(`${o.command}: nothing to do: no enabled target in ${config.file} (${why}); pass --allow-empty if that is intended`);
}

export interface Credentials {
  password?: string;
  databaseUrl?: string;
}

/**
 * Credentials for a target: configs/<project>/.env.<environment> first, then the process
 * environment (PGPASSWORD, DATABASE_URL). Never from projects.yml. Values are returned only to be
 * handed to a child's environment.
 */
export function loadCredentials(target: Target, env: NodeJS.ProcessEnv = process.env): Credentials {
  const vars = readEnvFile(target);
  return {
    password: vars.PGPASSWORD ?? env.PGPASSWORD ?? undefined,
    databaseUrl: vars.DATABASE_URL ?? env.DATABASE_URL ?? undefined,
  };
}

/** The offsite credentials an env file may hold (the AWS SDK's own variable names). */
export const OFFSITE_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'] as const;

/**
 * The environment the offsite store reads credentials from: when the target's env file names
 * credentials (AWS_ACCESS_KEY_ID or AWS_PROFILE), those of the file only (never a file's key
 * with the process's secret); otherwise the process environment's. Never projects.yml.
 */
export function offsiteEnv(target: Target, env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  const vars = readEnvFile(target);
  const fromFile = vars.AWS_ACCESS_KEY_ID !== undefined || vars.AWS_PROFILE !== undefined;
  const out: Record<string, string | undefined> = { ...env };
  for (const k of OFFSITE_VARS) out[k] = fromFile ? vars[k] : env[k];
  return out;
}

function readEnvFile(target: Target): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(target.envFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError([{ file: target.envFile, path: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code}` }]);
  }
  return parseEnv(text) as Record<string, string>;
}

/** Problems with a target's env file, for `config check` (values are never shown). */
export function checkEnvFile(target: Target): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const rel = path.relative(process.cwd(), target.envFile) || target.envFile;
  let vars: Record<string, string> = {};
  try {
    vars = readEnvFile(target);
    const st = statSync(target.envFile, { throwIfNoEntry: false });
    if (st && (st.mode & 0o077) !== 0) issues.push({ file: rel, path: '', message: `readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it` });
  } catch (e) {
    return e instanceof ConfigError ? e.issues : [{ file: rel, path: '', message: String(e) }];
  }
  for (const k of Object.keys(vars))
    if (!['PGPASSWORD', 'DATABASE_URL', 'PGUSER', ...OFFSITE_VARS].includes(k))
      issues.push({ file: rel, path: k, message: `unknown variable (pgfleet reads PGPASSWORD, DATABASE_URL, ${OFFSITE_VARS.join(', ')})` });
  if (!target.container) {
    const url = vars.DATABASE_URL ?? process.env.DATABASE_URL;
    if (!url) issues.push({ file: rel, path: 'DATABASE_URL', message: `${target.project}.database has no container, so DATABASE_URL is required` });
    else if (!/^postgres(ql)?:\/\//.test(url)) issues.push({ file: rel, path: 'DATABASE_URL', message: 'not a postgresql:// URL' });
  }
  return issues;
}
