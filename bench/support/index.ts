/**
 * What the benches share: medians and percentiles (`./stats`), the one table they print, and the
 * built reference server started as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createTemporaryDatabase } from '@aikb/test-support';

export { median, percentile, summarize } from './stats';

/**
 * A throw-away database on the PostgreSQL server at `url` for one bench run (drop it at the end),
 * or `undefined` — the reason printed — when that server cannot be reached: its rows are skipped.
 */
export async function benchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  try {
    return await createTemporaryDatabase(url);
  } catch (error) {
    console.log(`(PostgreSQL at ${url} unreachable, its rows are skipped: ${(error as Error).message})`);
    return undefined;
  }
}

/** Prints `rows` (the first is the header) as a Markdown table, columns padded. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col]!)).join(' | ')} |`;
  console.log(line(rows[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));
}

/** A built reference server running as a child process. */
export interface BenchServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** SIGTERM, wait for the exit, remove the data dir. */
  stop(): Promise<void>;
}

/**
 * `aikb-server serve` (build it first) on a free port with a throw-away data dir and
 * `ADMIN_TOKEN`; embedded unless `env` sets `DATABASE_URL`. Resolves once it listens.
 */
export async function startBuiltServer({ adminToken, env: extra = {} }: { adminToken: string; env?: Record<string, string> }): Promise<BenchServer> {
  const cli = fileURLToPath(new URL('../../examples/reference-server/dist/cli.js', import.meta.url));
  const root = mkdtempSync(path.join(tmpdir(), 'aikb-bench-'));
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', LOG_LEVEL: 'info', AIKB_DATA_DIR: path.join(root, 'data'), ADMIN_TOKEN: adminToken };
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'NODE_ENV', 'LOG_FILE', 'AIKB_TEST_HOOKS']) delete env[key];
  Object.assign(env, extra);
  const child = spawn(process.execPath, [cli, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.resume();
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('server did not listen within 60 s')), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /"port":(\d+)[^\n]*aikb-server listening on|aikb-server listening on[^\n]*"port":(\d+)/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1] ?? match[2]));
      }
      if (buffer.length > 1_000_000) buffer = buffer.slice(-10_000);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(root, { recursive: true, force: true });
    },
  };
}
