// lib/core/clock.ts: the clock every command takes, fixed by PGFLEET_NOW for what-if runs and tests.
import { describe, expect, it } from 'vitest';
import { clockFromEnv } from '../../lib/core/clock.js';
import { UsageError } from '../../lib/core/errors.js';

describe('clockFromEnv', () => {
  it('PGFLEET_NOW must be an ISO-8601 time', () => {
    expect(() => clockFromEnv({ PGFLEET_NOW: 'yesterday' })).toThrow(UsageError);
    expect(clockFromEnv({ PGFLEET_NOW: '2025-03-01T12:00:00+02:00' })().toISOString()).toBe('2025-03-01T10:00:00.000Z');
  });

  it('a fixed clock gives the same instant every call, and a fresh Date each time', () => {
    const clock = clockFromEnv({ PGFLEET_NOW: '2025-03-01T12:00:00Z' });
    const a = clock();
    a.setFullYear(1999);
    expect(clock().toISOString()).toBe('2025-03-01T12:00:00.000Z');
  });

  it('without PGFLEET_NOW (or with it empty) it is the wall clock', () => {
    for (const env of [{}, { PGFLEET_NOW: '' }]) {
      const before = Date.now();
      const t = clockFromEnv(env)().getTime();
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThanOrEqual(Date.now());
    }
  });
});
