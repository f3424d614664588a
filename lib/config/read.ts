/**
 * projects.yml from bytes to plain data, within fixed bounds. Whatever a file holds (a huge or
 * endless file, bytes that are not UTF-8 text, control characters, nesting deeper than any config
 * needs, duplicate keys, aliases that expand without end), the answer is a list of ConfigIssues
 * naming the file and, where known, the line: nothing here throws for bad content, and time and
 * memory stay proportional to at most LIMITS.bytes of input.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LineCounter, parseDocument, isAlias, isCollection, isMap, isPair, isScalar, type Document, type Node as YamlNode } from 'yaml';
import type { ConfigIssue } from '../core/errors.js';

export const LIMITS = {
  /** Bytes of projects.yml: a platform of a thousand projects takes a few hundred KiB (at this
   * size, the yaml library's document of the worst file takes seconds and ~0.5 GB). */
  bytes: 1024 * 1024,
  /** Levels of nesting: projects.yml needs five; the yaml library's own recursion ends near a thousand. */
  depth: 64,
  /** The yaml library's bound on alias expansion (its default, against alias bombs), held here. */
  aliases: 100,
};

/** A key as messages show it: plain text as is, anything else quoted; never more than ~64 characters. */
export function keyText(k: PropertyKey): string {
  const s = String(k);
  const cut = s.length > 64 ? `${s.slice(0, 48)}…(${s.length} characters)` : s;
  return /^[\x21-\x7e]+$/.test(s) && s.length <= 64 ? s : JSON.stringify(cut);
}

const lineAt = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** YAML allows none of these in a stream (only escaped, inside double quotes); a binary file has them. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]/;

/** The file's text: read at most LIMITS.bytes + 1 bytes (a file, a pipe or a device), and UTF-8. */
export function readConfigText(file: string, abs: string): { text?: string; issues: ConfigIssue[] } {
  const fail = (message: string, line?: number) => ({ issues: [{ file, line, path: '', message }] });
  const tooLarge = `larger than ${LIMITS.bytes} bytes: not a projects.yml`;
  let buf: Buffer;
  try {
    const fd = openSync(abs, 'r');
    try {
      const st = fstatSync(fd);
      if (st.isFile() && st.size > LIMITS.bytes) return fail(`${st.size} bytes, ${tooLarge}`);
      buf = Buffer.alloc(st.isFile() ? st.size + 1 : LIMITS.bytes + 1);
      let n = 0;
      for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
      if (n > LIMITS.bytes) return fail(tooLarge);
      buf = buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    return fail(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const text = buf.toString('utf8');
  if (!isUtf8(buf)) return fail('not UTF-8 text (a binary file, or another encoding: save it as UTF-8)', lineAt(text, text.indexOf('\ufffd')));
  return { text, issues: [] };
}

export interface ParsedYaml {
  doc: Document;
  lc: LineCounter;
  /** The document as plain data (aliases expanded within LIMITS.aliases). */
  raw: unknown;
}

/** Parse YAML text within LIMITS; the document and its data, or the issues that stopped it. */
export function parseConfigYaml(text: string, file: string): { parsed?: ParsedYaml; issues: ConfigIssue[] } {
  const issue = (line: number | undefined, message: string): ConfigIssue => ({ file, line, path: '', message });
  if (text.length > LIMITS.bytes) return { issues: [issue(undefined, `larger than ${LIMITS.bytes} bytes: not a projects.yml`)] };
  const bad = CONTROL.exec(text);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase();
    const col = bad.index - text.lastIndexOf('\n', bad.index - 1);
    return { issues: [issue(lineAt(text, bad.index), `a control character (U+${code}) at column ${col}: YAML allows none (a binary file? inside double quotes, write it as "\\u${code}")`)] };
  }
  const lc = new LineCounter();
  // uniqueKeys: the library's check compares every key with every other (minutes for a big
  // mapping); structure() checks in one pass instead.
  const depthMsg = `YAML: nested deeper than ${LIMITS.depth} levels`;
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false, prettyErrors: false });
  } catch (e) {
    // The library turns its own stack overflows into RESOURCE_EXHAUSTION errors; this is the net under that.
    return { issues: [issue(undefined, e instanceof RangeError ? depthMsg : `YAML: ${String((e as Error).message).slice(0, 200)}`)] };
  }
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>(); // a stack overflow can be reported at several levels: once is enough
  for (const e of doc.errors) {
    const i = issue(e.linePos?.[0]?.line ?? lc.linePos(e.pos[0]).line, e.code === 'RESOURCE_EXHAUSTION' ? depthMsg : `YAML: ${e.message.split('\n')[0].slice(0, 200)}`);
    const k = `${i.line}:${i.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    issues.push(i);
  }
  if (issues.length) return { issues };
  const s = structure(doc, lc);
  if (s.tooDeep !== undefined) return { issues: [issue(s.tooDeep, depthMsg)] };
  if (s.duplicates.length) return { issues: s.duplicates.map(([line, message]) => issue(line, message)) };
  try {
    return { parsed: { doc, lc, raw: doc.toJS({ maxAliasCount: LIMITS.aliases }) }, issues: [] };
  } catch (e) {
    const why = /resource exhaustion/i.test((e as Error).message) ? `the aliases expand too far (the yaml library's limit against alias bombs)` : (e as Error).message.slice(0, 200);
    return { issues: [issue(s.firstAlias ?? 1, `YAML: ${why}`)] };
  }
}

/** One iterative pass over the document: the first node past LIMITS.depth, duplicate keys, the first alias. */
function structure(doc: Document, lc: LineCounter): { tooDeep?: number; duplicates: [number | undefined, string][]; firstAlias?: number } {
  const line = (n: YamlNode) => (n.range ? lc.linePos(n.range[0]).line : undefined);
  const duplicates: [number | undefined, string][] = [];
  let firstAlias: number | undefined;
  const stack: [unknown, number][] = [[doc.contents, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (isPair(node)) {
      stack.push([node.key, depth], [node.value, depth]);
      continue;
    }
    if (isAlias(node)) {
      const l = line(node);
      if (l !== undefined && (firstAlias === undefined || l < firstAlias)) firstAlias = l;
    }
    if (!isCollection(node)) continue;
    if (depth > LIMITS.depth) return { tooDeep: line(node), duplicates };
    const seen = new Map<string, number | undefined>();
    for (const item of node.items as unknown[]) {
      if (isMap(node) && isPair(item) && isScalar(item.key)) {
        const k = String(item.key.value);
        if (seen.has(k)) duplicates.push([line(item.key), `YAML: duplicate key ${keyText(k)} (first at line ${seen.get(k)})`]);
        else seen.set(k, line(item.key));
      }
      stack.push([item, depth + 1]);
    }
  }
  return { duplicates: duplicates.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0)), firstAlias };
}
