/**
 * Timelines: where a recovery from a base backup goes once the cluster has switched timeline (a
 * promotion: a PITR of the whole cluster, a failover, a restored copy). PostgreSQL archives the
 * new timeline's history file (`0000000N.history`: each ancestor timeline and the LSN where it
 * ended) and then that timeline's segments; the segment holding the switch point is archived
 * under both timelines (the old one's often as `.partial`), and replay reads it from the new one.
 *
 * A base backup's recovery follows the newest timeline whose history descends from the backup's
 * own timeline after the backup ended (recovery_target_timeline = 'latest' as PostgreSQL picks it,
 * named explicitly to the temporary instance), so the restorable window, a restore's plan and a
 * chain verification all extend across the switch. Segments of a branch left behind (the old
 * timeline's WAL written after the switch point, before the cluster was rewound) are not on the
 * path and never replayed.
 *
 * parseHistory, timelinePath and walkChain are pure; readHistories reads the history files (the
 * repository's, decompressed, and those still in the landing directory).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { WAL_NAME, type BaseBackupMetadata, type WalRecord } from '../formats/pitr.js';
import type { Context } from '../runtime/context.js';
import type { ClusterArchive } from './archive.js';
import { lsnBytes, segmentName, segmentNumber, timelineOf } from './segments.js';

/** A timeline's history file: its ancestors, oldest first, each with the LSN where it ended (the switch point). */
export interface TimelineHistory {
  timeline: number;
  parents: { timeline: number; end: string }[];
}

/** One timeline of a recovery's path: its segments numbered from `from` (inclusive) to `to` (exclusive; null: the last, open). */
export interface Leg {
  timeline: number;
  from: number;
  to: number | null;
}

/** `<parent TLI>\t<switch LSN>\t<reason>` lines (blank and `#` lines skipped); throws naming the file on any other line. */
export function parseHistory(name: string, text: string): TimelineHistory {
  if (!WAL_NAME.history.test(name)) throw new Error(`${name}: not a timeline history file name`);
  const parents: TimelineHistory['parents'] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(\s|$)/.exec(line);
    if (!m) throw new Error(`${name}: unreadable line ${JSON.stringify(line.slice(0, 80))}`);
    parents.push({ timeline: Number(m[1]), end: m[2].toUpperCase() });
  }
  return { timeline: timelineOf(name), parents };
}

/**
 * The timelines a recovery of `base` replays, as legs of segment numbers, and its target
 * timeline: the newest one whose history has the base's timeline ending at or after the base's
 * stop LSN (a timeline that forked before the backup was consistent is not its child); with
 * none, the base's own timeline, open-ended.
 */
export function timelinePath(base: Pick<BaseBackupMetadata, 'timeline' | 'start_lsn' | 'stop_lsn'>, histories: readonly TimelineHistory[], size: number): { timeline: number; legs: Leg[] } {
  const seg = (lsn: string) => Math.floor(lsnBytes(lsn) / size);
  const first = seg(base.start_lsn);
  const child = histories
    .filter((h) => h.timeline > base.timeline && h.parents.some((p) => p.timeline === base.timeline && lsnBytes(p.end) >= lsnBytes(base.stop_lsn)))
    .sort((a, b) => b.timeline - a.timeline)[0];
  if (!child) return { timeline: base.timeline, legs: [{ timeline: base.timeline, from: first, to: null }] };
  const line = child.parents.slice(child.parents.findIndex((p) => p.timeline === base.timeline));
  const legs: Leg[] = line.map((p, i) => ({ timeline: p.timeline, from: i === 0 ? first : seg(line[i - 1].end), to: seg(p.end) }));
  legs.push({ timeline: child.timeline, from: seg(line.at(-1)!.end), to: null });
  return { timeline: child.timeline, legs };
}

/** The timeline segment number `n` is replayed from on the path, or null before its start. */
function legOf(legs: readonly Leg[], n: number): Leg | null {
  if (n < legs[0].from) return null;
  return legs.find((l) => n >= l.from && (l.to === null || n < l.to))!;
}

export interface Walk {
  /** The target timeline and the path to it. */
  timeline: number;
  legs: Leg[];
  /** The segments on the path from the base's first, in replay order, as far as `names` hold them without a gap. */
  run: string[];
  /** The first segment on the path that `names` lack (where recovery stops). */
  next: string;
  /** Segments on the path that `names` lack but a later one is there: the gap (empty: none). */
  missing: string[];
}

/** The archive's segments (`names`: any archived names; others are ignored) walked along `base`'s path; see Walk. */
export function walkChain(base: Pick<BaseBackupMetadata, 'timeline' | 'start_lsn' | 'stop_lsn'>, histories: readonly TimelineHistory[], names: Iterable<string>, size: number): Walk {
  const { timeline, legs } = timelinePath(base, histories, size);
  const have = new Set([...names].filter((n) => WAL_NAME.segment.test(n)));
  const nameAt = (n: number) => segmentName(legOf(legs, n)!.timeline, n, size);
  const run: string[] = [];
  let n = legs[0].from;
  while (have.has(nameAt(n))) run.push(nameAt(n++));
  // The last segment held on the path: anything missing before it is a gap.
  const last = [...have].filter((x) => legOf(legs, segmentNumber(x, size))?.timeline === timelineOf(x)).reduce((m, x) => Math.max(m, segmentNumber(x, size)), n - 1);
  const missing: string[] = [];
  for (let k = n; k < last; k++) if (!have.has(nameAt(k))) missing.push(nameAt(k));
  return { timeline, legs, run, next: nameAt(n), missing };
}

/** Timelines of archived segments (above the first) whose history file is not archived: recovery cannot follow them. */
export function historiesMissing(names: Iterable<string>, histories: readonly TimelineHistory[]): string[] {
  const known = new Set(histories.map((h) => h.timeline));
  const tlis = new Set([...names].filter((n) => WAL_NAME.segment.test(n)).map(timelineOf));
  return [...tlis].filter((t) => t > 1 && !known.has(t)).sort((a, b) => a - b).map((t) => `${t.toString(16).toUpperCase().padStart(8, '0')}.history`);
}

/** The problem historiesMissing() found, as status, restore --to and verification name it. */
export function missingHistoryProblem(lost: readonly string[]): string {
  return `segments of a newer timeline are archived without its history file (${lost.join(', ')} missing): recovery cannot follow the timeline switch; see that the archiver archives it (archive_command), or take a new base backup and restore from it`;
}

/** The path as an operator reads it: `timeline 1`, or `timelines 1 → 2 (switch in 000000020000000000000005)`. */
export function describePath(w: Pick<Walk, 'legs'>, size: number): string {
  if (w.legs.length === 1) return `timeline ${w.legs[0].timeline}`;
  return `timelines ${w.legs.map((l) => l.timeline).join(' → ')} (switch${w.legs.length > 2 ? 'es' : ''} at ${w.legs
    .slice(1)
    .map((l) => segmentName(l.timeline, l.from, size))
    .join(', ')})`;
}

/**
 * Every history file the cluster archived: the repository's (decompressed with zstd) and those
 * waiting in `landingDir` (not taken in yet). A history that cannot be read or parsed is a problem,
 * named, never skipped silently.
 */
export async function readHistories(ctx: Pick<Context, 'runner' | 'signal'>, a: ClusterArchive, records: readonly WalRecord[], landingDir?: string): Promise<{ histories: TimelineHistory[]; problems: string[] }> {
  const histories: TimelineHistory[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const r of records.filter((x) => x.kind === 'history')) {
    seen.add(r.name);
    try {
      const text = (await ctx.runner.run(['zstd', '-dc', '--', a.store.pathOf!(a.walKey(r.name))], { what: `zstd -d (history ${r.name})`, role: 'decompress', signal: ctx.signal })).stdout;
      histories.push(parseHistory(r.name, text));
    } catch (e) {
      problems.push(`timeline history ${r.name} cannot be read: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (landingDir) {
    const names = await fs.readdir(landingDir).catch(() => [] as string[]);
    for (const n of names.filter((x) => WAL_NAME.history.test(x) && !seen.has(x))) {
      try {
        histories.push(parseHistory(n, await fs.readFile(path.join(landingDir, n), 'utf8')));
      } catch (e) {
        problems.push(`timeline history ${n} in ${landingDir} cannot be read: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  return { histories, problems };
}
