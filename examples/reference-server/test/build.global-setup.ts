import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The end-to-end tests run the real server bundle: build it once per run. */
export default function buildServer(): void {
  execFileSync('npx', ['tsup', '--config', '../../tsup.config.ts'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: 'inherit',
  });
}
