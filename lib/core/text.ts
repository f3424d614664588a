/**
 * Text for people: sizes, tables, how a process ended, the tail of an output. Pure functions, no
 * I/O; every command and message that shows these goes through here, so they read the same.
 * Imports nothing.
 */

/** 1536 → "1.5 KiB"; bytes below 1 KiB as a whole number ("512 B"). */
export function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) [v, i] = [v / 1024, i + 1];
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export interface TableStyle {
  /** Before every line (default none). */
  indent?: string;
  /** Between columns (default two spaces). */
  gap?: string;
  /** Columns are at least this wide (default: as wide as their widest cell). */
  minWidths?: readonly number[];
}

/**
 * A plain-text table, one string a line, the head first: every column but the last padded to its
 * widest cell, trailing spaces trimmed. Rows shorter than the head leave their last cells empty.
 */
export function renderTable(head: readonly string[], rows: readonly (readonly string[])[], style: TableStyle = {}): string[] {
  const { indent = '', gap = '  ', minWidths = [] } = style;
  const widths = head.map((h, i) => Math.max(minWidths[i] ?? 0, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const last = head.length - 1;
  return [head, ...rows].map((r) => (indent + head.map((_, i) => (i === last ? (r[i] ?? '') : (r[i] ?? '').padEnd(widths[i]))).join(gap)).trimEnd());
}

/** How a process ended, for messages: "exit code 3" or "killed by SIGKILL". */
export function howEnded(code: number | null, signal: string | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** The last `max` characters of `text`, marked with a leading "…" when it was cut. */
export function tail(text: string, max: number): string {
  return text.length > max ? '…' + text.slice(-max) : text;
}
