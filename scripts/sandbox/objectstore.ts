/**
 * A real S3-compatible object store on this machine, for the tests, the demo and the benchmark:
 * a one-node Ceph cluster (a monitor, one OSD on memstore, the RADOS Gateway) from Debian's
 * packages (ceph-mon, ceph-osd, radosgw, ceph-common; scripts/ensure-system.sh installs them).
 * Data lives in RAM; everything else (config, keyrings, pid files, logs) lives in DIR.
 *
 * Promises:
 * - startObjectStore(dir, port) makes a fresh cluster every time (a leftover in DIR is stopped
 *   and wiped first), with a fresh S3 user whose keys the gateway generates (never in argv); it
 *   resolves once the gateway answers on 127.0.0.1:port, and on failure stops what it started.
 * - Concurrent clusters need their own DIR and PORT (the monitor's port is derived from PORT).
 * - stop() (or stopObjectStore(dir)) ends the daemons started in DIR by their pid files, SIGKILL
 *   after 10 s, and removes DIR. Idempotent.
 * - killGateway() ends the gateway alone (SIGKILL: an endpoint that dies mid-request) and returns
 *   once it is gone; startGateway() brings it back on the same port, data and keys intact.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { Runner } from '../../lib/process/runner.js';

export interface ObjectStoreEndpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface RunningObjectStore extends ObjectStoreEndpoint {
  dir: string;
  /** The daemons' pids (monitor, OSD, gateway). */
  pids(): number[];
  /** The variables the AWS SDK's chain reads, for a child's environment or process.env. */
  env(): Record<string, string>;
  killGateway(): Promise<void>;
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

const DAEMONS = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-authtool', 'monmaptool', 'radosgw-admin', 'ceph'];
const MEMSTORE_BYTES = 2 * 1024 ** 3;

function cephConf(d: string, fsid: string, port: number, monPort: number): string {
  return `[global]
fsid = ${fsid}
mon_host = v2:127.0.0.1:${monPort}
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
run_dir = ${d}/run
log_file = ${d}/log/$name.log
admin_socket = ${d}/run/$name.asok
pid_file = ${d}/run/$name.pid
keyring = ${d}/$name.keyring
ms_bind_ipv6 = false
[mon]
mon_data = ${d}/mon
[osd]
osd_data = ${d}/osd0
osd_objectstore = memstore
memstore_device_bytes = ${MEMSTORE_BYTES}
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:${port}
rgw_data = ${d}/rgw
`;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

function daemonPids(dir: string): number[] {
  const run = path.join(dir, 'run');
  if (!existsSync(run)) return [];
  return readdirSync(run)
    .filter((n) => n.endsWith('.pid'))
    .map((n) => Number(readFileSync(path.join(run, n), 'utf8').trim()))
    .filter((p) => Number.isInteger(p) && p > 1);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Stop the daemons started in `dir` and remove it. Idempotent. */
export async function stopObjectStore(dir: string): Promise<void> {
  const pids = daemonPids(dir);
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGTERM');
  const until = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

/** Start a fresh one-node cluster with its gateway on 127.0.0.1:port; see the file's promises. */
export async function startObjectStore(dir: string, port = 7480, runner = new Runner()): Promise<RunningObjectStore> {
  const missing = DAEMONS.filter((b) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(path.join(d, b))));
  if (missing.length) throw new Error(`object store: ${missing.join(', ')} not found (apt-get install ceph-mon ceph-osd radosgw ceph-common; scripts/ensure-system.sh does)`);
  const d = path.resolve(dir);
  await stopObjectStore(d);
  if (await portOpen(port)) throw new Error(`object store: port ${port} is already in use`);
  for (const sub of ['mon', 'osd0', 'rgw', 'run', 'log']) mkdirSync(path.join(d, sub), { recursive: true, mode: 0o700 });
  try {
    return await bootstrap(d, port, runner);
  } catch (e) {
    await stopObjectStore(d);
    throw e;
  }
}

async function bootstrap(d: string, port: number, runner: Runner): Promise<RunningObjectStore> {
  const monPort = 3300 + (port % 500); // two clusters on one machine need two monitor ports
  const fsid = randomUUID();
  const conf = path.join(d, 'ceph.conf');
  writeFileSync(conf, cephConf(d, fsid, port, monPort), { mode: 0o600 });
  const C = ['-c', conf];
  const run = (argv: string[], what: string) => runner.run(argv, { what, cwd: d });
  const admin = (argv: string[], what: string) => run(['timeout', '60', ...argv], what);

  const k = (name: string) => path.join(d, `${name}.keyring`);
  await run(['ceph-authtool', '--create-keyring', k('mon'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], 'ceph-authtool');
  await run(['ceph-authtool', '--create-keyring', k('client.admin'), '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *'], 'ceph-authtool');
  await run(['ceph-authtool', k('mon'), '--import-keyring', k('client.admin')], 'ceph-authtool');
  writeFileSync(k('mon.a'), readFileSync(k('mon')), { mode: 0o600 });
  await run(['monmaptool', '--create', '--add', 'a', `v2:127.0.0.1:${monPort}`, '--fsid', fsid, path.join(d, 'monmap')], 'monmaptool');
  await run(['ceph-mon', ...C, '--mkfs', '-i', 'a', '--monmap', path.join(d, 'monmap'), '--keyring', k('mon')], 'ceph-mon --mkfs');
  await run(['ceph-mon', ...C, '-i', 'a'], 'ceph-mon');

  const osdUuid = randomUUID();
  const id = (await admin(['ceph', ...C, 'osd', 'new', osdUuid], 'ceph osd new')).stdout.trim();
  if (!/^\d+$/.test(id)) throw new Error(`object store: unexpected OSD id ${JSON.stringify(id)}`);
  await admin(['ceph', ...C, 'auth', 'get-or-create', `osd.${id}`, 'mon', 'allow profile osd', 'osd', 'allow *', 'mgr', 'allow profile osd', '-o', k(`osd.${id}`)], 'ceph auth');
  await run(['ceph-osd', ...C, '-i', id, '--mkfs', '--osd-uuid', osdUuid], 'ceph-osd --mkfs');
  await run(['ceph-osd', ...C, '-i', id], 'ceph-osd');
  await admin(['ceph', ...C, 'auth', 'get-or-create', 'client.rgw.a', 'mon', 'allow rw', 'osd', 'allow rwx', '-o', k('client.rgw.a')], 'ceph auth');
  const startGateway = async () => {
    await run(['radosgw', ...C, '-n', 'client.rgw.a'], 'radosgw');
    const until = Date.now() + 60_000;
    while (!(await portOpen(port))) {
      if (Date.now() > until) throw new Error(`object store: the gateway did not open port ${port}; see ${path.join(d, 'log')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const killGateway = async () => {
    const pidFile = path.join(d, 'run', 'client.rgw.a.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
    if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
    while ((pid > 1 && alive(pid)) || (await portOpen(port))) await new Promise((r) => setTimeout(r, 50));
    rmSync(pidFile, { force: true });
  };
  await startGateway();
  // The gateway generates the user's keys: no secret on a command line; they come back on stdout.
  const out = await admin(['radosgw-admin', ...C, 'user', 'create', '--uid=test', '--display-name=test'], 'radosgw-admin user create');
  const key = (JSON.parse(out.stdout) as { keys?: { access_key: string; secret_key: string }[] }).keys?.[0];
  if (!key) throw new Error('object store: radosgw-admin created no keys');

  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  return {
    dir: d,
    endpoint,
    region,
    accessKeyId: key.access_key,
    secretAccessKey: key.secret_key,
    pids: () => daemonPids(d),
    env: () => ({ AWS_ACCESS_KEY_ID: key.access_key, AWS_SECRET_ACCESS_KEY: key.secret_key, AWS_REGION: region, S3_ENDPOINT: endpoint }),
    killGateway,
    startGateway,
    stop: () => stopObjectStore(d),
  };
}
