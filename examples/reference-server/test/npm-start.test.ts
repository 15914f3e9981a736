import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { baseEnv, isolatedCheckout, tempDataDir, useServerProcesses, type LogLine } from './harness';

const { cleanups } = useServerProcesses();

/** True while a process with this pid exists (a zombie counts: it has not been reaped). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids of every `node … dist/cli.js serve` process running from `dir` (not the `sh -c` that may start one). */
function servePids(dir: string): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .filter((line) => /^\s*\d+\s+\S*node\s.*dist\/cli\.js serve/.test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((pid) => {
      const cwd = spawnSync('readlink', [`/proc/${pid}/cwd`], { encoding: 'utf8' }).stdout.trim();
      return cwd.startsWith(dir);
    });
}

/** A login (answered at its 500 ms constant-time deadline), sent on a connection of its own. */
function login(port: number): { sent: Promise<void>; answered: Promise<{ status: number; body: string }> } {
  let sent!: () => void;
  const written = new Promise<void>((resolve) => (sent = resolve));
  const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ email: 'nobody@example.com', password: 'not-the-password' }), sent);
  });
  return { sent: written, answered };
}

describe('npm start', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops with the npm process on %s: finishes the request in flight, exits 0, leaves no server behind',
    { timeout: 90_000 },
    async (signal) => {
      const root = isolatedCheckout(cleanups);
      const data = tempDataDir();
      cleanups.push(data.cleanup);
      // PORT=0: a free port, read from the server's "listening" log line.
      const npm = spawn('npm', ['start'], { cwd: root, env: baseEnv({ AIKB_DATA_DIR: data.dir, LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] });
      cleanups.push(() => {
        for (const pid of servePids(root)) process.kill(pid, 'SIGKILL');
        if (alive(npm.pid!)) npm.kill('SIGKILL');
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        npm.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const logs: LogLine[] = [];
      let stderr = '';
      npm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      let buffer = '';
      const listening = new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`npm start did not listen within 60 s\n${stderr}`)), 60_000);
        npm.stdout.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            if (!line.startsWith('{')) continue; // npm's own banner
            const parsed = JSON.parse(line) as LogLine;
            logs.push(parsed);
            if (parsed.msg.startsWith('aikb-server listening on')) {
              clearTimeout(timer);
              resolve(parsed);
            }
          }
        });
        void exited.then(({ code }) => reject(new Error(`npm start exited with ${code} before listening\n${stderr}`)));
      });
      const { port } = (await listening) as LogLine & { port: number };
      // One server, run by npm through sh: its pid, to check it is gone at the end.
      const pids = servePids(root);
      expect(pids).toHaveLength(1);
      const serverPid = pids[0]!;

      const inFlight = login(port);
      await inFlight.sent;
      npm.kill(signal);

      // The login still gets its answer (a refusal at the deadline, not a reset connection).
      expect(await inFlight.answered).toMatchObject({ status: 401 });

      const bound = new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), 30_000).unref());
      expect(await Promise.race([exited, bound])).toEqual({ code: 0, signal: null });
      // The login was in flight when the server began to shut down: answered after it.
      const shutdown = logs.findIndex((line) => line.msg === 'shutting down');
      expect(logs[shutdown]).toMatchObject({ signal });
      expect(logs.findIndex((line) => line.endpoint === '/auth/login')).toBeGreaterThan(shutdown);
      expect(alive(serverPid)).toBe(false);
      expect(servePids(root)).toEqual([]);
    },
  );
});
