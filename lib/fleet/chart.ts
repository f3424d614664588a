/**
 * Small charts as inline SVG strings, for the report (lib/fleet/report.ts): a time series (line,
 * points, optional flagged points, reference lines) and a strip of coloured ticks. Pure, no
 * dependency: the page stays one self-contained file that draws without network or script, and
 * its charts are text a test can count. Every value written is a number or escaped text.
 */

export interface Point {
  t: number;
  v: number;
  /** Drawn red, with this as its tooltip. */
  flag?: string;
  /** Tooltip. */
  label?: string;
}

export interface SeriesChart {
  name: string;
  points: Point[];
  from: number;
  to: number;
  format: (v: number) => string;
  /** Horizontal reference lines (a limit): drawn dashed, labelled. */
  lines?: { v: number; label: string; color?: string }[];
  /** A fitted line from (t0, v0) to (t1, v1), dashed. */
  trend?: [number, number, number, number];
  height?: number;
  /** Gridlines fall on round numbers of this unit (1 MiB, 1 min): `format` gets the raw value. */
  scale?: number;
  /** Said when there are no points. */
  empty?: string;
}

const W = 520;
const PAD = { l: 64, r: 12, t: 10, b: 22 };

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const n = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : 0);

/** 1, 2, 5 × 10^k steps: about four gridlines from 0 to at least `max`. */
function yTicks(max: number): number[] {
  if (max <= 0) return [0, 1];
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = 0; v < max + step; v += step) out.push(v);
  return out;
}

/** Month starts between from and to, at most ~12 labels. */
function xTicks(from: number, to: number): number[] {
  const out: number[] = [];
  const d = new Date(from);
  d.setUTCDate(1);
  d.setUTCHours(0, 0, 0, 0);
  const months = Math.max(1, Math.ceil((to - from) / (86_400_000 * 30 * 12)));
  while (d.getTime() <= to) {
    if (d.getTime() >= from) out.push(d.getTime());
    d.setUTCMonth(d.getUTCMonth() + months);
  }
  return out.length ? out : [from];
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const dayLabel = (t: number) => {
  const d = new Date(t);
  return (to: number, from: number) => (to - from > 86_400_000 * 62 ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear() % 100}` : d.toISOString().slice(5, 10));
};

export function seriesChart(c: SeriesChart): string {
  const H = c.height ?? 150;
  const maxV = Math.max(...c.points.map((p) => p.v), ...(c.lines ?? []).map((l) => l.v), 0) * 1.05;
  const scale = c.scale ?? 1;
  const ticks = yTicks(maxV / scale).map((v) => v * scale);
  const top = ticks[ticks.length - 1] || 1;
  const span = Math.max(1, c.to - c.from);
  const x = (t: number) => PAD.l + ((t - c.from) / span) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - (v / top) * (H - PAD.t - PAD.b);
  const parts: string[] = [];
  for (const v of ticks) parts.push(`<line class="grid" x1="${PAD.l}" x2="${W - PAD.r}" y1="${n(y(v))}" y2="${n(y(v))}"/><text class="ylab" x="${PAD.l - 6}" y="${n(y(v) + 4)}">${esc(c.format(v))}</text>`);
  for (const t of xTicks(c.from, c.to)) parts.push(`<text class="xlab" x="${n(x(t))}" y="${H - 6}">${esc(dayLabel(t)(c.to, c.from))}</text>`);
  for (const l of c.lines ?? []) {
    if (l.v > top) continue;
    parts.push(`<line class="limit" stroke="${l.color ?? '#c0392b'}" x1="${PAD.l}" x2="${W - PAD.r}" y1="${n(y(l.v))}" y2="${n(y(l.v))}"/><text class="limlab" x="${W - PAD.r - 4}" y="${n(y(l.v) - 4)}">${esc(l.label)}</text>`);
  }
  const pts = [...c.points].sort((a, b) => a.t - b.t);
  if (pts.length > 1) parts.push(`<polyline class="line" points="${pts.map((p) => `${n(x(p.t))},${n(y(p.v))}`).join(' ')}"/>`);
  if (c.trend) {
    const [t0, v0, t1, v1] = c.trend;
    parts.push(`<line class="trend" x1="${n(x(t0))}" y1="${n(y(Math.max(0, Math.min(top, v0))))}" x2="${n(x(t1))}" y2="${n(y(Math.max(0, Math.min(top, v1))))}"/>`);
  }
  const r = pts.length > 120 ? 1.6 : 2.6;
  for (const p of pts) {
    const tip = p.flag ?? p.label;
    parts.push(`<circle class="${p.flag ? 'pt flagged' : 'pt'}" cx="${n(x(p.t))}" cy="${n(y(p.v))}" r="${p.flag ? 4.5 : r}">${tip ? `<title>${esc(tip)}</title>` : ''}</circle>`);
  }
  if (!pts.length) parts.push(`<text class="empty" x="${W / 2}" y="${H / 2}">${esc(c.empty ?? 'no backups in this period')}</text>`);
  return `<svg class="chart" data-chart="${esc(c.name)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(c.name)}">${parts.join('')}</svg>`;
}

/** One tick per item along time, coloured by its class (e.g. verified, failed, never). */
export function stripChart(name: string, items: { t: number; cls: string; label: string }[], from: number, to: number): string {
  const H = 34;
  const span = Math.max(1, to - from);
  const x = (t: number) => PAD.l + ((t - from) / span) * (W - PAD.l - PAD.r);
  const ticks = [...items]
    .sort((a, b) => (a.cls === 'never' ? -1 : 0) - (b.cls === 'never' ? -1 : 0))
    .map((i) => `<rect class="tick ${esc(i.cls)}" x="${n(x(i.t) - 1.5)}" y="4" width="3" height="${H - 16}"><title>${esc(i.label)}</title></rect>`);
  const labels = xTicks(from, to).map((t) => `<text class="xlab" x="${n(x(t))}" y="${H - 1}">${esc(dayLabel(t)(to, from))}</text>`);
  return `<svg class="chart strip" data-chart="${esc(name)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(name)}">${ticks.join('')}${labels.join('')}</svg>`;
}
