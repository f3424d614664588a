/**
 * The rules of the offsite and encryption keys that a regex alone cannot state: an s3:// URL and
 * its bucket name (S3's own naming rules), and age X25519 public keys (bech32, checksum
 * included, so a mistyped recipient is a config error and not a backup nobody can read).
 * Pure; the zod pieces are used by schema.ts, the parsers by lib/storage/s3.ts.
 */
import { z } from 'zod';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing '/'; '' for the bucket's root. */
  prefix: string;
}

/** Why `name` is not a valid S3 bucket name, or undefined when it is. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'a bucket name has 3 to 63 characters';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return 'a bucket name has lowercase letters, digits, "." and "-", and starts and ends with a letter or digit';
  if (name.includes('..')) return 'a bucket name has no ".."';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'a bucket name is not an IP address';
  if (/^(xn--|sthree-)/.test(name) || /(-s3alias|--ol-s3)$/.test(name)) return 'a bucket name does not start with "xn--" or "sthree-" nor end with "-s3alias" or "--ol-s3"';
  return undefined;
}

/** Parse `s3://bucket[/prefix]`; throws an Error whose message says which rule failed. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(url);
  if (!m) throw new Error('expected s3://bucket/prefix');
  const bucket = m[1];
  const problem = bucketNameProblem(bucket);
  if (problem) throw new Error(`not a valid bucket name ${JSON.stringify(bucket)}: ${problem}`);
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  if (prefix && !prefix.split('/').every((s) => /^[A-Za-z0-9_.=+-]+$/.test(s) && s !== '.' && s !== '..'))
    throw new Error('the key prefix is "/"-separated segments of letters, digits and "_.=+-" (no empty, "." or ".." segment)');
  return { bucket, prefix };
}

const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

function polymod(values: number[]): number {
  const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk >>> 0;
}

/**
 * Why `s` is not an age X25519 recipient (`age1` + 58 bech32 characters: 32 bytes and a valid
 * checksum, as age's own parser requires), or undefined when it is.
 */
export function ageRecipientProblem(s: string): string | undefined {
  const expect = 'expected an age public key: "age1" followed by 58 characters (age-keygen -y prints it)';
  if (!/^age1[a-z0-9]+$/.test(s)) return expect;
  const data = s.slice(4);
  if (data.length !== 58) return `${expect}; this one has ${data.length}`;
  const values = [...data].map((c) => BECH32.indexOf(c));
  if (values.includes(-1)) return `${expect}; "${[...data].find((c) => !BECH32.includes(c))}" is not a bech32 character`;
  const hrp = [...'age'].map((c) => c.charCodeAt(0));
  const expanded = [...hrp.map((c) => c >> 5), 0, ...hrp.map((c) => c & 31), ...values];
  if (polymod(expanded) !== 1) return 'not a valid age public key: its checksum does not match (a typo?)';
  return undefined;
}

/** The zod schema of an s3:// URL; its `pattern` (a looser form of the rules) goes into the JSON Schema. */
export const s3Url = z
  .string()
  .superRefine((s, ctx) => {
    try {
      parseS3Url(s);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  })
  .meta({ pattern: '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$', description: 's3://bucket/prefix' });

export const ageRecipient = z
  .string()
  .superRefine((s, ctx) => {
    const problem = ageRecipientProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ pattern: `^age1[${BECH32}]{58}$`, description: 'an age X25519 public key (age-keygen -y prints it)' });
