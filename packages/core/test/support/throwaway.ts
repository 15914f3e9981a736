/**
 * Throw-away Redis and PostgreSQL servers on spare loopback ports, for tests that kill or restart
 * a service. They never touch the shared services of the machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { until } from './until';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A Redis server this test owns. */
export interface ThrowawayRedis {
  readonly port: number;
  readonly url: string;
  /** Starts (or restarts) the server on the same port. */
  start(): Promise<void>;
  /** Kills the server (SIGKILL: no goodbye to clients). Needs no `this`: `cleanups.push(redis.kill)`. */
  kill(this: void): Promise<void>;
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/** The pid of the redis-server answering on `port`, if one does. */
export function redisPid(port: number): number | undefined {
  const info = spawnSync('redis-cli', ['-p', String(port), 'info', 'server']).stdout?.toString() ?? '';
  const pid = /^process_id:(\d+)/m.exec(info)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/**
 * A redis-server of its own on a spare port. Started only once its own process answers there:
 * a port handed out free can be taken by another test's server before this one binds it (tests
 * run in parallel), and then this one exits while the other answers the ping — the test would run
 * against a server another test kills. The first start then picks another port; a restart, whose
 * port clients already hold, fails naming the conflict. `pickPort` (default {@link freePort}) is
 * for the test of this.
 */
export async function createThrowawayRedis(options: { pickPort?: () => Promise<number> } = {}): Promise<ThrowawayRedis> {
  const pickPort = options.pickPort ?? freePort;
  let port = await pickPort();
  let child: ChildProcess | undefined;
  let started = false;
  const launch = async (): Promise<boolean> => {
    const own = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    child = own;
    const exited = () => own.exitCode !== null || own.signalCode !== null;
    await until(() => exited() || redisPid(port) !== undefined, `redis-server on port ${port}`, 15_000, 50);
    if (!exited() && redisPid(port) === own.pid) return true;
    own.kill('SIGKILL');
    return false;
  };
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    async start() {
      for (let attempt = 1; !(await launch()); attempt++) {
        if (started) throw new Error(`throw-away Redis: port ${port} was taken by another server while this one was stopped`);
        if (attempt === 5) throw new Error(`throw-away Redis: 5 spare ports were taken by other servers before redis-server could bind them`);
        port = await pickPort();
      }
      started = true;
    },
    async kill() {
      // Killed already (by a signal: exitCode stays null) or exited: nothing to wait for.
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** `AIKB_PG_BIN`, else the newest Debian-packaged server (`/usr/lib/postgresql/<version>/bin`). */
/**
 * Declares, in the current suite, a throw-away Redis started before its tests and killed after.
 * @returns a getter for the running server (inside tests and hooks)
 */
export function useThrowawayRedis(): () => ThrowawayRedis {
  let server: ThrowawayRedis | undefined;
  beforeAll(async () => {
    server = await createThrowawayRedis();
    await server.start();
  });
  afterAll(async () => {
    await server?.kill();
  });
  return () => {
    if (!server) throw new Error('throw-away Redis not started: use it inside a test or hook');
    return server;
  };
}

const PG_BIN = process.env.AIKB_PG_BIN ?? debianPostgresBin();

function debianPostgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  return path.join(root, versions[0] ?? '15', 'bin');
}

export function hasPostgresBinaries(): boolean {
  return existsSync(path.join(PG_BIN, 'initdb')) && existsSync(path.join(PG_BIN, 'pg_ctl'));
}

/** A PostgreSQL cluster this test owns, in a temp directory. */
export interface ThrowawayPostgres {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  /** Immediate shutdown: connections are cut. */
  stop(): Promise<void>;
  /** Stops the server and deletes its directory. Needs no `this`: `cleanups.push(postgres.destroy)`. */
  destroy(this: void): Promise<void>;
}

/**
 * initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user, which must
 * own the cluster directory.
 */
export async function createThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'aikb-pg-'));
  chmodSync(dir, 0o777);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres']).stdout.toString().trim();
    const gid = spawnSync('id', ['-g', 'postgres']).stdout.toString().trim();
    chownSync(dir, Number(id), Number(gid));
  }
  const run = (cmd: string, args: string[]) => {
    const full = path.join(PG_BIN, cmd);
    const result = asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', full, ...args], { encoding: 'utf8' }) : spawnSync(full, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${cmd} failed: ${result.stderr || result.stdout}`);
  };
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const ready = () => spawnSync(path.join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]).status === 0;
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-p ${port} -h 127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off`, 'start']);
      await until(ready, `postgres on port ${port}`, 15_000, 50);
    },
    async stop() {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    async destroy() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
