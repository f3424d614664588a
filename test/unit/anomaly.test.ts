// lib/fleet/anomaly.ts, the pure judge of a target's history, and the report page it feeds
// (lib/fleet/report.ts, chart.ts): flags with their numbers, no flag without enough history, text escaped.
import { describe, expect, it } from 'vitest';
import { durationTrend, median, sizeAnomaly, type Sample } from '../../lib/fleet/anomaly.js';
import { esc, seriesChart } from '../../lib/fleet/chart.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config/load.js';
import { ConfigError } from '../../lib/core/errors.js';

const MiB = 1048576;
const DAY = 86_400_000;
const NOW = new Date('2026-11-30T12:00:00Z');
/** Nightly samples, newest first: sizes in MiB and times in s, oldest first as given. */
const nights = (sizes: number[], secs?: number[]): Sample[] =>
  sizes
    .map((s, i) => ({ id: `db_${i}`, created_at: new Date(NOW.getTime() - (sizes.length - i) * DAY).toISOString(), size_bytes: s * MiB, duration_ms: (secs?.[i] ?? 10) * 1000 }))
    .reverse();

describe('sizeAnomaly', () => {
  it('a dump far below the median of the ones before it has shrunk; the message says by how much, of what', () => {
    const a = sizeAnomaly(nights([40, 41, 40, 42, 41, 40, 41, 10]), 0.3);
    expect(a).toMatchObject({ kind: 'shrank', id: 'db_7', median_bytes: 41 * MiB, of: 7 });
    expect(a!.change).toBeCloseTo(10 / 41 - 1);
    expect(a!.message).toBe('dump db_7 shrank 76 % against the median of the 7 before it (10.0 MiB vs 41.0 MiB; flagged beyond 30 %)');
  });

  it('grew, too; within the share, nothing; the median, not the mean (one odd night does not move it)', () => {
    expect(sizeAnomaly(nights([40, 40, 40, 60]), 0.3)?.kind).toBe('grew');
    expect(sizeAnomaly(nights([40, 40, 40, 30]), 0.3)).toBeNull();
    expect(sizeAnomaly(nights([40, 40, 1, 40, 40, 40]), 0.3)).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });

  it('needs three earlier backups; looks only at the seven before; any backup by its index', () => {
    expect(sizeAnomaly(nights([40, 40, 5]), 0.3)).toBeNull();
    expect(sizeAnomaly(nights([1, 1, 1, 40, 40, 40, 40, 40, 40, 40, 40]), 0.3)).toBeNull();
    const h = nights([40, 40, 40, 40, 10, 40]);
    expect(sizeAnomaly(h, 0.3)).toBeNull(); // the newest, judged by a median the low night does not move
    expect(sizeAnomaly(h, 0.3, 1)?.kind).toBe('shrank'); // the one before it
  });
});

describe('durationTrend', () => {
  const rising = nights(Array(30).fill(10), Array.from({ length: 30 }, (_, i) => 3000 + 60 * i)); // +60 s a night, 3000 s → 4740 s

  it('a rising backup time: its slope, and when it reaches the limit (within the horizon)', () => {
    const t = durationTrend(rising, { now: NOW, limitMs: 2 * 3_600_000, limitName: 'backup window' });
    expect(t!.ms_per_day).toBeCloseTo(60_000, -1);
    expect(t!.crosses_at!.slice(0, 10)).toBe('2027-01-09'); // (7200 − 4800 s, the line at now) / 60 s a day = 40 days
    expect(t!.message).toBe('backup time grows 60.0 s a day; at this rate it reaches the backup window around 2027-01-09');
  });

  it('no flag beyond the horizon, for a flat or falling time, or with fewer than 5 backups', () => {
    expect(durationTrend(rising, { now: NOW, limitMs: 26 * 3_600_000, limitName: 'max_backup_age' })!.message).toBeNull();
    expect(durationTrend(nights(Array(30).fill(10), Array(30).fill(100)), { now: NOW, limitMs: 200_000, limitName: 'x' })!.message).toBeNull(); // flat: never reaches it
    expect(durationTrend(nights([1, 1, 1, 1], [1, 2, 3, 4]), { now: NOW, limitMs: 5000, limitName: 'x' })).toBeNull();
    const falling = nights(Array(30).fill(10), Array.from({ length: 30 }, (_, i) => 5000 - 60 * i));
    expect(durationTrend(falling, { now: NOW, limitMs: 7_200_000, limitName: 'x' })!.crosses_at).toBeNull();
  });
});

describe('the report’s SVG', () => {
  it('escapes every text, draws a point per value and the flagged one red', () => {
    expect(esc(`<a href="x">&'`)).toBe('&#60;a href=&#34;x&#34;&#62;&#38;&#39;');
    const svg = seriesChart({ name: 'size', from: 0, to: 10, format: (v) => `${v}<b>`, points: [{ t: 1, v: 5 }, { t: 2, v: 7, flag: 'shrank <lost>' }] });
    expect(svg).not.toContain('<b>');
    expect(svg.match(/<circle /g)).toHaveLength(2);
    expect(svg).toContain('<circle class="pt flagged"');
    expect(svg).toContain('<title>shrank &#60;lost&#62;</title>');
  });
});

describe('platform.report', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-report-config-'));
  const load = (report: string) => {
    const f = path.join(dir, 'projects.yml');
    writeFileSync(f, `platform:\n  backup_root: ${dir}\n${report}acme:\n  database:\n    type: postgresql\n    container: acme-db\n    databases: { production: acme_production }\n`);
    return loadConfig(f, {});
  };
  it('defaults: 0.3, the window max_backup_age; set: its values; a share of 0 is an error with file and line', () => {
    try {
      expect(load('').platform.report).toEqual({ anomalyShare: 0.3, backupWindowMs: undefined });
      expect(load('  report: { anomaly_share: 0.5, backup_window: 4h }\n').platform.report).toEqual({ anomalyShare: 0.5, backupWindowMs: 4 * 3_600_000 });
      expect(() => load('  report: { anomaly_share: 0 }\n')).toThrow(ConfigError);
      try {
        load('  report: { anomaly_share: 0 }\n');
      } catch (e) {
        expect((e as ConfigError).issues.map((i) => [i.line, i.path])).toEqual([[3, 'platform.report.anomaly_share']]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
