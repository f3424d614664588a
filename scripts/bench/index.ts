// The benchmark's sections, in the order they run. Add a section: one file, one line here.
import { backupSection } from './backup.js';
import type { BenchSection } from './types.js';

export const SECTIONS: BenchSection[] = [backupSection];
