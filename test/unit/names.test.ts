// lib/config/names.ts: the one safe-name check behind project, environment, database and release names.
import { describe, expect, it } from 'vitest';
import { isPgIdent, isReleaseId, isSafeName, isSegment, SEGMENT } from '../../lib/config/names.js';
import { checkRelease } from '../../lib/deployments/release.js';
import { EXIT, UsageError } from '../../lib/core/errors.js';

describe('release ids', () => {
  it('accepts file-name-safe ids and rejects hostile ones', () => {
    for (const ok of ['v1.2.3', '2025-01-06_1', 'abc123', 'r+build.7']) expect(isReleaseId(ok)).toBe(true);
    for (const bad of ['../x', 'a/b', '-rm', 'x\ny', '', '.hidden', 'a..b', 'a b', 'x'.repeat(129)]) expect(isReleaseId(bad)).toBe(false);
  });

  it('checkRelease gives the id back, or a usage error (exit 2) naming what is allowed', () => {
    expect(checkRelease('v1.2.3')).toBe('v1.2.3');
    expect(() => checkRelease(undefined)).toThrow('--release <id> is required');
    expect(() => checkRelease('')).toThrow('--release <id> is required');
    for (const bad of ['../etc', 'a..b', '-x']) {
      const e = (() => {
        try {
          checkRelease(bad);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(UsageError);
      expect((e as UsageError).exitCode).toBe(EXIT.USAGE);
      expect((e as Error).message).toContain(`not a valid release id: ${JSON.stringify(bad)}`);
    }
  });
});

describe('the safe-name check', () => {
  it('is the pattern and no ".." anywhere, for every kind of name', () => {
    expect(isSafeName(SEGMENT, 'a.b')).toBe(true);
    expect(isSafeName(SEGMENT, 'a..b')).toBe(false);
    expect(isSegment('filter-ical')).toBe(true);
    for (const bad of ['..', '../x', '-rm', 'a/b', '.hidden', 'a..b', '']) expect(isSegment(bad)).toBe(false);
    expect(isPgIdent('acme_production')).toBe(true);
    expect(isPgIdent('acme-staging')).toBe(true);
    for (const bad of ['a"; drop', '1abc', 'a..b', 'a b', '', 'x'.repeat(64)]) expect(isPgIdent(bad)).toBe(false);
  });
});
