/**
 * One lock per target (<root>/<project>/<environment>/.lock), so two runs never dump, prune or
 * restore the same target at once. Acquiring never waits: a held lock is LockBusyError (exit 3).
 * A lock whose process is gone (killed, crashed) is stale and taken over; the holder is known by
 * pid plus the process's start time, so a reused pid does not keep a dead lock alive.
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockBusyError, type TargetRef } from './errors.js';
import { ensureDir, FILE_MODE } from './fsutil.js';

interface Holder {
  pid: number;
  start: string | null;
  host: string;
  since: string;
  command: string;
}

function processStart(pid: number): string | null {
  try {
    // Field 22 of /proc/<pid>/stat, counted after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(h: Holder): boolean {
  if (h.host !== os.hostname()) return true; // cannot tell: assume held
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = processStart(h.pid);
  return !(h.start && start && start !== h.start);
}

export interface Lock {
  release(): Promise<void>;
}

export async function acquireLock(dir: string, target: TargetRef, command: string): Promise<Lock> {
  await ensureDir(dir);
  const file = path.join(dir, '.lock');
  const me: Holder = { pid: process.pid, start: processStart(process.pid), host: os.hostname(), since: new Date().toISOString(), command };
  const text = JSON.stringify(me);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, text, { flag: 'wx', mode: FILE_MODE });
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          const now = await fs.readFile(file, 'utf8').catch(() => '');
          if (now === text) await fs.rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const current = await fs.readFile(file, 'utf8').catch(() => null);
    if (current === null) continue; // released meanwhile
    let holder: Holder | null = null;
    try {
      holder = JSON.parse(current);
    } catch {
      holder = null; // torn write of a crashed run: stale
    }
    if (holder && alive(holder)) throw new LockBusyError(target, `pid ${holder.pid} since ${holder.since}: ${holder.command}`);
    // Stale: remove it only if it is still the same stale lock we read.
    const again = await fs.readFile(file, 'utf8').catch(() => null);
    if (again === current) await fs.rm(file, { force: true });
  }
  throw new LockBusyError(target, 'contended');
}

/** Run fn holding the target's lock; the lock is released however fn ends. */
export async function withLock<T>(dir: string, target: TargetRef, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(dir, target, command);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
