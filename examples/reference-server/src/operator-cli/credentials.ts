import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { CliFailure, type Credential } from './http';

/** Tokens are short lines; a larger file is not a token file. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

function readToken(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliFailure(`cannot read the ${what} file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 2);
  }
  const token = text.length > MAX_TOKEN_FILE_BYTES ? '' : text.trim();
  if (token === '' || /\s/.test(token)) throw new CliFailure(`the ${what} file ${file} does not hold one token`, 2);
  return token;
}

/**
 * The file the server keeps its generated admin token in, resolved as `aikb-server serve` resolves
 * it (relative to `INIT_CWD`, where `npm start` or `npx` was typed, else the working directory).
 */
export function defaultAdminTokenFile(env: NodeJS.ProcessEnv, cwd = env.INIT_CWD ?? process.cwd()): string {
  const dataDir = env.AIKB_DATA_DIR?.trim() ? env.AIKB_DATA_DIR : 'data';
  return path.resolve(cwd, dataDir, 'admin-token');
}

/**
 * The admin token: `--token-file`, else `ADMIN_TOKEN`, else `<AIKB_DATA_DIR or ./data>/admin-token`
 * when it exists (the token `aikb-server serve` generates in development).
 * @throws {CliFailure} (exit 2) when `--token-file` cannot be read
 */
export function adminCredential(tokenFile: string | undefined, env: NodeJS.ProcessEnv): Credential {
  if (tokenFile !== undefined) return { token: readToken(tokenFile, 'admin token'), source: `--token-file ${tokenFile}` };
  if (env.ADMIN_TOKEN?.trim()) return { token: env.ADMIN_TOKEN.trim(), source: 'ADMIN_TOKEN' };
  const file = defaultAdminTokenFile(env);
  if (existsSync(file)) return { token: readToken(file, 'admin token'), source: file };
  return { token: undefined, source: `ADMIN_TOKEN is not set and there is no ${file}` };
}

/** Where `aikb login` keeps the user token: `AIKB_USER_TOKEN_FILE`, else `~/.aikb/user-token`. */
export function userTokenFile(env: NodeJS.ProcessEnv): string {
  return env.AIKB_USER_TOKEN_FILE?.trim() ? path.resolve(env.AIKB_USER_TOKEN_FILE) : path.join(homedir(), '.aikb', 'user-token');
}

/**
 * The user token (search, documents): `AIKB_USER_TOKEN`, else the file `aikb login` saved.
 * Never a command-line argument: those show in `ps` and the shell history.
 */
export function userCredential(env: NodeJS.ProcessEnv): Credential {
  if (env.AIKB_USER_TOKEN?.trim()) return { token: env.AIKB_USER_TOKEN.trim(), source: 'AIKB_USER_TOKEN' };
  const file = userTokenFile(env);
  if (existsSync(file)) return { token: readToken(file, 'user token'), source: file };
  return { token: undefined, source: `AIKB_USER_TOKEN is not set and there is no ${file}` };
}

/** Saves a user token for the next commands, readable by its owner only. */
export function saveUserToken(file: string, token: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}
