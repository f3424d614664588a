// lib/runtime/confirm.ts: the confirmation a destructive command asks for.
import { describe, expect, it } from 'vitest';
import { confirmOrExit } from '../../lib/runtime/confirm.js';
import { EXIT } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/log.js';

describe('confirmOrExit', () => {
  const deps = { logger: silentLogger() };
  it('dry run stops, --yes goes, no TTY refuses with exit 2, a TTY asks', async () => {
    expect(await confirmOrExit(deps, 'Q?', { dryRun: true, yes: true })).toBe(false);
    expect(await confirmOrExit(deps, 'Q?', { yes: true, tty: false })).toBe(true);
    await expect(confirmOrExit(deps, 'Q?', { tty: false })).rejects.toMatchObject({ exitCode: EXIT.USAGE });
    expect(await confirmOrExit(deps, 'Q?', { tty: true, ask: async () => 'yes\n' })).toBe(true);
    await expect(confirmOrExit(deps, 'Q?', { tty: true, ask: async () => 'n' })).rejects.toMatchObject({ exitCode: EXIT.FAILED });
  });
});
