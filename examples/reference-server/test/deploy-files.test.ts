/**
 * The repository's `docker-compose.yml` and `Dockerfile`. Images cannot be pulled or built where
 * the tests run, so they are checked without a Docker daemon: the compose file by
 * `docker compose config` (or docker-compose v1, `apt-get install docker-compose`), the Dockerfile
 * by `dockerfile-utils lint` (a devDependency) and by what it must say. Each part is skipped,
 * saying why, when its tool is missing; `.ci/run` installs docker-compose.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const linter = path.join(root, 'node_modules/.bin/dockerfile-utils');
const SECRETS = { ADMIN_TOKEN: 'compose-admin-token-0123456789', AUTH_JWT_SECRET: 'compose-jwt-secret-0123456789abcdef0123' };

/** `docker compose` (v2 plugin) or `docker-compose` (v1), whichever answers. */
function composeCommand(): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    if (spawnSync(command[0]!, [...command.slice(1), 'version'], { encoding: 'utf8' }).status === 0) return command;
  }
  return undefined;
}

const compose = composeCommand();

function config(env: Record<string, string>, ...args: string[]) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !['ADMIN_TOKEN', 'AUTH_JWT_SECRET', 'POSTGRES_PASSWORD', 'AIKB_PORT'].includes(key)),
  );
  return spawnSync(compose![0]!, [...compose!.slice(1), '--project-directory', root, '-f', path.join(root, 'docker-compose.yml'), 'config', ...args], {
    cwd: root,
    env: { ...clean, ...env },
    encoding: 'utf8',
  });
}

describe.skipIf(!compose)(`docker-compose.yml${compose ? '' : ' (skipped: neither `docker compose` nor `docker-compose` is installed)'}`, () => {
  it('is a valid compose file with PostgreSQL (pgvector), Redis and the server', () => {
    const services = config(SECRETS, '--services');
    expect(services.stderr).not.toMatch(/error/i);
    expect(services.status).toBe(0);
    expect(services.stdout.trim().split('\n').sort()).toEqual(['postgres', 'redis', 'server']);
    const resolved = config(SECRETS);
    expect(resolved.status).toBe(0);
    expect(resolved.stdout).toMatch(/image: pgvector\/pgvector:pg16/);
    expect(resolved.stdout).toMatch(/DATABASE_URL: postgres:\/\/aikb:aikb@postgres:5432\/aikb/);
    expect(resolved.stdout).toMatch(/REDIS_URL: redis:\/\/redis:6379/);
    expect(resolved.stdout).toContain(`ADMIN_TOKEN: ${SECRETS.ADMIN_TOKEN}`);
    // The server waits for healthy databases, and is reachable from the host's loopback only.
    expect(resolved.stdout).toMatch(/condition: service_healthy/);
    expect(resolved.stdout).toMatch(/127\.0\.0\.1/);
  });

  it('refuses to resolve without ADMIN_TOKEN or AUTH_JWT_SECRET, naming the variable', () => {
    const noToken = config({ AUTH_JWT_SECRET: SECRETS.AUTH_JWT_SECRET });
    expect(noToken.status).not.toBe(0);
    expect(noToken.stderr).toContain('set ADMIN_TOKEN');
    const noSecret = config({ ADMIN_TOKEN: SECRETS.ADMIN_TOKEN });
    expect(noSecret.status).not.toBe(0);
    expect(noSecret.stderr).toContain('set AUTH_JWT_SECRET');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => /^[A-Z]+\s/.test(line));

  it.skipIf(!existsSync(linter))(`passes dockerfile-utils lint${existsSync(linter) ? '' : ' (skipped: run npm ci for dockerfile-utils)'}`, () => {
    const result = spawnSync(linter, ['lint', path.join(root, 'Dockerfile')], { encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('builds in one stage and runs as a non-root user in another, with a health check on /api/health and SIGTERM', () => {
    expect(instructions.filter((line) => line.startsWith('FROM ')).length).toBeGreaterThanOrEqual(2);
    expect(instructions).toContainEqual(expect.stringMatching(/^RUN npm ci\b/));
    expect(instructions).toContainEqual(expect.stringMatching(/^RUN npm run build\b/));
    const afterLastFrom = instructions.slice(instructions.findLastIndex((line) => line.startsWith('FROM ')));
    const user = afterLastFrom.filter((line) => line.startsWith('USER ')).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|\s|$)/);
    expect(afterLastFrom).toContainEqual(expect.stringMatching(/^HEALTHCHECK .*\/api\/health/));
    expect(afterLastFrom).toContainEqual('STOPSIGNAL SIGTERM');
    // Exec form: node is the process that receives the signal, not a shell.
    expect(afterLastFrom.filter((line) => line.startsWith('CMD ')).at(-1)).toBe('CMD ["node", "examples/reference-server/dist/cli.js", "serve"]');
  });

  it('copies only what exists: every COPY source of the build stage is in the repository', () => {
    const sources = instructions
      .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
      .flatMap((line) =>
        line
          .replace(/^COPY\s+(--\S+\s+)*/, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(existsSync(path.join(root, source)), source).toBe(true);
  });
});
