// lib/runtime/hooks.ts with real processes: how a hook ended, its environment and directory, and its output tail, redacted.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadedConfig, Target } from '../../lib/config/load.js';
import { InterruptedError } from '../../lib/core/errors.js';
import { HookResult } from '../../lib/formats/manifest.js';
import { Runner } from '../../lib/process/runner.js';
import { hookFailed, runHook } from '../../lib/runtime/hooks.js';
import { Secrets } from '../../lib/runtime/secrets.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-hooks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const configDir = path.join(dir, 'deploy');
mkdirSync(path.join(configDir, 'configs', 'acme'), { recursive: true });
const envFile = path.join(configDir, 'configs', 'acme', '.env.production');
// The URL's password is percent-encoded; the hook may print it decoded (as PGPASSWORD has it).
writeFileSync(envFile, 'PGPASSWORD=Hook-pw-51x\nDATABASE_URL=postgresql://acme:url%40pw-99@db.internal/acme\n', { mode: 0o600 });
const WEBHOOK = 'https://hooks.example/services/T0K-hook-77';

const target = { project: 'acme', environment: 'production', envFile } as Target;
const config = { file: path.join(configDir, 'projects.yml'), platform: { notify: { webhookUrlEnv: 'PGFLEET_TEST_HOOK_URL', on: ['failure'] } } } as unknown as LoadedConfig;

function ctx(signal?: AbortSignal) {
  const env = { ...process.env, PGFLEET_TEST_HOOK_URL: WEBHOOK };
  return { config, runner: new Runner(), signal, secrets: new Secrets(config, env) };
}

const sh = (script: string) => ['sh', '-c', script];

describe('runHook', () => {
  it('a hook that succeeds: exit code 0, no signal, the tails of stdout and stderr; a valid manifest record', async () => {
    const h = await runHook(ctx(), target, 'rollback', sh('echo brought back; echo a warning >&2'), {});
    expect(h).toMatchObject({ argv: ['sh', '-c', 'echo brought back; echo a warning >&2'], exit_code: 0, signal: null, output_tail: 'stdout: brought back\nstderr: a warning' });
    expect(h.duration_ms).toBeGreaterThanOrEqual(0);
    expect(hookFailed(h)).toBe(false);
    expect(HookResult.parse(h)).toEqual(h);
  });

  it('a non-zero exit is returned, not thrown', async () => {
    const h = await runHook(ctx(), target, 'rollback', sh('echo cannot deploy >&2; exit 3'), {});
    expect(h).toMatchObject({ exit_code: 3, signal: null, output_tail: 'stderr: cannot deploy' });
    expect(hookFailed(h)).toBe(true);
  });

  it('a hook killed by a signal: the signal, no exit code', async () => {
    const h = await runHook(ctx(), target, 'rollback', sh('kill -TERM $$'), {});
    expect(h).toMatchObject({ exit_code: null, signal: 'SIGTERM' });
    expect(hookFailed(h)).toBe(true);
  });

  it('a hook that does not exist: exit 127 and what the shell said', async () => {
    const h = await runHook(ctx(), target, 'rollback', ['./no-such-deploy-script.sh', 'rollback'], {});
    expect(h.exit_code).toBe(127);
    expect(h.signal).toBeNull();
    expect(h.output_tail).toMatch(/no-such-deploy-script\.sh: (No such file or directory|command not found)/);
  });

  it("runs in the directory of projects.yml, with pgfleet's environment plus its own, its argv never a shell's code", async () => {
    process.env.PGFLEET_TEST_FROM_PGFLEET = 'inherited';
    try {
      const h = await runHook(ctx(), target, 'rollback', ['sh', '-c', 'pwd; echo "$PGFLEET_RELEASE/$PGFLEET_TEST_FROM_PGFLEET"; echo "$1"', 'hook', '$(echo not run)'], { PGFLEET_RELEASE: 'r42' });
      expect(h.output_tail).toBe(`stdout: ${realpathSync(configDir)}\nr42/inherited\n$(echo not run)`);
    } finally {
      delete process.env.PGFLEET_TEST_FROM_PGFLEET;
    }
  });

  it("redacts the output tail with the target's secrets: password, DATABASE_URL and its decoded password, the webhook URL", async () => {
    const h = await runHook(ctx(), target, 'rollback', sh(`echo "pw Hook-pw-51x"; echo "url postgresql://acme:url%40pw-99@db.internal/acme"; echo "decoded url@pw-99" >&2; echo "hook ${WEBHOOK}" >&2; exit 1`), {});
    expect(h.output_tail).toBe('stdout: pw ***\nurl ***\nstderr: decoded ***\nhook ***');
    for (const s of ['Hook-pw-51x', 'url%40pw-99', 'url@pw-99', 'T0K-hook-77']) expect(h.output_tail).not.toContain(s);
  });

  it('keeps only the tail of a long output, marked as cut', async () => {
    const h = await runHook(ctx(), target, 'rollback', sh('i=0; while [ $i -lt 3000 ]; do echo "step $i"; i=$((i+1)); done'), {});
    const out = h.output_tail.replace(/^stdout: /, '');
    expect(out.startsWith('…')).toBe(true);
    expect(out.length).toBeLessThanOrEqual(2049);
    expect(out.endsWith('step 2999')).toBe(true);
  });

  it('pgfleet interrupted while the hook runs: InterruptedError, the hook stopped', async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort('SIGINT'), 100);
    await expect(runHook(ctx(ac.signal), target, 'rollback', ['sleep', '30'], {})).rejects.toBeInstanceOf(InterruptedError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('runHook timeout (database.hooks.timeout)', () => {
  it('a hook that runs past its timeout gets SIGTERM and says so', async () => {
    const bounded = { ...target, hooks: { timeout_ms: 300 } } as Target;
    const t0 = performance.now();
    const h = await runHook(ctx(), bounded, 'pre_backup', sh('echo started; exec sleep 30'), {});
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(h).toMatchObject({ exit_code: null, signal: 'SIGTERM' });
    expect(h.output_tail).toMatch(/^timed out after 0 s \(database\.hooks\.timeout\); killed\nstdout: started$/);
    expect(hookFailed(h)).toBe(true);
    expect(HookResult.parse(h)).toEqual(h);
  });

  it('a hook that exits 0 on SIGTERM after its timeout still failed', async () => {
    const bounded = { ...target, hooks: { timeout_ms: 300 } } as Target;
    const h = await runHook(ctx(), bounded, 'post_backup', sh("trap 'exit 0' TERM; sleep 30 & wait"), {});
    expect(hookFailed(h)).toBe(true);
    expect(h.output_tail).toMatch(/^timed out after/);
  });

  it('a hook within its timeout is untouched', async () => {
    const h = await runHook(ctx(), { ...target, hooks: { timeout_ms: 5000 } } as Target, 'pre_backup', sh('sleep 0.2; echo ok'), {});
    expect(h).toMatchObject({ exit_code: 0, signal: null, output_tail: 'stdout: ok' });
  });
});
