// `pgfleet report --html` over a simulated year of nightly backups (scripts/sandbox/history.ts,
// PGFLEET_NOW), one tenant's dump made to shrink on its last night: the built CLI writes one
// self-contained page (no script, no request), which headless Chromium (Debian's `chromium`)
// opens, renders and screenshots; the rendered DOM has one size chart per target and the shrink
// flag on that tenant alone. `status` fails on the same shrink, and only for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI } from '../helpers.js';
import { demoHistory } from '../../scripts/sandbox/history.js';

const NOW = '2026-11-30T12:00:00Z';
const MiB = 1048576;
const TARGETS = ['acme/production', 'acme/staging', 'globex/production', 'initech/production'];

function chromium(dir: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const profile = mkdtempSync(path.join(dir, 'chromium-'));
  const r = spawnSync(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, ...args],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * MiB },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('pgfleet report: a year of backups as pictures (headless Chromium)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-report-'));
  const page = path.join(dir, 'report.html');
  const cli = (args: string[], file?: string) => spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, PGFLEET_CONFIG: file ?? config, PGFLEET_NOW: NOW }, encoding: 'utf8', timeout: 120_000 });

  let config: string;
  beforeAll(async () => {
    config = await demoHistory(dir, new Date(NOW));
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one self-contained page, 0600, its path the last stdout line', () => {
    const r = cli(['report', '--html', page]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(page);
    expect(statSync(page).mode & 0o777).toBe(0o600);
    const html = readFileSync(page, 'utf8');
    // Nothing fetched when it is opened: no script, no link, no image source, no CSS import or url().
    for (const bad of ['<script', '<link', ' src=', ' href=', '@import', 'url(', 'http://', 'https://']) expect(html, bad).not.toContain(bad);
  });

  it('Chromium renders it: one size chart per target, the shrink flagged on the shrunk tenant alone', () => {
    const dom = chromium(dir, ['--dump-dom', `file://${page}`]);
    expect(dom.status, dom.stderr).toBe(0);
    const sections = [...dom.stdout.matchAll(/<section class="target[^"]*" data-target="([^"]+)">([\s\S]*?)<\/section>/g)];
    expect(sections.map((m) => m[1])).toEqual(TARGETS);
    for (const [, , body] of sections) {
      expect(body.match(/<svg class="chart" data-chart="size"/g)?.length).toBe(1);
      expect(body.match(/<svg class="chart" data-chart="duration"/g)?.length).toBe(1);
      expect(body.match(/data-chart="verification"/g)?.length).toBe(1);
      // A year of nightly backups: a point each on the size chart.
      expect(body.split('data-chart="size"')[1].split('</svg>')[0].match(/<circle /g)?.length).toBe(365);
    }
    const of = (t: string) => sections.find((m) => m[1] === t)![2];
    expect(of('globex/production')).toMatch(/data-flag="shrank">⚠ dump db_20261130_021500Z shrank 7\d % against the median of the 7 before it/);
    expect(of('globex/production')).toMatch(/<circle class="pt flagged"/);
    for (const t of TARGETS.filter((x) => x !== 'globex/production')) expect(of(t)).not.toContain('data-flag="shrank"');
    // The other findings: offsite lag where offsite is configured, a backup time trending past the window, never verified.
    expect(of('acme/production')).toContain('data-chart="offsite"');
    expect(of('globex/production')).not.toContain('data-chart="offsite"');
    expect(of('initech/production')).toMatch(/backup time grows 1\d\.\d s a day; at this rate it reaches the backup window around 2027-/);
    expect(of('acme/staging')).toContain('never proven restorable');
    expect(of('acme/production')).toMatch(/51 verified · <span class="k failed">■<\/span> 1 failed/);
  });

  it('Chromium screenshots it', () => {
    const shot = path.join(dir, 'report.png');
    const r = chromium(dir, [`--screenshot=${shot}`, '--window-size=1200,2000', `file://${page}`]);
    expect(r.status, r.stderr).toBe(0);
    const png = readFileSync(shot);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(30_000); // charts drawn, not a blank page
  });

  it('status fails on the shrunk dump, and only for that tenant', () => {
    // Without offsite, whose simulated pending copies would fail acme's targets on their own.
    const plain = path.join(dir, 'no-offsite.yml');
    writeFileSync(plain, readFileSync(config, 'utf8').replace(/^ {4}offsite: .*\n/m, ''));
    const r = cli(['status', '--json'], plain);
    expect(r.status, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout) as { targets: { project: string; environment: string; ok: boolean; problems: string[]; size_anomaly: { kind: string } | null }[] };
    const failing = report.targets.filter((t) => !t.ok).map((t) => `${t.project}/${t.environment}`);
    expect(failing).toEqual(['globex/production']);
    const g = report.targets.find((t) => t.project === 'globex')!;
    expect(g.size_anomaly?.kind).toBe('shrank');
    expect(g.problems.join('; ')).toMatch(/shrank 7\d % against the median of the 7 before it/);
  });
});
