/**
 * A deployment manifest (<root>/<project>/<env>/deployments/<release>.json): which pre-deploy
 * backup belongs to which release, what the app containers ran, and whether the release was rolled
 * back. zod is the source; schemas/deployment-manifest.schema.json is generated from it, and a
 * manifest read from disk is checked against that file with ajv (lib/deployments.ts).
 *
 * Kept apart from lib/deployments.ts so lib/schemas.ts can register it without an import cycle.
 */
import { z } from 'zod';
import { RELEASE } from '../config/names.js';
import { BACKUP_ID } from './metadata.js';

const iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, { message: 'expected a UTC ISO-8601 time' });
const release = z.string().regex(RELEASE, { message: 'not a valid release id' });

export const MANIFEST_STATUSES = ['deployed', 'rolled-back'] as const;
/**
 * succeeded: database restored and the hook (if any) exited 0 · hook-pending: database restored,
 * hook not finished (the process died while it ran) · hook-failed: database restored, hook failed
 * · restore-failed: nothing changed, the live database is as it was (status stays deployed).
 */
export const ROLLBACK_OUTCOMES = ['succeeded', 'hook-pending', 'hook-failed', 'restore-failed'] as const;

export const HookResult = z.strictObject({
  argv: z.array(z.string()),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  duration_ms: z.number().int().min(0),
  /** The last lines of its stdout and stderr, secrets redacted. */
  output_tail: z.string(),
});

export const RollbackRecord = z.strictObject({
  started_at: iso,
  finished_at: iso.nullable(),
  outcome: z.enum(ROLLBACK_OUTCOMES),
  /** The safety backup of the live database taken before it was replaced. */
  safety_backup: z.string().nullable(),
  /** Where the replaced database was kept (renamed, not dropped). */
  previous_database: z.string().nullable(),
  hook: HookResult.nullable(),
  error: z.string().optional(),
});

export const DeploymentManifest = z.strictObject({
  format_version: z.literal(1),
  project: z.string().min(1),
  environment: z.string().min(1),
  release,
  /** The release that ran before this one: the latest earlier manifest not rolled back. */
  previous_release: release.nullable(),
  created_at: iso,
  database: z.string().min(1),
  /** The pre-deploy backup's id, and its dump's absolute path. */
  backup: z.string().regex(BACKUP_ID),
  database_backup: z.string().min(1),
  app_containers: z.array(z.strictObject({ name: z.string().min(1), image: z.string().nullable() })),
  status: z.enum(MANIFEST_STATUSES),
  rollback: RollbackRecord.nullable(),
  pgfleet_version: z.string(),
});

export type DeploymentManifest = z.infer<typeof DeploymentManifest>;
export type RollbackRecord = z.infer<typeof RollbackRecord>;
export type HookResult = z.infer<typeof HookResult>;
