/**
 * Names that reach a shell, a path or SQL are checked here, once. Anything else is a config error.
 * Conservative on purpose: a name that needs quoting to be safe is not a name we accept.
 */
import { z } from 'zod';

/** Project and environment: a path segment. No dots-only, no leading dash, no separators. */
export const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** Container names as docker accepts them, never starting with a dash. */
export const CONTAINER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** PostgreSQL database and role names: a plain identifier (hyphens allowed, always quoted in SQL). */
export const PG_IDENT = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
/** Release ids of deployments: a file name. */
export const RELEASE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

function checked(re: RegExp, what: string) {
  return z
    .string()
    .regex(re, { message: `not a valid ${what} (allowed: ${re.source})` })
    .refine((s) => !s.includes('..'), { message: `not a valid ${what}: ".." is not allowed` });
}

export const segmentName = (what: string) => checked(SEGMENT, what);
export const containerName = checked(CONTAINER, 'container name');
export const pgIdent = (what: string) => checked(PG_IDENT, what);
export const releaseId = checked(RELEASE, 'release id');

/** The one safe-name check: `s` matches `re` and holds no "..". */
export function isSafeName(re: RegExp, s: string): boolean {
  return re.test(s) && !s.includes('..');
}

export const isSegment = (s: string) => isSafeName(SEGMENT, s);
export const isPgIdent = (s: string) => isSafeName(PG_IDENT, s);
export const isReleaseId = (s: string) => isSafeName(RELEASE, s);
