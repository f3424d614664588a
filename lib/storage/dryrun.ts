/**
 * The dry-run wrapper (restic's `dryrun` backend): `readOnly(store)` answers every read as the
 * store does, and refuses every write (save, remove, removeAbandoned) with a DryRunWriteError
 * naming the key. A dry run is built on it, so it cannot write by mistake: a command that tries
 * has a bug, and the refusal says so (an internal error, exit 1, "please report"), never a silent
 * success. A refused save destroys a stream it was given, as a failed save does, so its producer
 * is not left waiting.
 */
import { Readable } from 'node:stream';
import { InternalError } from '../core/errors.js';
import type { Abandoned, Store } from './store.js';

export class DryRunWriteError extends InternalError {
  constructor(
    readonly key: string,
    verb: 'write' | 'remove',
    location: string,
  ) {
    super(`dry run: would ${verb} ${key} in ${location}; a dry run must not write`);
  }
}

const READ_ONLY = new WeakSet<Store>();

export function readOnly(store: Store): Store {
  const refuse = (verb: 'write' | 'remove', key: string) => Promise.reject(new DryRunWriteError(key, verb, store.location));
  const ro: Store = {
    location: store.location,
    save: (key, data) => {
      if (data instanceof Readable) data.destroy();
      return refuse('write', key);
    },
    load: (key, o) => store.load(key, o),
    read: (key) => store.read(key),
    stat: (key) => store.stat(key),
    list: (prefix) => store.list(prefix),
    remove: (key) => refuse('remove', key),
    abandoned: (prefix, before) => store.abandoned(prefix, before),
    removeAbandoned: (a: Abandoned) => refuse('remove', `${a.key} (${a.handle})`),
  };
  if (store.keys) ro.keys = (prefix) => store.keys!(prefix);
  if (store.pathOf) ro.pathOf = (key) => store.pathOf!(key);
  READ_ONLY.add(ro);
  return ro;
}

/** Whether `store` is a dry-run wrapper (a dry run is told by its store, not by a flag beside it). */
export function isReadOnly(store: Store): boolean {
  return READ_ONLY.has(store);
}
