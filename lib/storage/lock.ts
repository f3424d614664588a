/**
 * One lock per target (<root>/<project>/<environment>/.lock), so two runs never dump, prune or
 * restore the same target at once. The lock is a local file, not a Store object, on purpose: it
 * needs what only a local filesystem gives (an atomic hard link, a holder's pid on this host), and
 * it guards this host's runs. Its directory comes from the repository (repo.lockDir(project,
 * environment)); its name starts with '.', so no store ever lists it.
 *
 * Acquiring never waits: a held lock is LockBusyError (exit 3). A lock whose process is gone
 * (killed, crashed) is stale and taken over; the holder is known by pid plus the process's start
 * time, so a reused pid does not keep a dead lock alive.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { LockBusyError, type TargetRef } from '../core/errors.js';
import { ensureDir, FILE_MODE } from '../core/fsutil.js';

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

/** A breaker left by a run killed in its few microseconds of holding it is ignored after this. */
const BREAKER_STALE_MS = 10_000;

/** Remove the stale lock `file` if it still reads `stale`, holding `file.break` meanwhile. */
async function breakStale(file: string, mine: string, stale: string): Promise<void> {
  const breaker = `${file}.break`;
  try {
    await fs.link(mine, breaker);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const st = await fs.stat(breaker).catch(() => null);
    if (st && Date.now() - st.mtimeMs > BREAKER_STALE_MS) await fs.rm(breaker, { force: true });
    return; // another run is breaking it: look again
  }
  try {
    if ((await fs.readFile(file, 'utf8').catch(() => null)) === stale) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(breaker, { force: true });
  }
}

/** A lock file that cannot be read as a holder is taken for busy until it is this old. */
const UNREADABLE_STALE_MS = 60 * 60 * 1000;

/**
 * Take the target's lock or throw LockBusyError at once. The lock file appears whole: the holder
 * is written to a private temp file that is then hard-linked to `.lock` (link fails if `.lock`
 * exists), so no reader ever sees a half-written lock. A stale lock (its process gone) is removed
 * under a second, short-lived lock, and only if it is still the lock judged stale.
 */
export async function acquireLock(dir: string, target: TargetRef, command: string): Promise<Lock> {
  await ensureDir(dir);
  const file = path.join(dir, '.lock');
  const me: Holder = { pid: process.pid, start: processStart(process.pid), host: os.hostname(), since: new Date().toISOString(), command };
  const text = JSON.stringify(me);
  const mine = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(mine, text, { flag: 'wx', mode: FILE_MODE });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await fs.link(mine, file);
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
        holder = null;
      }
      if (holder && alive(holder)) throw new LockBusyError(target, `pid ${holder.pid} since ${holder.since}: ${holder.command}`);
      if (!holder) {
        const st = await fs.stat(file).catch(() => null);
        if (st && Date.now() - st.mtimeMs < UNREADABLE_STALE_MS) throw new LockBusyError(target, `unreadable lock file ${file}`);
      }
      // Stale. Only the holder of the breaker (`.lock.break`, created as atomically as the lock)
      // may remove it, and only while it is still the very lock judged stale: a fresh lock taken
      // meanwhile by another run is never removed.
      await breakStale(file, mine, current);
    }
    throw new LockBusyError(target, 'contended');
  } finally {
    await fs.rm(mine, { force: true });
  }
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
