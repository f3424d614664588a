/**
 * lib/deployments/: which deployment manifest a command acts on, and the release ids that name
 * them. Imports storage (manifests), config and core; never a command.
 */
import { isReleaseId } from '../config/names.js';
import { UsageError } from '../core/errors.js';

/** The release id a user gave (--release), checked; UsageError (exit 2) when missing or unsafe. */
export function checkRelease(release: string | undefined): string {
  if (release === undefined || release === '') throw new UsageError('--release <id> is required');
  if (!isReleaseId(release))
    throw new UsageError(`not a valid release id: ${JSON.stringify(release)} (letters, digits, "_", ".", "+", "-"; starting with a letter or digit; no ".."; at most 128 characters)`);
  return release;
}
