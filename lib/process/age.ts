/**
 * Encryption to public keys with age (https://age-encryption.org), through the `age` CLI and the
 * Runner: the backup host holds only recipients (public keys); the identity that reads a backup
 * is needed only where one is read (restore, verification), as a file.
 *
 * Why the CLI and not the npm package age-encryption: it is the reference implementation, the
 * very tool the README's recovery by hand uses (`age -d -i key`), so the two can never disagree
 * on the format; it runs in its own process, on the second core, at hundreds of MiB/s, where the
 * pure-JS package (streams, but ChaCha20 on Node's one thread) managed 36 MiB/s here and would
 * slow the dump's own pipeline; and it adds no npm dependency.
 *
 * Promises:
 * - encrypt()/decrypt() stream: memory stays flat whatever the size; no plaintext temp file.
 * - The output ends (EOF) only once age has exited 0; if age fails or the input errors, the
 *   output errors instead, so a consumer (an upload, a restore) never takes a cut stream for a
 *   whole one. Partial output may have been read by then: check content before acting on it.
 * - Recipients (public) go in argv after a syntax check; the identity goes only as a file path
 *   (`-i FILE`), its contents never on a command line, in a log or in an error.
 * - Failures are AgeError with a `reason` callers can decide on.
 */
import { access, constants } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { CommandError, EXIT, InterruptedError, PgfleetError, type TargetRef } from '../core/errors.js';
import { ageRecipientProblem } from '../config/offsite.js';
import type { Runner, Spawned } from './runner.js';

export type AgeFailure = 'bad-recipient' | 'no-identity' | 'wrong-identity' | 'not-encrypted' | 'damaged' | 'failed';

export class AgeError extends PgfleetError {
  constructor(
    message: string,
    readonly reason: AgeFailure,
    target: TargetRef = {},
    exitCode = reason === 'bad-recipient' || reason === 'no-identity' ? EXIT.USAGE : EXIT.FAILED,
  ) {
    super(message, exitCode, target);
  }
}

/** The variable that names the identity file where backups are read. */
export const IDENTITY_ENV = 'PGFLEET_AGE_IDENTITY_FILE';

/** The identity file named by PGFLEET_AGE_IDENTITY_FILE, or an AgeError saying how to set it. */
export function identityFileFrom(env: NodeJS.ProcessEnv = process.env): string {
  const f = env[IDENTITY_ENV];
  if (!f) throw new AgeError(`${IDENTITY_ENV} is not set: it names the file of the age identity that reads the encrypted backups`, 'no-identity');
  return f;
}

export interface AgeOptions {
  signal?: AbortSignal;
  target?: TargetRef;
}

/** What age's stderr says went wrong (age exits 1 for everything). */
function reasonOf(stderr: string): AgeFailure {
  if (/no identity matched any of the recipients/.test(stderr)) return 'wrong-identity';
  if (/unexpected intro|failed to read intro/.test(stderr)) return 'not-encrypted';
  if (/failed to decrypt and authenticate|bad header MAC|failed to read header|unexpected EOF/.test(stderr)) return 'damaged';
  if (/malformed recipient/.test(stderr)) return 'bad-recipient';
  return 'failed';
}

const EXPLAIN: Record<AgeFailure, string> = {
  'bad-recipient': 'a recipient is not a valid age public key',
  'no-identity': 'the identity file cannot be read',
  'wrong-identity': 'the identity is not one this backup was encrypted to',
  'not-encrypted': 'the data is not age-encrypted',
  damaged: 'the encrypted data is damaged or cut short',
  failed: 'age failed',
};

/**
 * age's output as a stream that ends only when age exits 0 (see the promises), fed from `input`.
 * An input error or an age failure destroys the output with the error and stops age.
 */
function wrap(p: Spawned, input: Readable, what: string, o: AgeOptions): Readable {
  const out = new PassThrough();
  let failed = false;
  const fail = (e: Error) => {
    if (failed) return;
    failed = true;
    p.kill();
    input.destroy();
    out.destroy(o.signal?.aborted ? new InterruptedError(String(o.signal.reason ?? 'SIGINT')) : e);
  };
  input.once('error', (e) => fail(e instanceof PgfleetError ? e : new AgeError(`${what}: its input failed: ${e.message}`, 'failed', o.target)));
  // Not pipeline(): an early exit of age (EPIPE on its stdin) must not pass for an input error;
  // `done` reports it, and fail() then ends the input.
  input.pipe(p.stdin);
  p.stdout.pipe(out, { end: false });
  const stdoutEnded = new Promise<void>((resolve) => p.stdout.once('end', resolve));
  Promise.all([p.done, stdoutEnded]).then(
    () => failed || out.end(),
    (e: unknown) => {
      if (!(e instanceof CommandError)) return fail(e as Error);
      const reason = reasonOf(e.stderrTail);
      const said = e.stderrTail.split('\n').find((l) => l.startsWith('age: error:'))?.slice('age: error: '.length);
      fail(new AgeError(`${what}: ${EXPLAIN[reason]}${said ? ` (age: ${said})` : ''}`, reason, o.target));
    },
  );
  return out;
}

export class Age {
  constructor(private readonly runner: Runner) {}

  /** `input` encrypted to every recipient (age1… public keys); throws AgeError on a malformed one. */
  encrypt(input: Readable, recipients: readonly string[], o: AgeOptions = {}): Readable {
    if (recipients.length === 0) throw new AgeError('encrypt: no age recipients given', 'bad-recipient', o.target);
    for (const r of recipients) {
      const problem = ageRecipientProblem(r);
      if (problem) throw new AgeError(`encrypt: ${JSON.stringify(r)}: ${problem}`, 'bad-recipient', o.target);
    }
    const p = this.runner.spawn(['age', '--encrypt', ...recipients.flatMap((r) => ['-r', r])], { what: 'age --encrypt', signal: o.signal, target: o.target });
    return wrap(p, input, 'age encryption', o);
  }

  /** `input` decrypted with the identity in `identityFile` (a path; age reads it). */
  async decrypt(input: Readable, identityFile: string, o: AgeOptions = {}): Promise<Readable> {
    try {
      await access(identityFile, constants.R_OK);
    } catch (e) {
      input.destroy();
      throw new AgeError(`age identity ${identityFile}: cannot read it (${(e as NodeJS.ErrnoException).code})`, 'no-identity', o.target);
    }
    const p = this.runner.spawn(['age', '--decrypt', '-i', identityFile], { what: 'age --decrypt', signal: o.signal, target: o.target });
    return wrap(p, input, 'age decryption', o);
  }
}
