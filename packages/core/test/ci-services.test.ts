/**
 * `.ci/run` sets up its services with `.ci/services.sh`. Two runs on one machine at once must not
 * meet, nor touch the machine's shared Redis, and each removes what it made when it exits, by a
 * signal too. Needs the machine's PostgreSQL on 127.0.0.1:5432 and `redis-server`, as CI has.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './support/services';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const onThisMachine =
  Boolean(testDatabaseUrl && new URL(testDatabaseUrl).host === '127.0.0.1:5432') &&
  spawnSync('redis-server', ['--version']).status === 0 &&
  spawnSync('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432']).status === 0 &&
  existsSync('/usr/lib/postgresql') &&
  readdirSync('/usr/lib/postgresql').some((version) => existsSync(`/usr/lib/postgresql/${version}/bin/initdb`));

interface Run {
  child: ChildProcessWithoutNullStreams;
  databaseUrl: string;
  redisUrl: string;
  redisDir: string;
}

/** Sources the script, brings the services up and waits (on stdin) until told to exit. */
async function startRun(): Promise<Run> {
  const child = spawn(
    'bash',
    ['-c', '. .ci/services.sh && ci_services_up >/dev/null && echo "$AIKB_TEST_DATABASE_URL $AIKB_TEST_REDIS_URL $CI_REDIS_DIR" && read -r _'],
    {
      cwd: repo,
      env: { ...process.env, AIKB_TEST_DATABASE_URL: '', AIKB_TEST_REDIS_URL: '' },
    },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  while (!out.includes('\n')) {
    const [chunk] = (await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => [undefined])])) as [Buffer | undefined];
    if (!chunk) throw new Error(`.ci/services.sh exited before its services were up: ${err}`);
    out += chunk.toString();
  }
  const [databaseUrl, redisUrl, redisDir] = out.trim().split(' ') as [string, string, string];
  return { child, databaseUrl, redisUrl, redisDir };
}

async function query<T>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

const databaseExists = async (databaseUrl: string) => {
  const admin = new URL(databaseUrl);
  const name = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  return (await query(admin.href, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;
};

const redisAnswers = (redisUrl: string) => {
  const { hostname, port } = new URL(redisUrl);
  return spawnSync('redis-cli', ['-h', hostname, '-p', port, 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG';
};

describe.runIf(onThisMachine)('.ci/services.sh', () => {
  it('gives two runs at once a database and a Redis each, and removes both when a run exits or is killed', async () => {
    const runs = await Promise.all([startRun(), startRun()]);
    const [a, b] = runs;
    try {
      expect(a.databaseUrl).not.toBe(b.databaseUrl);
      expect(a.redisUrl).not.toBe(b.redisUrl);
      for (const run of runs) {
        expect(new URL(run.redisUrl).port).not.toBe('6379');
        expect(await query<{ db: string }>(run.databaseUrl, 'SELECT current_database() AS db')).toEqual([{ db: path.basename(run.databaseUrl) }]);
        expect(redisAnswers(run.redisUrl)).toBe(true);
      }

      a.child.stdin.end('\n');
      b.child.kill('SIGTERM');
      await Promise.all(runs.filter((run) => run.child.exitCode === null && run.child.signalCode === null).map((run) => once(run.child, 'exit')));
      for (const run of runs) {
        expect(await databaseExists(run.databaseUrl)).toBe(false);
        expect(redisAnswers(run.redisUrl)).toBe(false);
        expect(existsSync(run.redisDir)).toBe(false);
      }
    } finally {
      for (const run of runs) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    }
  }, 60_000);
});
