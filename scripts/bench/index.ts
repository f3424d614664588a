// The benchmark's sections, in the order they run. Add a section: one file, one line here.
import { backupSection } from './backup.js';
import { fleetSection } from './fleet.js';
import { offsiteSection } from './offsite.js';
import { restoreSection } from './restore.js';
import { tableSection } from './table.js';
import type { BenchSection } from './types.js';

export const SECTIONS: BenchSection[] = [backupSection, restoreSection, tableSection, offsiteSection, fleetSection];
