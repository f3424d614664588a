/**
 * The one door to the outside world for processes. Every docker/podman exec, pg_dump, psql,
 * pg_restore and zstd goes through here.
 *
 * Promises:
 * - commands are argument arrays; each element is quoted by zx, never interpolated into a shell
 *   string of ours;
 * - secrets travel in the child's environment (`env`), never in argv;
 * - a non-zero exit becomes a CommandError carrying the redacted command, exit code, signal and
 *   the redacted tail of stderr, plus the project/environment it was for, the program that failed
 *   and what it was run for (RunOptions.program, .role, .via), so that callers decide on those
 *   fields, never on the message;
 * - a call that breaks these rules (an empty command, a stdin pipe taken twice) is a bug: InternalError;
 * - streamed processes keep only a bounded tail of stderr in memory, nothing of stdout.
 */
import { $, ProcessOutput, type ProcessPromise } from 'zx';
import { basename } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { CommandError, InternalError, InterruptedError, type CommandRole, type TargetRef } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { tail } from '../core/text.js';

const STDERR_TAIL_BYTES = 4096;

export interface RunOptions {
  /** Extra environment for the child: where secrets go. */
  env?: Record<string, string | undefined>;
  /** Values to scrub from the command line and stderr in errors. */
  secrets?: string[];
  /** Whom the command was for, named in its error. */
  target?: TargetRef;
  /** What the command is, for messages ("pg_dump", "zstd -d (reading the archive)"). */
  what?: string;
  /**
   * The program that does the work, for CommandError.program; default the command's own
   * executable. Say it when that is a wrapper (`sh -c '… exec pg_restore …'`).
   */
  program?: string;
  /** What the process is for, for CommandError.role. */
  role?: CommandRole;
  /** The container CLI the program runs through (`docker exec`), for CommandError.via. */
  via?: 'docker' | 'podman';
  input?: string | Buffer | Readable;
  /**
   * spawn only: connect this process's stdout straight to another spawned process's stdin (a
   * kernel pipe; none of the bytes pass through Node). That process then sees EOF when this one
   * exits. A number: an open file descriptor (the caller closes its own copy once spawned).
   */
  stdoutTo?: Spawned | number;
  signal?: AbortSignal;
  cwd?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  durationMs: number;
}

/** A running process whose stdout is consumed as a stream. */
export interface Spawned {
  readonly stdout: Readable;
  readonly stdin: Writable;
  /** Its stderr as it comes (the tail is kept for errors either way). */
  readonly stderr: Readable;
  /** The process id (zx's bash wrapper execs the command, so this is the command itself). */
  readonly pid: number | undefined;
  /** Resolves when the process exits 0; rejects with CommandError otherwise. */
  readonly done: Promise<RunResult>;
  /** The redacted tail of stderr so far. */
  stderrTail(): string;
  kill(signal?: NodeJS.Signals): void;
  /** The OS-level stdin pipe, for `stdoutTo`; taken once, after which Node no longer writes to it. */
  takeStdinPipe(): Writable;
}

/** Keeps nothing: stdout of a stream is consumed by its reader, not stored. */
class Sink extends Array<string | Buffer> {
  static get [Symbol.species]() {
    return Array;
  }
  override push(): number {
    return 0;
  }
}

/** Keeps the last `limit` bytes pushed. */
class Tail extends Array<string | Buffer> {
  static get [Symbol.species]() {
    return Array;
  }
  private bytes = 0;
  constructor(private readonly limit = STDERR_TAIL_BYTES) {
    super();
  }
  override push(...items: (string | Buffer)[]): number {
    for (const it of items) {
      super.push(it);
      this.bytes += it.length;
    }
    // Drop the oldest chunk only while the rest still covers the limit (a short last chunk keeps its context).
    while (this.length > 1 && this.bytes - (this[0] as string | Buffer).length >= this.limit) this.bytes -= (this.shift() as string | Buffer).length;
    return this.length;
  }
}

const tailOf = (text: string) => tail(text, STDERR_TAIL_BYTES);

export function displayCommand(argv: readonly string[], secrets: readonly string[] = []): string {
  return redact(argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' '), secrets);
}

export class Runner {
  /** Run to completion, buffering output. Throws CommandError on failure. */
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const started = performance.now();
    const p = this.start(argv, opts, false);
    try {
      const out = await p;
      return { stdout: out.stdout, stderr: out.stderr, code: out.exitCode ?? 0, durationMs: performance.now() - started };
    } catch (e) {
      throw this.failure(e, argv, opts);
    }
  }

  /** Start a process whose stdout is read as a stream. Memory stays flat however much it writes. */
  spawn(argv: readonly string[], opts: RunOptions = {}): Spawned {
    const started = performance.now();
    const stderrStore = new Tail();
    const pipe = typeof opts.stdoutTo === 'number' ? opts.stdoutTo : opts.stdoutTo?.takeStdinPipe();
    const p = this.start(argv, opts, true, stderrStore, pipe);
    if (typeof pipe === 'object') pipe.destroy(); // the child holds its own copy; EOF reaches the reader when this process exits
    const secrets = opts.secrets ?? [];
    const done = p.then(
      (out) => ({ stdout: '', stderr: '', code: out.exitCode ?? 0, durationMs: performance.now() - started }),
      (e) => {
        throw this.failure(e, argv, opts);
      },
    );
    done.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
    let taken = false;
    return {
      stdout: p.stdout,
      stdin: p.stdin,
      stderr: p.stderr,
      takeStdinPipe: () => {
        const pipe = p.child?.stdin;
        if (taken || !pipe) throw new InternalError('runner: stdin pipe not available (taken twice, or the process has none)');
        taken = true;
        return pipe;
      },
      get pid() {
        return p.pid;
      },
      done,
      stderrTail: () => redact(tailOf(stderrStore.join('')), secrets),
      kill: (signal: NodeJS.Signals = 'SIGTERM') => {
        // Its process group: every child is started detached, so it leads one, and the group holds
        // the command and whatever it started. Not zx's kill(), which first walks the process tree
        // with `ps` spawned through a shell: Node 24 prints a deprecation warning for that, as plain
        // text among the JSON lines on stderr (test/integration/backup-failures.test.ts on Node 24).
        const child = p.child;
        if (child?.pid && child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid, signal);
          } catch {
            try {
              child.kill(signal);
            } catch {
              /* already gone */
            }
          }
        }
        // What it still writes is unwanted. A stdout paused by a dead consumer's backpressure would
        // never reach EOF, the child would never 'close', and `done` would never settle.
        const out = p.stdout;
        if (out && !out.destroyed) {
          out.unpipe();
          out.resume();
        }
      },
    };
  }

  private start(argv: readonly string[], opts: RunOptions, streaming: boolean, stderrStore?: Tail, stdoutPipe?: Writable | number): ProcessPromise {
    if (argv.length === 0) throw new InternalError('runner: empty command');
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const shell = $({
      quiet: true,
      verbose: false,
      env,
      cwd: opts.cwd,
      signal: opts.signal,
      input: opts.input as never,
      // Its own process group: a terminal's Ctrl-C reaches pgfleet alone, which then stops its
      // children in order (and runs its undo steps) instead of having them die mid-step.
      detached: true,
      // The bend: zx keeps all output for its ProcessOutput, a streamed dump would sit in memory; test/unit/runner.test.ts ("the zx bend") fails if a zx upgrade ignores these stores.
      store: streaming ? ({ stdout: new Sink(), stderr: stderrStore ?? new Tail(), stdall: new Sink() } as never) : undefined,
      ...(stdoutPipe !== undefined ? { stdio: ['pipe', stdoutPipe, 'pipe'] } : {}),
    });
    const p = shell`${argv}`;
    // A child that exits (or is killed) before reading all its input makes the write side fail
    // with EPIPE. That is the child's failure, reported by its exit status; unhandled, the EPIPE
    // would crash the whole run.
    p.child?.stdin?.on('error', () => undefined);
    p.stdin.on('error', () => undefined);
    return p;
  }

  private failure(e: unknown, argv: readonly string[], opts: RunOptions): Error {
    if (opts.signal?.aborted) return new InterruptedError(String(opts.signal.reason ?? 'SIGINT'));
    const secrets = opts.secrets ?? [];
    const who = { command: displayCommand(argv, secrets), program: opts.program ?? basename(argv[0]), role: opts.role, via: opts.via, target: opts.target, what: opts.what };
    if (e instanceof ProcessOutput) return new CommandError({ ...who, code: e.exitCode, signal: e.signal, stderrTail: redact(tailOf(e.stderr), secrets) });
    const msg = e instanceof Error ? e.message : String(e);
    return new CommandError({ ...who, code: null, signal: null, stderrTail: redact(msg, secrets) });
  }
}
