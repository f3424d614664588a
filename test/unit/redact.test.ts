// lib/core/redact.ts: secrets never reach a log line or an error message.
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { credentialSecrets, LOG_REDACT_PATHS, redact, webhookSecrets } from '../../lib/core/redact.js';

describe('redact', () => {
  it('replaces every occurrence of every known secret', () => {
    expect(redact('pw S3cret! then S3cret! again, and tok-42', ['S3cret!', 'tok-42'])).toBe('pw *** then *** again, and ***');
  });

  it('takes secrets literally, whatever characters they hold', () => {
    expect(redact('a.*b (x|y) $1x \\dd', ['a.*b', '(x|y)', '$1x', '\\dd'])).toBe('*** *** *** ***');
    expect(redact('pass: p"q\'r`s', ['p"q\'r`s'])).toBe('pass: ***');
  });

  it('ignores empty and very short secrets (they would blank out ordinary text), but not 3 characters', () => {
    expect(redact('a b ab', ['', 'a', 'ab'])).toBe('a b ab');
    expect(redact('abc abcd', ['abc'])).toBe('*** ***d');
  });

  it('removes the password of any postgres:// or postgresql:// URL, known or not, and keeps the rest', () => {
    expect(redact('to postgresql://app:unknown-pw@db.example:5432/app?sslmode=require')).toBe('to postgresql://app:***@db.example:5432/app?sslmode=require');
    expect(redact('POSTGRES://u:p%40ss@/db?host=/run/postgresql and postgres://v:w@h/d')).toBe('POSTGRES://u:***@/db?host=/run/postgresql and postgres://v:***@h/d');
    // No password, nothing to hide.
    expect(redact('postgresql://app@db/app')).toBe('postgresql://app@db/app');
  });

  it('blanks the value of PGPASSWORD=, PASSWORD=, DATABASE_URL= and WEBHOOK_URL= assignments', () => {
    expect(redact('env PGPASSWORD=hunter22 psql')).toBe('env PGPASSWORD=*** psql');
    expect(redact('password=x1 DATABASE_URL=postgresql://a@b/c WEBHOOK_URL=https://hooks.example/T/123')).toBe('password=*** DATABASE_URL=*** WEBHOOK_URL=***');
    expect(redact('MY_PGPASSWORD=x')).toBe('MY_PGPASSWORD=x'); // another name, another value
  });

  it('a secret inside a URL is replaced by both rules without leaking a piece of it', () => {
    const out = redact('postgresql://app:Pw-77x@h/db', ['Pw-77x', 'postgresql://app:Pw-77x@h/db']);
    expect(out).not.toContain('Pw-77x');
    expect(out).not.toContain('77x');
  });
});

describe('the secret forms of credentials and of a webhook URL', () => {
  it('a password, a DATABASE_URL, and its password as written and decoded', () => {
    expect(credentialSecrets({ password: 'Pw-1x', databaseUrl: 'postgresql://u:p%2Fq%40r@h/db' })).toEqual(['Pw-1x', 'postgresql://u:p%2Fq%40r@h/db', 'p%2Fq%40r', 'p/q@r']);
    expect(credentialSecrets({ databaseUrl: 'postgresql://u@h/db' })).toEqual(['postgresql://u@h/db']);
    expect(credentialSecrets({ databaseUrl: 'postgresql://u:bad%zz@h/db' })).toEqual(['postgresql://u:bad%zz@h/db', 'bad%zz']);
    expect(credentialSecrets({})).toEqual([]);
  });

  it('a webhook URL and its path with query (the token), never a bare "/"', () => {
    expect(webhookSecrets('https://hooks.example/services/T0K?x=1')).toEqual(['https://hooks.example/services/T0K?x=1', '/services/T0K?x=1']);
    expect(webhookSecrets('https://hooks.example')).toEqual(['https://hooks.example']);
    expect(webhookSecrets('not a url')).toEqual(['not a url']);
    expect(webhookSecrets(undefined)).toEqual([]);
  });

  it('redact replaces the longest first: a URL goes whole even when its password is listed before it', () => {
    const url = 'https://hooks.example/services/T0K';
    expect(redact(`posting to ${url}`, ['/services/T0K', url])).toBe('posting to ***');
  });
});

describe('LOG_REDACT_PATHS (the root logger configuration)', () => {
  it('censors passwords, env, connection strings and credentials at the top level and one level down', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = pino({ redact: { paths: LOG_REDACT_PATHS, censor: '***' } }, sink);
    log.info(
      {
        password: 'p1-secret',
        PGPASSWORD: 'p2-secret',
        env: { PGPASSWORD: 'p3-secret' },
        DATABASE_URL: 'postgresql://a:p4-secret@h/d',
        child: { password: 'p5-secret', databaseUrl: 'p6-secret', webhookUrl: 'p7-secret', credentials: { password: 'p8-secret' } },
        kept: 'visible',
      },
      'hello',
    );
    const text = lines.join('');
    expect(text).not.toMatch(/p\d-secret/);
    expect(text).toContain('visible');
    expect(JSON.parse(text)).toMatchObject({ password: '***', env: '***', child: { password: '***', credentials: '***' } });
  });
});
