/**
 * The fleet report as one self-contained HTML page (`pgfleet report`): per target, dump size and
 * backup time over the period, the history of restore proofs (verified, failed, never), the offsite
 * copies' lag where offsite is configured, and the flags of lib/fleet/anomaly.ts. Pure: data in,
 * a string out. No script, no font, no request at view time: inline CSS and inline SVG
 * (lib/fleet/chart.ts) only, so the file can be mailed, archived, or opened on an air-gapped host.
 */
import type { BackupMetadata } from '../formats/metadata.js';
import { humanSize } from '../core/text.js';
import { durationTrend, MEDIAN_WINDOW, sizeAnomaly, type DurationTrend, type SizeAnomaly } from './anomaly.js';
import { esc, seriesChart, stripChart, type Point } from './chart.js';

export interface ReportTarget {
  project: string;
  environment: string;
  database: string;
  enabled: boolean;
  /** Complete backups, newest first (all of them: the median looks before the period). */
  backups: BackupMetadata[];
  damaged: number;
  offsite: boolean;
}

export interface ReportInput {
  now: Date;
  days: number;
  /** platform.report.anomaly_share */
  share: number;
  /** The limit the backup time's trend is held against, and its name. */
  limitMs: number;
  limitName: string;
  version: string;
  targets: ReportTarget[];
}

export interface TargetFindings {
  key: string;
  latestSize: SizeAnomaly | null;
  /** Every backup in the period whose size was flagged against the backups before it. */
  sizeFlags: SizeAnomaly[];
  trend: DurationTrend | null;
  lastVerified: string | null;
  flags: string[];
}

const DAY = 86_400_000;
/** The unit gridlines of a size or a time chart fall on (whole KiB, MiB, GiB; seconds, minutes, hours). */
const sizeScale = (max: number) => 1024 ** Math.max(0, Math.min(4, Math.floor(Math.log(Math.max(1, max)) / Math.log(1024))));
const timeScale = (max: number) => (max >= 7_200_000 ? 3_600_000 : max >= 120_000 ? 60_000 : 1000);
const seconds = (ms: number) => (ms < 120_000 ? `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);

export function findings(t: ReportTarget, r: Pick<ReportInput, 'now' | 'days' | 'share' | 'limitMs' | 'limitName'>): TargetFindings {
  const from = r.now.getTime() - r.days * DAY;
  const inPeriod = t.backups.filter((b) => Date.parse(b.created_at) >= from);
  const sizeFlags = inPeriod.map((_, i) => sizeAnomaly(t.backups, r.share, i)).filter((x): x is SizeAnomaly => x !== null);
  const latestSize = sizeAnomaly(t.backups, r.share);
  const trend = durationTrend(t.backups, { now: r.now, limitMs: r.limitMs, limitName: r.limitName });
  const verified = t.backups.filter((b) => b.verification?.status === 'passed').map((b) => b.verification!.verified_at).sort();
  const flags = [
    ...(latestSize ? [latestSize.message] : []),
    ...(trend?.message ? [trend.message] : []),
    ...(t.backups.length && !verified.length ? ['never proven restorable: no backup has passed a verification restore'] : []),
    ...(t.damaged ? [`${t.damaged} damaged backup(s)`] : []),
  ];
  return { key: `${t.project}/${t.environment}`, latestSize, sizeFlags, trend, lastVerified: verified.at(-1) ?? null, flags };
}

function targetSection(t: ReportTarget, r: ReportInput): string {
  const f = findings(t, r);
  const to = r.now.getTime();
  const from = to - r.days * DAY;
  const shown = t.backups.filter((b) => Date.parse(b.created_at) >= from);
  const flagOf = new Map(f.sizeFlags.map((a) => [a.id, a.message]));
  const at = (b: BackupMetadata) => Date.parse(b.created_at);
  const size: Point[] = shown.map((b) => ({ t: at(b), v: b.size_bytes, flag: flagOf.get(b.id), label: `${b.id}: ${humanSize(b.size_bytes)}` }));
  const dur: Point[] = shown.map((b) => ({ t: at(b), v: b.duration_ms, label: `${b.id}: ${seconds(b.duration_ms)}` }));
  const trend = f.trend && ([from, f.trend.now_ms - f.trend.ms_per_day * r.days, to, f.trend.now_ms] as [number, number, number, number]);
  const limit = r.limitMs <= Math.max(...dur.map((p) => p.v), 0) * 3 ? [{ v: r.limitMs, label: r.limitName }] : [];
  const proofs = shown.map((b) => {
    const v = b.verification;
    return { t: at(b), cls: !v ? 'never' : v.status === 'passed' ? 'passed' : 'failed', label: `${b.id}: ${v ? `${v.status} ${v.verified_at}` : 'never verified'}` };
  });
  const counts = { passed: proofs.filter((p) => p.cls === 'passed').length, failed: proofs.filter((p) => p.cls === 'failed').length, never: proofs.filter((p) => p.cls === 'never').length };
  const lagged = shown.filter((b) => b.offsite);
  const lag: Point[] = lagged.map((b) =>
    b.offsite!.status === 'uploaded' && b.offsite!.uploaded_at
      ? { t: at(b), v: (Date.parse(b.offsite!.uploaded_at) - at(b)) / 3_600_000, label: `${b.id}: uploaded ${b.offsite!.uploaded_at}` }
      : { t: at(b), v: (to - at(b)) / 3_600_000, flag: `${b.id}: offsite pending${b.offsite!.error ? ` (${b.offsite!.error})` : ''}` },
  );
  const latest = t.backups[0];
  const flagged = f.flags.length > 0;
  return `<section class="target${flagged ? ' flagged' : ''}" data-target="${esc(f.key)}">
<h2>${esc(f.key)} <small>${esc(t.database)}${t.enabled ? '' : ' · disabled'}</small></h2>
<p class="facts">${shown.length} backups in ${r.days} days · latest ${latest ? `${esc(latest.id)}, ${humanSize(latest.size_bytes)}, ${seconds(latest.duration_ms)}` : 'none'} · last proven restorable ${f.lastVerified ? esc(f.lastVerified.slice(0, 10)) : 'never'}</p>
${f.latestSize ? `<p class="flag ${f.latestSize.kind}" data-flag="${f.latestSize.kind}">⚠ ${esc(f.latestSize.message)}</p>` : ''}
${f.flags.filter((m) => m !== f.latestSize?.message).map((m) => `<p class="flag" data-flag="other">⚠ ${esc(m)}</p>`).join('\n')}
<div class="charts">
<figure><figcaption>dump size</figcaption>${seriesChart({ name: 'size', points: size, from, to, format: (v) => humanSize(v), scale: sizeScale(Math.max(0, ...size.map((p) => p.v))) })}</figure>
<figure><figcaption>backup time</figcaption>${seriesChart({ name: 'duration', points: dur, from, to, format: (v) => seconds(v), trend: trend ?? undefined, lines: limit, scale: timeScale(Math.max(0, ...dur.map((p) => p.v), ...limit.map((l) => l.v))) })}</figure>
<figure><figcaption>restore proofs: <span class="k passed">■</span> ${counts.passed} verified · <span class="k failed">■</span> ${counts.failed} failed · <span class="k never">■</span> ${counts.never} never</figcaption>${stripChart('verification', proofs, from, to)}</figure>
${t.offsite ? `<figure><figcaption>offsite lag (hours from backup to confirmed copy; red: pending)</figcaption>${seriesChart({ name: 'offsite', points: lag, from, to, format: (v) => `${n1(v)} h`, height: 110, empty: 'no offsite copy recorded in this period' })}</figure>` : ''}
</div>
</section>`;
}

const n1 = (v: number) => (v < 10 ? v.toFixed(1) : String(Math.round(v)));

const CSS = `body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 2px}h2 small{font-weight:normal;color:#777}
.summary{color:#555;margin:0 0 16px}.target{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:0 0 16px}
.target.flagged{border-color:#c0392b;box-shadow:0 0 0 1px #c0392b inset}.facts{color:#555;margin:2px 0 6px}
.flag{color:#fff;background:#c0392b;border-radius:4px;padding:4px 8px;margin:4px 0;display:inline-block}.flag.grew{background:#d35400}
.charts{display:flex;flex-wrap:wrap;gap:4px 24px}figure{margin:4px 0}figcaption{font-size:12px;color:#555}
svg .grid{stroke:#eee}svg .ylab{font-size:10px;fill:#888;text-anchor:end}svg .xlab{font-size:10px;fill:#888;text-anchor:middle}
svg .line{fill:none;stroke:#2e86c1;stroke-width:1.5}svg .pt{fill:#2e86c1}svg .pt.flagged{fill:#c0392b;stroke:#fff;stroke-width:1}
svg .trend{stroke:#8e44ad;stroke-dasharray:5 4;stroke-width:1.5}svg .limit{stroke-dasharray:3 3}svg .limlab{font-size:10px;fill:#c0392b;text-anchor:end}
svg .empty{font-size:12px;fill:#999;text-anchor:middle}.tick.passed,.k.passed{fill:#27ae60;color:#27ae60}.tick.failed,.k.failed{fill:#c0392b;color:#c0392b}
.tick.never,.k.never{fill:#ccc;color:#bbb}`;

export function renderReport(r: ReportInput): string {
  const all = r.targets.map((t) => findings(t, r));
  const flagged = all.filter((f) => f.flags.length);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>pgfleet report ${esc(r.now.toISOString().slice(0, 10))}</title>
<style>${CSS}</style></head>
<body>
<h1>pgfleet report</h1>
<p class="summary">${r.targets.length} target(s), the last ${r.days} days to ${esc(r.now.toISOString().slice(0, 16).replace('T', ' '))} UTC · ${flagged.length ? `<b>${flagged.length} flagged</b>: ${flagged.map((f) => esc(f.key)).join(', ')}` : 'nothing flagged'} · a dump is flagged when it is more than ${Math.round(r.share * 100)} % off the median of the ${MEDIAN_WINDOW} before it · pgfleet ${esc(r.version)}</p>
${r.targets.map((t) => targetSection(t, r)).join('\n')}
</body></html>
`;
}
