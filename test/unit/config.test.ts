// projects.yml: parse, validate, report every problem at once with file, line and key path.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checkConfigText,
  checkEnvFile,
  didYouMean,
  findTarget,
  loadConfig,
  loadCredentials,
  offsiteEnv,
  parseDuration,
  selectTargets,
} from '../../lib/config/load.js';
import { libpqEnvFromUrl } from '../../lib/process/container.js';
import { ConfigError, EXIT, UsageError } from '../../lib/core/errors.js';
import { PACKAGE_ROOT } from '../../lib/core/package.js';

/** The seed's example, verbatim (the platform's existing projects.yml block). */
const SEED = `filter-ical:
  # ... other config ...

  database:
    type: postgresql
    container: postgres-platform
    databases:
      production: filterical_production
      staging: filterical_staging
    user: filterical_user

    backup:
      enabled: true
      retention_days: 30
      verify_on_restore: true
`;

const ROOT_FILE = path.join(PACKAGE_ROOT, 'projects.yml');

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-config-'));
  made.push(d);
  return d;
}

function writeConfig(text: string): { dir: string; file: string } {
  const dir = tmpDir();
  const file = path.join(dir, 'projects.yml');
  writeFileSync(file, text);
  return { dir, file };
}

/** Issues as "line path: message" for compact assertions. */
function issuesOf(text: string) {
  return checkConfigText(text, 'projects.yml').issues;
}

describe('the seed example and the example file', () => {
  it('validates the seed filter-ical block unchanged, with the values it gives', () => {
    expect(issuesOf(SEED)).toEqual([]);
    const { file } = writeConfig(SEED);
    const config = loadConfig(file, {});
    expect(config.targets.map((t) => `${t.project}/${t.environment}=${t.database}`)).toEqual([
      'filter-ical/production=filterical_production',
      'filter-ical/staging=filterical_staging',
    ]);
    const t = config.targets[0];
    expect(t.container).toBe('postgres-platform');
    expect(t.user).toBe('filterical_user');
    expect(t.backup).toMatchObject({ enabled: true, retention_days: 30, verify_on_restore: true, keep_daily: 7, compression_level: 2, lock_wait_timeout_ms: 300_000 });
    expect(config.platform).toMatchObject({ backupRoot: '/opt/backups', containerCli: 'docker', concurrency: 2, maxBackupAgeMs: 26 * 3600_000 });
  });

  it('validates the repository projects.yml, and the same file without its platform block', () => {
    const text = readFileSync(ROOT_FILE, 'utf8');
    expect(issuesOf(text)).toEqual([]);
    const config = loadConfig(ROOT_FILE, {});
    expect(config.targets.map((t) => `${t.project}/${t.environment}`)).toEqual(['filter-ical/production', 'filter-ical/staging']);
    // Drop `platform:` and its indented block: what remains is the seed's shape.
    const withoutPlatform = text.replace(/^platform:\n(?:(?:[ #].*)?\n)*/m, '');
    expect(withoutPlatform).not.toMatch(/^platform:/m);
    expect(withoutPlatform).toMatch(/^filter-ical:/m);
    expect(issuesOf(withoutPlatform)).toEqual([]);
  });
});

describe('keys', () => {
  it("ignores the deploy system's keys outside database:", () => {
    const text = `acme:
  domain: acme.example.com
  port: 8080
  deploy: { strategy: blue-green, unknown_thing: [1, 2] }
  database:
    type: postgresql
    container: acme-db
    databases: { production: acme_production }
`;
    expect(issuesOf(text)).toEqual([]);
  });

  it('rejects unknown keys inside database:, with file, line, key path and a "did you mean"', () => {
    const text = `acme:
  database:
    type: postgresql
    contianer: acme-db
    databases:
      production: acme_production
    backup:
      retention_day: 30
      colour: blue
`;
    const issues = issuesOf(text);
    expect(issues).toEqual([
      { file: 'projects.yml', line: 4, path: 'acme.database.contianer', message: 'unknown key (did you mean "container"?)' },
      { file: 'projects.yml', line: 8, path: 'acme.database.backup.retention_day', message: 'unknown key (did you mean "retention_days"?)' },
      { file: 'projects.yml', line: 9, path: 'acme.database.backup.colour', message: 'unknown key' },
    ]);
  });

  it('checks platform: strictly too', () => {
    const issues = issuesOf(`platform:\n  backup_roots: /x\n  container_cli: kubectl\n  max_backup_age: 26 hours\n`);
    expect(issues.map((i) => [i.line, i.path])).toEqual([
      [2, 'platform.backup_roots'],
      [3, 'platform.container_cli'],
      [4, 'platform.max_backup_age'],
    ]);
    expect(issues[0].message).toContain('did you mean "backup_root"');
  });

  it('reports every problem of every project at once, in line order, through loadConfig', () => {
    const text = `platform:
  concurrency: 0
acme:
  database:
    type: mysql
    databases:
      production: acme_production
globex:
  database:
    type: postgresql
    databases: {}
    backup:
      keep_daily: -1
      lock_wait_timeout: soon
`;
    const { file } = writeConfig(text);
    let err: unknown;
    try {
      loadConfig(file, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.exitCode).toBe(EXIT.USAGE);
    expect(ce.issues.map((i) => [i.line, i.path])).toEqual([
      [2, 'platform.concurrency'],
      [5, 'acme.database.type'],
      [11, 'globex.database.databases'],
      [13, 'globex.database.backup.keep_daily'],
      [14, 'globex.database.backup.lock_wait_timeout'],
    ]);
    for (const i of ce.issues) expect(i.file).toBe(file);
    expect(ce.message).toContain(`${file}:14: globex.database.backup.lock_wait_timeout: expected a duration`);
  });

  it('names an environment of app_containers that does not exist', () => {
    const issues = issuesOf(`acme:
  database:
    type: postgresql
    databases: { production: acme_production }
    app_containers:
      prod: [acme-web]
`);
    expect(issues).toEqual([{ file: 'projects.yml', line: 6, path: 'acme.database.app_containers.prod', message: 'no such environment in acme.database.databases' }]);
  });
});

describe('hostile names are config errors', () => {
  const base = (over: { project?: string; env?: string; db?: string; container?: string; user?: string; app?: string }) => `${JSON.stringify(over.project ?? 'acme')}:
  database:
    type: postgresql
    container: ${JSON.stringify(over.container ?? 'acme-db')}
    user: ${JSON.stringify(over.user ?? 'acme')}
    databases:
      ${JSON.stringify(over.env ?? 'production')}: ${JSON.stringify(over.db ?? 'acme_production')}
    app_containers:
      ${JSON.stringify(over.env ?? 'production')}: [${JSON.stringify(over.app ?? 'acme-web')}]
`;

  it('accepts the plain names', () => {
    expect(issuesOf(base({}))).toEqual([]);
  });

  it.each([
    ['project ../x', { project: '../x' }, 1, '../x', 'not a valid project name'],
    ['project -rm', { project: '-rm' }, 1, '-rm', 'not a valid project name'],
    ['project with a slash', { project: 'a/b' }, 1, 'a/b', 'not a valid project name'],
    ['project with a newline', { project: 'acme\nx' }, 1, '"acme\\nx"', 'not a valid project name'],
    ['database a"; drop', { db: 'a"; drop' }, 7, 'acme.database.databases.production', 'not a valid database name'],
    ['database with a newline', { db: 'acme\nproduction' }, 7, 'acme.database.databases.production', 'not a valid database name'],
    ['container -rm', { container: '-rm' }, 4, 'acme.database.container', 'not a valid container name'],
    ['container with a newline', { container: 'acme-db\n' }, 4, 'acme.database.container', 'not a valid container name'],
    ['user with a quote', { user: "o'brien" }, 5, 'acme.database.user', 'not a valid database user'],
    ['environment ..', { env: '..' }, 7, 'acme.database.databases."..".', 'not a valid environment name'],
    ['app container --privileged', { app: '--privileged' }, 9, 'acme.database.app_containers.production.0', 'not a valid container name'],
  ])('%s', (_what, over, line, pathPrefix, message) => {
    const issues = issuesOf(base(over));
    expect(issues.length).toBeGreaterThan(0);
    const hit = issues.find((i) => i.message.includes(message));
    expect(hit, JSON.stringify(issues)).toBeDefined();
    expect(hit!.line).toBe(line);
    if (pathPrefix.endsWith('.')) expect(hit!.path.startsWith('acme.database.databases') || hit!.path.startsWith('acme.database.app_containers')).toBe(true);
    else expect(hit!.path).toBe(pathPrefix);
    // A path never spans lines: a newline in a name cannot forge another message line.
    for (const i of issues) expect(i.path).not.toContain('\n');
  });

  it('an environment name with a newline says which rule, not "Invalid key"', () => {
    const issues = issuesOf(base({ env: 'prod\nx' }));
    const hit = issues.find((i) => i.path.startsWith('acme.database.databases'));
    expect(hit).toMatchObject({ line: 7, path: 'acme.database.databases."prod\\nx"' });
    expect(hit!.message).toContain('not a valid environment name');
  });
});

describe('YAML syntax', () => {
  it.each([
    ['a bad indent', 'acme:\n  database:\n    type: postgresql\n   databases: x\n', 4],
    ['a duplicate key', 'acme:\n  database:\n    type: postgresql\n    type: postgresql\n', 4],
    ['a tab', 'acme:\n\tdatabase: {}\n', 2],
    ['an unclosed flow map', 'platform:\n  concurrency: 2\nacme:\n  database: { type: postgresql\nglobex: {}\n', 5],
  ])('%s is an error with its line', (_what, text, line) => {
    const issues = issuesOf(text);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0].message).toMatch(/^YAML: /);
    expect(issues[0].line).toBe(line);
  });

  it('a file that is not a mapping is an error', () => {
    expect(issuesOf('- acme\n- globex\n')).toEqual([{ file: 'projects.yml', line: 1, path: '', message: 'expected a mapping of project names' }]);
  });

  it('a missing file is a config error naming it', () => {
    const missing = path.join(tmpDir(), 'nope.yml');
    expect(() => loadConfig(missing, {})).toThrow(ConfigError);
    expect(() => loadConfig(missing, {})).toThrow(/nope\.yml: cannot read: ENOENT/);
  });
});

describe('resolution, overrides and lookups', () => {
  const text = `platform:
  backup_root: ./backups
  backup:
    keep_daily: 3
    compression_level: 6
    lock_wait_timeout: 30s
acme:
  database:
    type: postgresql
    container: acme-db
    databases: { production: acme_production, staging: acme_staging }
    backup:
      keep_daily: 9
direct:
  database:
    type: postgresql
    databases: { production: direct_production }
`;

  it('fills defaults: project over platform over built-in', () => {
    const { dir, file } = writeConfig(text);
    const c = loadConfig(file, {});
    expect(c.platform.backupRoot).toBe(path.join(dir, 'backups'));
    const acme = findTarget(c, 'acme', 'production');
    expect(acme.backup).toMatchObject({ keep_daily: 9, keep_weekly: 4, compression_level: 6, lock_wait_timeout_ms: 30_000 });
    expect(acme.envFile).toBe(path.join(dir, 'configs', 'acme', '.env.production'));
    expect(findTarget(c, 'direct', 'production').container).toBeUndefined();
  });

  it('PGFLEET_BACKUP_ROOT and PGFLEET_CONTAINER_CLI override the file; a bad CLI name is a usage error', () => {
    const { file } = writeConfig(text);
    const c = loadConfig(file, { PGFLEET_BACKUP_ROOT: '/srv/b', PGFLEET_CONTAINER_CLI: 'podman' });
    expect(c.platform).toMatchObject({ backupRoot: '/srv/b', containerCli: 'podman' });
    expect(() => loadConfig(file, { PGFLEET_CONTAINER_CLI: 'kubectl' })).toThrow(UsageError);
  });

  it('unknown projects and environments are usage errors naming what exists', () => {
    const { file } = writeConfig(text);
    const c = loadConfig(file, {});
    expect(() => findTarget(c, 'nope', 'production')).toThrow(/unknown project "nope".*acme, direct/);
    expect(() => findTarget(c, 'acme', 'qa')).toThrow(/no environment "qa" \(has: production, staging\)/);
    expect(() => selectTargets(c, undefined, 'qa')).toThrow(UsageError);
    expect(selectTargets(c, 'acme').length).toBe(2);
    expect(selectTargets(c, undefined, 'production').map((t) => t.project)).toEqual(['acme', 'direct']);
  });

  it('credentials come from configs/<project>/.env.<env>, then the environment, never projects.yml', () => {
    const { dir, file } = writeConfig(text);
    const c = loadConfig(file, {});
    const acme = findTarget(c, 'acme', 'production');
    expect(loadCredentials(acme, { PGPASSWORD: 'from-env' })).toEqual({ password: 'from-env', databaseUrl: undefined });
    mkdirSync(path.join(dir, 'configs', 'acme'), { recursive: true });
    writeFileSync(acme.envFile, 'PGPASSWORD=from-file\n', { mode: 0o600 });
    expect(loadCredentials(acme, { PGPASSWORD: 'from-env' }).password).toBe('from-file');
    expect(checkEnvFile(acme)).toEqual([]);
  });

  it('config check problems of env files: mode, unknown variables, a direct target without DATABASE_URL (values never shown)', () => {
    const { dir, file } = writeConfig(text);
    const c = loadConfig(file, {});
    const acme = findTarget(c, 'acme', 'staging');
    mkdirSync(path.join(dir, 'configs', 'acme'), { recursive: true });
    writeFileSync(acme.envFile, 'PGPASSWORD=s3cret-value\nPGPASWORD=typo\n');
    chmodSync(acme.envFile, 0o644);
    const issues = checkEnvFile(acme);
    expect(issues.map((i) => i.message)).toEqual([expect.stringContaining('readable by others (mode 644)'), expect.stringContaining('unknown variable')]);
    expect(JSON.stringify(issues)).not.toContain('s3cret-value');
    const direct = findTarget(c, 'direct', 'production');
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      expect(checkEnvFile(direct)).toEqual([expect.objectContaining({ path: 'DATABASE_URL', message: expect.stringContaining('DATABASE_URL is required') })]);
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });
});

describe('small pieces', () => {
  it('parseDuration', () => {
    expect(parseDuration('2s')).toBe(2000);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('26h')).toBe(26 * 3600_000);
    expect(parseDuration('1w')).toBe(7 * 86400_000);
    for (const bad of ['2', '2 s', '-1s', '1.5h', 'soon', '']) expect(() => parseDuration(bad), bad).toThrow(UsageError);
  });

  it('didYouMean finds close keys only', () => {
    const keys = ['enabled', 'retention_days', 'keep_daily', 'keep_weekly', 'keep_monthly'];
    expect(didYouMean('retention_day', keys)).toBe('retention_days');
    expect(didYouMean('keep_dialy', keys)).toBe('keep_daily');
    expect(didYouMean('Enabled', keys)).toBe('enabled');
    expect(didYouMean('colour', keys)).toBeUndefined();
  });

  it('DATABASE_URL becomes libpq variables, the unix-socket form with an empty host included', () => {
    expect(libpqEnvFromUrl('postgresql://shop:p%2Fw@/shop?host=/run/postgresql')).toEqual({ PGHOST: '/run/postgresql', PGUSER: 'shop', PGPASSWORD: 'p/w' });
    expect(libpqEnvFromUrl('postgres://u:p@db.example:5433/x?sslmode=require')).toEqual({ PGHOST: 'db.example', PGPORT: '5433', PGUSER: 'u', PGPASSWORD: 'p', PGSSLMODE: 'require' });
    expect(libpqEnvFromUrl('postgresql:///x')).toEqual({});
    for (const bad of ['mysql://u:secret-1@h/x', 'postgresql://u:secret-1@[h/x']) {
      expect(() => libpqEnvFromUrl(bad)).toThrow(/DATABASE_URL is not a/);
      try {
        libpqEnvFromUrl(bad);
      } catch (e) {
        expect((e as Error).message).not.toContain('secret-1');
      }
    }
  });
});

describe('offsite and encryption', () => {
  const R1 = 'age1n2naafff70gynfqk7a03ecp9nl2te3sm0m8wgrnhqdmd4a6g8gys4mjgx8';
  const R2 = 'age1z6zwp7csy2962lnp9qfn28fmqryyyw7ujxy24mhj02zg0q3jtskqlx7l2e';
  const DB = `  database:
    type: postgresql
    container: db
    databases: { production: x_production, staging: x_staging }
`;

  it('resolves platform.offsite with its defaults, and a project override key by key', () => {
    const { file } = writeConfig(`platform:
  max_backup_age: 30h
  backup: { keep_daily: 5 }
  offsite:
    url: s3://acme-backups/pgfleet/
    endpoint: https://s3.eu-central-1.amazonaws.com
    region: eu-central-1
    storage_class: STANDARD_IA
    object_lock: { mode: COMPLIANCE, days: 35 }
    keep_monthly: 24
  encryption:
    age_recipients: [${R1}, ${R2}]
shop:
${DB}    backup: { keep_weekly: 9 }
    offsite: { url: 's3://shop-bucket', path_style: true, max_age: 2d, object_lock: { mode: GOVERNANCE, days: 7 } }
    encryption: { age_recipients: [${R2}] }
plain:
${DB}quiet:
${DB}    offsite: { enabled: false }
`);
    const c = loadConfig(file, {});
    expect(c.platform.offsite).toEqual({
      url: 's3://acme-backups/pgfleet/',
      bucket: 'acme-backups',
      prefix: 'pgfleet',
      endpoint: 'https://s3.eu-central-1.amazonaws.com',
      region: 'eu-central-1',
      pathStyle: false,
      storageClass: 'STANDARD_IA',
      maxAgeMs: 30 * 3600_000,
      objectLock: { mode: 'COMPLIANCE', days: 35 },
      keep: { daily: 5, weekly: 4, monthly: 24 },
    });
    expect(c.platform.encryption).toEqual({ ageRecipients: [R1, R2] });
    const shop = findTarget(c, 'shop', 'production');
    expect(shop.offsite).toMatchObject({ bucket: 'shop-bucket', prefix: '', endpoint: 'https://s3.eu-central-1.amazonaws.com', pathStyle: true, maxAgeMs: 2 * 86400_000, objectLock: { mode: 'GOVERNANCE', days: 7 }, keep: { daily: 5, weekly: 9, monthly: 24 } });
    expect(shop.encryption).toEqual({ ageRecipients: [R2] });
    expect(findTarget(c, 'plain', 'staging')).toMatchObject({ offsite: { bucket: 'acme-backups', prefix: 'pgfleet' }, encryption: { ageRecipients: [R1, R2] } });
    expect(findTarget(c, 'quiet', 'production').offsite).toBeUndefined();
    // Without offsite keys nothing changes: no offsite, no encryption.
    const seed = loadConfig(writeConfig(SEED).file, {});
    expect(seed.platform.offsite).toBeUndefined();
    expect(seed.targets[0]).toMatchObject({ offsite: undefined, encryption: undefined });
  });

  it('rejects bad URLs, bucket names, endpoints, recipients and lock settings, each with its line', () => {
    const typo = R1.slice(0, -1) + (R1.endsWith('q') ? 'p' : 'q');
    const issues = issuesOf(`platform:
  offsite:
    url: https://acme-backups/pgfleet
    endpoint: https://AKIA:secret@s3.example.com
    storage_clas: GLACIER
    object_lock: { mode: compliance, days: 0 }
  encryption:
    age_recipients: [age1abc, ${typo}]
a:
${DB}    offsite: { url: 's3://Acme_Backups/x' }
b:
${DB}    offsite: { url: 's3://ab/x' }
c:
${DB}    offsite: { url: 's3://192.168.1.1/x' }
d:
${DB}    offsite: { url: 's3://good-bucket/a//b' }
e:
${DB}    encryption: { age_recipients: [] }
`);
    const lines = issues.map((i) => `${i.line} ${i.path}: ${i.message}`);
    expect(lines).toEqual([
      '3 platform.offsite.url: expected s3://bucket/prefix',
      expect.stringMatching(/^4 platform\.offsite\.endpoint: no credentials in the endpoint URL/),
      '5 platform.offsite.storage_clas: unknown key (did you mean "storage_class"?)',
      expect.stringMatching(/^6 platform\.offsite\.object_lock\.mode: /),
      expect.stringMatching(/^6 platform\.offsite\.object_lock\.days: /),
      '8 platform.encryption.age_recipients.0: expected an age public key: "age1" followed by 58 characters (age-keygen -y prints it); this one has 3',
      '8 platform.encryption.age_recipients.1: not a valid age public key: its checksum does not match (a typo?)',
      expect.stringMatching(/^14 a\.database\.offsite\.url: not a valid bucket name "Acme_Backups": a bucket name has lowercase letters/),
      expect.stringMatching(/^20 b\.database\.offsite\.url: not a valid bucket name "ab": a bucket name has 3 to 63 characters/),
      expect.stringMatching(/^26 c\.database\.offsite\.url: .*not an IP address/),
      expect.stringMatching(/^32 d\.database\.offsite\.url: the key prefix is/),
      '38 e.database.encryption.age_recipients: at least one age public key',
    ]);
    expect(JSON.stringify(issues)).not.toContain('secret@');
  });

  it('a project override without a url needs platform.offsite.url', () => {
    expect(issuesOf(`shop:\n${DB}    offsite: { keep_monthly: 3 }\n`)).toEqual([
      { file: 'projects.yml', line: 6, path: 'shop.database.offsite', message: 'no url here and no platform.offsite.url to take it from' },
    ]);
    expect(issuesOf(`shop:\n${DB}    offsite: { enabled: false }\n`)).toEqual([]);
  });

  it("offsite credentials come from the env file's AWS_* variables, else the environment's, never mixed", () => {
    const { dir, file } = writeConfig(`platform:\n  offsite: { url: 's3://acme-backups' }\nshop:\n${DB}`);
    const c = loadConfig(file, {});
    const t = findTarget(c, 'shop', 'production');
    const procEnv = { AWS_ACCESS_KEY_ID: 'PROCKEY', AWS_SECRET_ACCESS_KEY: 'procsecret', HOME: '/home/x' };
    expect(offsiteEnv(t, procEnv)).toMatchObject(procEnv);
    mkdirSync(path.join(dir, 'configs', 'shop'), { recursive: true });
    writeFileSync(t.envFile, 'PGPASSWORD=pw\nAWS_ACCESS_KEY_ID=FILEKEY\n', { mode: 0o600 });
    expect(offsiteEnv(t, procEnv)).toMatchObject({ AWS_ACCESS_KEY_ID: 'FILEKEY', AWS_SECRET_ACCESS_KEY: undefined, HOME: '/home/x' });
    writeFileSync(t.envFile, 'AWS_ACCESS_KEY_ID=FILEKEY\nAWS_SECRET_ACCESS_KEY=filesecret\nAWS_REGIONN=x\n', { mode: 0o600 });
    expect(offsiteEnv(t, procEnv)).toMatchObject({ AWS_ACCESS_KEY_ID: 'FILEKEY', AWS_SECRET_ACCESS_KEY: 'filesecret' });
    expect(checkEnvFile(t).map((i) => i.path)).toEqual(['AWS_REGIONN']);
  });
});
