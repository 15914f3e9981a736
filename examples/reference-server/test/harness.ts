import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach } from 'vitest';
import { until } from '@aikb/test-support';

const serverDir = fileURLToPath(new URL('..', import.meta.url));
const repo = path.join(serverDir, '../..');
const cli = path.join(serverDir, 'dist/cli.js');
const execFileAsync = promisify(execFile);
// The launcher npm links as `aikb`, which runs the built dist/aikb.js.
const aikbBin = path.join(serverDir, 'bin/aikb.js');

/** A log line of the server (pino JSON). */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** The reference server running as a real child process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly logs: LogLine[];
  readonly stderr: () => string;
  /** Sends SIGTERM (or `signal`) and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The result of a server process that exited on its own (bad configuration, ...). */
export interface ExitedProcess {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of a server under test: the test runner's, without any server setting, plus `env` (PORT=0 unless given). */
export function baseEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // The server under test reads only what the test gives it.
    if (
      /^(DATABASE_URL|REDIS_URL|PORT|HOST|AIKB_DATA_DIR|LOG_FILE|LOG_LEVEL|NODE_ENV|ADMIN_TOKEN|AUTH_JWT_SECRET|INIT_CWD|SUPABASE_POOL_SIZE|DATABASE_POOL_SIZE|TRUST_PROXY|HTTP_[A-Z_]+|DRIVE_DIR|UPLOAD_MAX_BYTES|SAGA_LEASE_MS|AIKB_TEST_HOOKS|AIKB_TEST_(?:BLOCK|FAIL)_UPLOAD_STEP|EMBEDDINGS_[A-Z_]+|CACHE_TTL_SECONDS|POOL_CAPTURE_STACKS)$/.test(
        key,
      )
    )
      continue;
    clean[key] = value;
  }
  return { ...clean, PORT: '0', LOG_LEVEL: 'info', ...env };
}

/** A fresh temporary data directory, removed by `cleanup`. */
export function tempDataDir(): { dir: string; cleanup: () => void } {
  const root = mkdtempSync(path.join(tmpdir(), 'aikb-e2e-'));
  return { dir: path.join(root, 'data'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * Starts `aikb-server serve` with the given environment (PORT=0: a free port) and resolves once
 * it logs that it listens.
 */
export async function startServerProcess(
  env: Record<string, string | undefined> = {},
  { timeoutMs = 20_000, args = ['serve'], checkout }: { timeoutMs?: number; args?: string[]; checkout?: string } = {},
): Promise<ServerProcess> {
  // `checkout`: the root of a repository copy whose server was built on its own (see isolatedCheckout).
  const bundle = checkout === undefined ? cli : path.join(checkout, 'examples/reference-server/dist/cli.js');
  const child = spawn(process.execPath, [bundle, ...args], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let stderr = '';
  let buffer = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          const parsed = JSON.parse(line) as LogLine;
          logs.push(parsed);
          if (typeof parsed.msg === 'string' && parsed.msg.startsWith('aikb-server listening on')) {
            clearTimeout(timer);
            resolve(parsed.port as number);
          }
        } catch {
          // not a log line
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening\n${stderr}`));
    });
  });
  const port = await listening;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    stderr: () => stderr,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs `command` to completion with `stdin` as its input (none: an empty one), collecting its output; killed with SIGKILL after `timeoutMs`. */
export async function runProcess(
  command: string,
  args: string[],
  { env, cwd, stdin = '', timeoutMs = 30_000 }: { env: NodeJS.ProcessEnv; cwd?: string; stdin?: string; timeoutMs?: number },
): Promise<ExitedProcess> {
  const child = spawn(command, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(stdin);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs `aikb-server <args>` to completion (for commands and start-up failures). */
export function runServerCommand(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<ExitedProcess> {
  return runProcess(process.execPath, [cli, ...args], { env: baseEnv(env), timeoutMs });
}

/**
 * Runs the built operator CLI `aikb <args>` (through the launcher npm links), killed after 20 s. Its
 * environment holds only `env` besides PATH: no ADMIN_TOKEN or AIKB_* leaks in from the runner.
 */
export function runAikb(args: string[], env: Record<string, string | undefined> = {}, stdin?: string): Promise<ExitedProcess> {
  return runProcess(process.execPath, [aikbBin, ...args], { env: { PATH: process.env.PATH, ...env }, stdin, timeoutMs: 20_000 });
}

/**
 * Runs a runbook `curl` command line as it is written, `http://localhost:3000` pointed at `server`,
 * with `-s` and, given `token`, the `Authorization: Bearer` header the admin endpoints require.
 * `text` is what curl printed (the headers too with `-i`), `body` that parsed as JSON (else undefined).
 */
export async function curl(server: Pick<ServerProcess, 'url'>, args: string[], { token }: { token?: string } = {}): Promise<Omit<Answer, 'headers'>> {
  const resolved = args.map((arg) => arg.replace('http://localhost:3000', server.url));
  const auth = token === undefined ? [] : ['-H', `Authorization: Bearer ${token}`];
  const { stdout } = await execFileAsync('curl', ['-s', '--max-time', '20', '-w', '\n%{http_code}', ...auth, ...resolved]);
  const newline = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, newline);
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: Number(stdout.slice(newline + 1)), text, body };
}

/**
 * A checkout of the repository whose reference server builds into its own `dist`: `npm run build`,
 * `npm run migrate` and `npm start` build the server first (tsup cleans `dist`), which must not
 * pull the bundle from under the other end-to-end tests. The two package.json files are copies
 * (their scripts are the ones under test); sources, the build config and node_modules are links to
 * the real ones. Removed by a function pushed on `cleanups`. Build only the server in it (in
 * `examples/reference-server`): the library packages are links, a root `npm run build` would
 * rebuild the real ones.
 */
export function isolatedCheckout(cleanups: Array<() => unknown>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'aikb-checkout-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  for (const name of ['tsup.config.ts', 'tsconfig.json', 'tsconfig.base.json', 'packages', 'node_modules'])
    symlinkSync(path.join(repo, name), path.join(root, name));
  copyFileSync(path.join(repo, 'package.json'), path.join(root, 'package.json'));
  const server = path.join(root, 'examples/reference-server');
  mkdirSync(server, { recursive: true });
  copyFileSync(path.join(serverDir, 'package.json'), path.join(server, 'package.json'));
  for (const name of ['src', 'node_modules']) symlinkSync(path.join(serverDir, name), path.join(server, name));
  return root;
}

/** What {@link send} answers: the status, headers, raw text and the parsed JSON body (undefined when not JSON). */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/**
 * One HTTP request to `server`: `json` is sent as a JSON body, `token` as a bearer token.
 * Resolves with whatever the server answers, 4xx and 5xx included.
 */
export async function send(
  server: Pick<ServerProcess, 'url'>,
  method: string,
  pathname: string,
  { json, token, headers = {} }: { json?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${server.url}${pathname}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** Polls `probe` (over HTTP: a failed request counts as false) until it returns true. */
export async function eventually(probe: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  await until(() => probe().catch(() => false), what, timeoutMs, 100);
}

/**
 * Declares, in the current file or suite, the clean-up every end-to-end test needs: servers pushed
 * on `running` are killed after each test; functions pushed on `cleanups` run after all tests, last
 * pushed first (temp data dirs, databases, throw-away services).
 */
export function useServerProcesses(): { running: ServerProcess[]; cleanups: Array<() => unknown> } {
  const running: ServerProcess[] = [];
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop('SIGKILL')));
  });
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return { running, cleanups };
}
