/**
 * npm run bench:startup — how long the reference server takes from launch to its first 200 from
 * /api/health on the embedded database: via `npm start` (bundles first) and via the built CLI,
 * on a fresh data directory (PGlite creates its cluster) and on an existing one (a restart).
 * Medians over several runs, one table, from one process run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './support';

const repo = fileURLToPath(new URL('..', import.meta.url));
const serverDir = path.join(repo, 'examples/reference-server');
const RUNS = Number(process.env.AIKB_BENCH_RUNS ?? 5);

async function timeToHealthy(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, port: number): Promise<number> {
  const started = performance.now();
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' }, stdio: 'ignore', detached: true });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}`);
      if (performance.now() - started > 60_000) throw new Error('not healthy within 60 s');
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/health`);
        if (res.status === 200) return performance.now() - started;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  spawnSync('npx', ['tsup', '--config', '../../tsup.config.ts'], { cwd: serverDir, stdio: 'ignore' });
  const rows: Array<[string, number[]]> = [];
  const scenarios: Array<[string, (dataDir: string) => Promise<number>, boolean]> = [
    ['npm start, fresh data dir', (d) => timeToHealthy('npm', ['start'], repo, { AIKB_DATA_DIR: d }, 3901), true],
    ['aikb-server serve, fresh data dir', (d) => timeToHealthy(process.execPath, ['dist/cli.js', 'serve'], serverDir, { AIKB_DATA_DIR: d }, 3902), true],
    [
      'aikb-server serve, existing data dir (restart)',
      (d) => timeToHealthy(process.execPath, ['dist/cli.js', 'serve'], serverDir, { AIKB_DATA_DIR: d }, 3903),
      false,
    ],
  ];
  for (const [name, run, fresh] of scenarios) {
    const samples: number[] = [];
    const root = mkdtempSync(path.join(tmpdir(), 'aikb-bench-startup-'));
    try {
      const dataDir = path.join(root, 'data');
      if (!fresh) await run(dataDir); // create it once, untimed
      for (let i = 0; i < RUNS; i++) {
        const dir = fresh ? path.join(root, `data-${i}`) : dataDir;
        samples.push(await run(dir));
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    rows.push([name, samples]);
  }
  console.log(
    `aikb-server start-up to first 200 from /api/health — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${RUNS} runs each`,
  );
  console.log('| scenario | median | min | max |');
  console.log('| --- | --- | --- | --- |');
  for (const [name, samples] of rows) {
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(`| ${name} | ${s(median(samples))} | ${s(Math.min(...samples))} | ${s(Math.max(...samples))} |`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
