// `status` over many targets in few containers: the databases kept by restores are found with ONE
// container call per container (lib/restore/kept.ts leftoverDatabasesOf), not one per target, and
// each target gets its own kept databases (a name that merely starts like another's is not one).
// The calls are counted on the real Runner (a subclass that records each argv and runs it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStatus } from '../../lib/commands/status.js';
import { silentLogger } from '../../lib/core/log.js';
import { Runner, type RunOptions, type RunResult, type Spawned } from '../../lib/process/runner.js';
import { contextFor, defaultDeps } from '../../lib/runtime/context.js';
import { TEST_CONTAINER_CLI, TestFleet } from '../helpers.js';

/** The real Runner; every argv it starts is kept in `calls`. */
class CountingRunner extends Runner {
  readonly calls: string[][] = [];
  override run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.calls.push([...argv]);
    return super.run(argv, opts);
  }
  override spawn(argv: readonly string[], opts?: RunOptions): Spawned {
    this.calls.push([...argv]);
    return super.spawn(argv, opts);
  }
}

const ENVS = ['e1', 'e2', 'e3', 'e4', 'e5', 'e6'];

describe('status: one container call per container (real PostgreSQL 15)', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await TestFleet.create([
      // Six targets in one container; "shop" is a prefix of "shop_e2"'s name.
      { project: 'big', databases: { e1: 'shop', e2: 'shop_e2', e3: 'shop_e3', e4: 'shop_e4', e5: 'shop_e5', e6: 'shop_e6' } },
      { project: 'small', databases: { production: 'small_production', staging: 'small_staging' } },
    ]);
    // What restores leave, and look-alikes that are not kept databases of any target.
    for (const name of ['shop__before_20250101_020000', 'shop__before_20250102_020000_2', 'shop_e2__before_20250103_020000', 'shop__before_notastamp', 'shop_e4x__before_20250101_020000'])
      await fleet.sql('big', 'postgres', `CREATE DATABASE "${name}"`);
    await fleet.sql('small', 'postgres', 'CREATE DATABASE small_staging__before_20250104_020000');
  }, 180_000);
  afterAll(() => fleet?.cleanup());

  const status = async () => {
    const runner = new CountingRunner();
    const ctx = contextFor(fleet.configFile, defaultDeps({ runner, logger: silentLogger(), out: () => undefined, progress: false }));
    const { report } = await runStatus(ctx, { json: true });
    const kept = Object.fromEntries(report.targets.map((t) => [`${t.project}/${t.environment}`, t.leftover_databases]));
    const perContainer = (name: string) => runner.calls.filter((a) => a[0] === TEST_CONTAINER_CLI && a.includes(name)).length;
    return { kept, calls: runner.calls, perContainer };
  };

  it('lists each target its own kept databases with one call per container', async () => {
    const { kept, calls, perContainer } = await status();
    expect(kept).toEqual({
      'big/e1': ['shop__before_20250101_020000', 'shop__before_20250102_020000_2'],
      'big/e2': ['shop_e2__before_20250103_020000'],
      'big/e3': [],
      'big/e4': [],
      'big/e5': [],
      'big/e6': [],
      'small/production': [],
      'small/staging': ['small_staging__before_20250104_020000'],
    });
    expect(perContainer(fleet.container('big'))).toBe(1);
    expect(perContainer(fleet.container('small'))).toBe(1);
    expect(calls.length).toBe(2); // nothing else status does starts a process
  });

  it('a container that is down: its targets show unknown (null), after one call; the other container still answers', async () => {
    await fleet.sandbox.stop(fleet.container('small'));
    const { kept, perContainer } = await status();
    expect(kept['small/production']).toBeNull();
    expect(kept['small/staging']).toBeNull();
    expect(kept['big/e2']).toEqual(['shop_e2__before_20250103_020000']);
    expect(perContainer(fleet.container('small'))).toBe(1);
    expect(perContainer(fleet.container('big'))).toBe(1);
    expect(ENVS.every((e) => Array.isArray(kept[`big/${e}`]))).toBe(true);
  });
});
