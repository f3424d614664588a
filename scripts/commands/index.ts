// Every verb the CLI knows, in the order `pgfleet --help` lists them. Add a verb: one file, one line here.
import { backup, configCheck, list } from './core.js';
import { deploymentStatus, predeploy, rollback } from './deploy.js';
import { restore, verifyBackups } from './restore.js';
import { show } from './show.js';
import { prune, scheduledBackup, status } from './fleet.js';
import { offsiteSync } from './offsite.js';
import { basebackup, pitrArchive, pitrCheck, pitrRecover } from './pitr.js';
import { report } from './report.js';
import type { Verb } from './types.js';

export const VERBS: Verb[] = [configCheck, backup, list, scheduledBackup, status, report, prune, predeploy, deploymentStatus, rollback, show, restore, verifyBackups, offsiteSync, pitrCheck, pitrArchive, basebackup, pitrRecover];
