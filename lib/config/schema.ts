/**
 * projects.yml, as zod: the one source of truth. schemas/projects.schema.json is generated from
 * this (scripts/gen-schemas.ts) and a test fails when the two drift.
 *
 * Top-level keys are projects; `platform:` is pgfleet's own. A project's keys other than
 * `database:` belong to the deploy system and pass through unchecked; inside `database:` every key
 * is checked.
 */
import { z } from 'zod';
import { containerName, pgIdent, segmentName } from './names.js';
import { ageRecipient, s3Url } from './offsite.js';
import { tablePatterns } from './patterns.js';

export const DURATION = /^(\d+)(s|m|h|d|w)$/;

const duration = z.string().regex(DURATION, { message: 'expected a duration like 26h, 90m, 7d' });
const count = z.number().int().min(0);
const argv = z.array(z.string().min(1)).min(1);

export const Tiers = {
  keep_daily: count.optional(),
  keep_weekly: count.optional(),
  keep_monthly: count.optional(),
};

export const PlatformBackup = z.strictObject({
  ...Tiers,
  retention_days: count.optional(),
  pre_migration_days: count.optional(),
  compression_level: z.number().int().min(1).max(19).optional(),
  lock_wait_timeout: duration.optional(),
});

/** An http(s) URL without credentials (those come from the environment, never from here). */
const endpointUrl = z.string().superRefine((s, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    /* reported below */
  }
  if (!u || !['http:', 'https:'].includes(u.protocol)) ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL' });
  else if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'no credentials in the endpoint URL (they come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment or env file)' });
  else if (u.search || u.hash) ctx.addIssue({ code: 'custom', message: 'no query or fragment in the endpoint URL' });
});

/** Offsite copies on S3-compatible storage (ARCHITECTURE "Offsite copies and encryption"). */
export const OffsiteKeys = {
  url: s3Url,
  endpoint: endpointUrl.optional(),
  region: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'expected a region name like eu-central-1' }).optional(),
  path_style: z.boolean().optional(),
  storage_class: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, { message: 'expected a storage class like STANDARD_IA, GLACIER_IR' }).optional(),
  max_age: duration.optional(),
  object_lock: z.strictObject({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days: z.number().int().min(1).max(36500) }).optional(),
  ...Tiers,
};

export const PlatformOffsite = z.strictObject(OffsiteKeys);

/** A project's override: any key of platform.offsite (url too), or `enabled: false` to opt out. */
export const DatabaseOffsite = z.strictObject({ enabled: z.boolean().optional(), ...OffsiteKeys, url: OffsiteKeys.url.optional() });

export const Encryption = z.strictObject({
  age_recipients: z.array(ageRecipient).min(1, { message: 'at least one age public key' }),
});

/** A Docker context name, or a container API URL (unix://, ssh://, tcp://, npipe://). */
export const containerHost = z
  .string()
  .regex(/^(?:[a-zA-Z0-9][a-zA-Z0-9_.+-]{0,127}|(?:unix|ssh|tcp|npipe|http|https):\/\/[^\s]+)$/, { message: 'expected a Docker context name or a unix://, ssh://, tcp:// URL' })
  .refine((s) => !/^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(s), { message: 'no password in container_host (use an SSH key or the CLI\'s own TLS settings)' });

export const Platform = z.strictObject({
  backup_root: z.string().min(1).optional(),
  container_cli: z.enum(['docker', 'podman']).optional(),
  /** Where container CLI calls go by default (a project's database.container_host overrides it). */
  container_host: containerHost.optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  max_backup_age: duration.optional(),
  backup: PlatformBackup.optional(),
  verify: z.strictObject({ container: containerName.optional() }).optional(),
  notify: z
    .strictObject({
      webhook_url_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { message: 'expected an environment variable name' }).optional(),
      /** The env var holding a healthchecks.io-style ping URL (lib/fleet/notify.ts ping). */
      ping_url_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { message: 'expected an environment variable name' }).optional(),
      on: z.array(z.enum(['failure', 'success'])).optional(),
    })
    .optional(),
  metrics: z.strictObject({ textfile: z.string().min(1).optional() }).optional(),
  offsite: PlatformOffsite.optional(),
  encryption: Encryption.optional(),
  /** `report` and `status`: a dump more than anomaly_share off its recent median is flagged; backup_window bounds the backup time's trend. */
  report: z.strictObject({ anomaly_share: z.number().gt(0).lt(10).optional(), backup_window: duration.optional() }).optional(),
});

export const DatabaseBackup = z.strictObject({
  enabled: z.boolean().optional(),
  retention_days: count.optional(),
  ...Tiers,
  pre_migration_days: count.optional(),
  verify_on_restore: z.boolean().optional(),
  compression_level: z.number().int().min(1).max(19).optional(),
  lock_wait_timeout: duration.optional(),
  /** Partial backups (pg_dump --exclude-table / --exclude-table-data patterns): a list, or environment → list. */
  exclude_tables: tablePatterns.optional(),
  exclude_table_data: tablePatterns.optional(),
});

/** Point-in-time recovery of the cluster (the container) a target lives in: ARCHITECTURE "Point-in-time recovery". */
export const DatabasePitr = z.strictObject({
  enabled: z.boolean().optional(),
  archive_dir: z.string().min(1).optional(),
  max_wal_age: duration.optional(),
  base_backup_every: duration.optional(),
  /** Base backup retention (lib/pitr/retention.ts): the newest N, and every one younger than base_backup_retention. */
  keep_base_backups: z.number().int().min(1).optional(),
  base_backup_retention: duration.optional(),
});

export const Database = z.strictObject({
  type: z.literal('postgresql'),
  container: containerName.optional(),
  /** The Docker host this project's containers run on (else platform.container_host). */
  container_host: containerHost.optional(),
  databases: z.record(segmentName('environment name'), pgIdent('database name')).refine((m) => Object.keys(m).length > 0, {
    message: 'at least one environment is needed',
  }),
  user: pgIdent('database user').optional(),
  app_containers: z.record(segmentName('environment name'), z.array(containerName)).optional(),
  hooks: z
    .strictObject({
      rollback: argv.optional(),
      /** Before each backup of the project's targets, under the lock; a failure fails that backup, nothing dumped. */
      pre_backup: argv.optional(),
      /** After each backup attempt that ran pre_backup or the dump (PGFLEET_RESULT success|failure); a failure fails the run, the backup kept. */
      post_backup: argv.optional(),
      /** Every hook's bound (default 10m): killed (SIGTERM, then SIGKILL) when it runs longer. */
      timeout: duration.optional(),
    })
    .optional(),
  backup: DatabaseBackup.optional(),
  /** A project's own ping check, for fleet commands run for this project alone (else platform.notify.ping_url_env). */
  notify: z.strictObject({ ping_url_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { message: 'expected an environment variable name' }).optional() }).optional(),
  offsite: DatabaseOffsite.optional(),
  encryption: Encryption.optional(),
  pitr: DatabasePitr.optional(),
});

/** A project: the deploy system's keys pass through; `database:` is ours. */
export const Project = z.looseObject({ database: Database.optional() });

export const ProjectsFile = z.looseObject({ platform: Platform.optional() }).catchall(Project);

export type PlatformConfig = z.infer<typeof Platform>;
export type DatabaseConfig = z.infer<typeof Database>;
export type OffsiteConfig = z.infer<typeof DatabaseOffsite>;
export type ProjectsFileConfig = z.infer<typeof ProjectsFile>;

/** The keys accepted inside each strict object, for "did you mean" hints. */
export function knownKeys(schema: z.ZodType): string[] {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}
