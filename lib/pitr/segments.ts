/**
 * WAL segment names as arithmetic (pure): `TTTTTTTTXXXXXXXXYYYYYYYY` is timeline T, and segment
 * number X·(2³²/size) + Y of that timeline, for the cluster's segment size (16 MiB unless initdb
 * said otherwise; read from the files themselves).
 */
import { InternalError } from '../core/errors.js';
import { WAL_NAME } from '../formats/pitr.js';

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

function perLogId(segmentSize: number): number {
  if (!Number.isInteger(Math.log2(segmentSize)) || segmentSize < 1 << 20 || segmentSize > 1 << 30) throw new InternalError(`not a WAL segment size: ${segmentSize}`);
  return 0x100000000 / segmentSize;
}

/** The timeline of any archived name (segment, .partial, .backup, .history). */
export function timelineOf(name: string): number {
  return parseInt(name.slice(0, 8), 16);
}

/** A segment's number on its timeline. */
export function segmentNumber(name: string, segmentSize: number): number {
  if (!WAL_NAME.segment.test(name)) throw new InternalError(`not a WAL segment name: ${name}`);
  return parseInt(name.slice(8, 16), 16) * perLogId(segmentSize) + parseInt(name.slice(16, 24), 16);
}

export function segmentName(timeline: number, n: number, segmentSize: number): string {
  const per = perLogId(segmentSize);
  return hex8(timeline) + hex8(Math.floor(n / per)) + hex8(n % per);
}

/** An LSN as a number of bytes (exact below 2⁵³). */
export function lsnBytes(lsn: string): number {
  const [hi, lo] = lsn.split('/').map((h) => parseInt(h, 16));
  return hi * 0x100000000 + lo;
}

/** The segment an LSN like `0/3000028` falls in (the one holding its byte). */
export function segmentOfLsn(lsn: string, timeline: number, segmentSize: number): string {
  return segmentName(timeline, Math.floor(lsnBytes(lsn) / segmentSize), segmentSize);
}

/** Every segment missing between the first and the last of each timeline, in order (none: []). */
export function findGaps(names: Iterable<string>, segmentSize: number): string[] {
  const byTimeline = new Map<number, number[]>();
  for (const n of names) {
    if (!WAL_NAME.segment.test(n)) continue;
    const t = timelineOf(n);
    byTimeline.set(t, [...(byTimeline.get(t) ?? []), segmentNumber(n, segmentSize)]);
  }
  const missing: string[] = [];
  for (const [t, nums] of [...byTimeline].sort((a, b) => a[0] - b[0])) {
    const have = [...new Set(nums)].sort((a, b) => a - b);
    for (let i = 1; i < have.length; i++) for (let n = have[i - 1] + 1; n < have[i]; n++) missing.push(segmentName(t, n, segmentSize));
  }
  return missing;
}
