/**
 * Files the way a backup tool must write them: directories 0700, files 0600 whatever the umask;
 * whole files appear atomically (temp name, fsync, rename, fsync of the directory). Under
 * backup_root only the local store (lib/storage/local.ts) and the target lock use these; other
 * files (the metrics textfile) use writeFileAtomic directly.
 */
import { promises as fs, constants } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
/** Temporary files start with this, so they are never taken for a backup. */
export const TEMP_PREFIX = '.tmp-';

/** mkdir -p, with every directory it creates (and the leaf) at 0700. */
export async function ensureDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      await fs.access(d);
      break;
    } catch {
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
  }
  await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
  for (const d of missing) await fs.chmod(d, DIR_MODE);
  await fs.chmod(dir, DIR_MODE);
}

/**
 * A temp name beside `final`: `.tmp-<name>.<pid>.<8 hex>`. The writer's pid is part of the name,
 * so a run that finds it can tell whether its writer is gone (parseTempName, pidAlive).
 */
export function tempPathFor(final: string, pid: number = process.pid): string {
  return path.join(path.dirname(final), `${TEMP_PREFIX}${path.basename(final)}.${pid}.${randomBytes(4).toString('hex')}`);
}

/**
 * What a temp file name says: the name it was to be published under and, when it is exactly
 * tempPathFor's shape, its writer's pid (else null: a temp of unknown origin, judged by age only).
 * Null for a name that is not a temp.
 */
export function parseTempName(name: string): { final: string; pid: number | null } | null {
  if (!name.startsWith(TEMP_PREFIX)) return null;
  const rest = name.slice(TEMP_PREFIX.length);
  const strict = /^(.+)\.(\d+)\.[0-9a-f]{8}$/.exec(rest);
  if (strict) return { final: strict[1], pid: Number(strict[2]) };
  const loose = /^(.+?)\.\d+\.[0-9a-f]+$/.exec(rest);
  return { final: loose ? loose[1] : rest, pid: null };
}

/** Whether a process of this pid exists on this host (EPERM: it exists, it is not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, constants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Publish a fully written, fsynced temp file under its final name. */
export async function publish(temp: string, final: string): Promise<void> {
  await fs.rename(temp, final);
  await fsyncDir(path.dirname(final));
}

/**
 * Write a whole file atomically at 0600 (or `mode`, for files meant for other readers such as a
 * metrics textfile): readers see the old content or the new, never a part.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode: number = FILE_MODE): Promise<void> {
  const tmp = tempPathFor(file);
  const h = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await h.writeFile(data);
    await h.chmod(mode);
    await h.sync();
  } catch (e) {
    await h.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  try {
    await publish(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
