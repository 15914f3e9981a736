/**
 * The README's `ts` snippets follow on from one another and together form one program. It must
 * type-check against the packages' source and, run, do what it shows and then end on its own:
 * a snippet that leaves a connection open keeps a user's process alive.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { servicesRequired, testRedisUrl } from './support/services';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The README with everything but its `ts` snippets blanked out, so that a line of the program is
 * the same line of the README (and errors point at the README).
 */
function readmeProgram(markdown: string): { source: string; snippets: number } {
  let inside = false;
  let snippets = 0;
  const lines = markdown.split('\n').map((line) => {
    if (!inside && /^```ts\s*$/.test(line)) {
      inside = true;
      snippets++;
      return '';
    }
    if (inside && /^```\s*$/.test(line)) {
      inside = false;
      return '';
    }
    return inside ? line : '';
  });
  return { source: `${lines.join('\n')}\nexport {};\n`, snippets };
}

const { source, snippets } = readmeProgram(readFileSync(path.join(repo, 'README.md'), 'utf8'));
// Inside the repository, so that packages resolve from its node_modules and @aikb/* from source.
mkdirSync(path.join(repo, '.tmp'), { recursive: true });
const dir = mkdtempSync(path.join(repo, '.tmp', 'readme-'));
const file = path.join(dir, 'readme.ts');
writeFileSync(file, source);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the README', () => {
  it('has ts snippets', () => {
    expect(snippets).toBeGreaterThanOrEqual(3);
  });

  it('type-checks as one program (errors name README.md lines)', () => {
    const config = ts.getParsedCommandLineOfConfigFile(path.join(repo, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const program = ts.createProgram([file], { ...config.options, noEmit: true });
    const errors = ts.getPreEmitDiagnostics(program).map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (!d.file || d.start === undefined) return message;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const where = d.file.fileName === file ? 'README.md' : path.relative(repo, d.file.fileName);
      return `${where}:${line + 1}: ${message}`;
    });
    expect(errors).toEqual([]);
  });

  if (testRedisUrl) {
    it('runs to its end and exits by itself (embedded PGlite, the test Redis)', () => {
      const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: testRedisUrl, TSX_TSCONFIG_PATH: path.join(repo, 'tsconfig.json') };
      delete env.DATABASE_URL;
      const run = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: repo, env, encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
      const output = `${run.stdout}${run.stderr}`;
      expect(run.signal, `still running after 30 s: something is left open\n${output}`).toBeNull();
      expect(run.status, output).toBe(0);
    }, 60_000);
  } else if (servicesRequired) {
    it('runs to its end (needs AIKB_TEST_REDIS_URL, AIKB_REQUIRE_SERVICES=1)', () => {
      throw new Error('AIKB_TEST_REDIS_URL is not set');
    });
  } else {
    it.skip('runs to its end and exits by itself (skipped: AIKB_TEST_REDIS_URL not set)', () => {});
  }
});
