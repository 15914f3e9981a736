import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { version } from '../version';
import { adminCommands } from './admin-commands';
import { adminCredential, userCredential } from './credentials';
import { CliFailure, type Credential } from './http';
import type { Output } from './output';
import type { Context } from './shared';
import { userCommands } from './user-commands';

/** Where the CLI reads its settings and writes its output (the process's, or a test's). */
export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

interface GlobalOptions {
  url: URL;
  tokenFile?: string;
  timeout: number;
  json?: boolean;
}

function serverUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be a URL such as http://127.0.0.1:3000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http:// or https:// URL');
  return url;
}

function seconds(value: string): number {
  const n = /^\d{1,6}(\.\d{1,3})?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0 && n <= 3600)) throw new InvalidArgumentError('must be a number of seconds, more than 0 and at most 3600');
  return n;
}

const HELP_AFTER = `
Environment:
  AIKB_URL              the server (default http://127.0.0.1:3000)
  ADMIN_TOKEN           the admin token (else --token-file, else <AIKB_DATA_DIR or ./data>/admin-token)
  AIKB_USER_TOKEN       a user token for search and documents (else the file aikb login saves:
                        AIKB_USER_TOKEN_FILE, default ~/.aikb/user-token)

Exit codes: 0 done, 1 the request failed (4xx, 5xx, no server, timeout), 2 usage error.`;

/** Builds the `aikb` command tree over `io`. */
export function createProgram(io: CliIo): Command {
  const program = new Command('aikb');
  program
    .description("aikb's operator CLI: the runbook's procedures against a running aikb-server")
    .version(version)
    .addOption(new Option('--url <url>', 'the server').env('AIKB_URL').default(new URL('http://127.0.0.1:3000'), 'http://127.0.0.1:3000').argParser(serverUrl))
    .option('--token-file <path>', 'read the admin token from this file')
    .addOption(new Option('--timeout <seconds>', 'give up on a request after this long').default(10).argParser(seconds))
    .option('--json', "print the server's JSON as is (for scripts)")
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .showHelpAfterError('(aikb --help for usage)')
    .addHelpText('after', HELP_AFTER);

  const context = (cmd: Command): Context => {
    const options = cmd.optsWithGlobals<GlobalOptions>();
    // Read when a request needs them: a bad --token-file fails the command that uses it, not `aikb --help`.
    let admin: Credential | undefined;
    let user: Credential | undefined;
    const out: Output = {
      json: options.json === true,
      line: (text) => io.stdout.write(`${text}\n`),
      note: (text) => io.stderr.write(`${text}\n`),
    };
    return {
      target: {
        url: options.url,
        timeoutMs: Math.round(options.timeout * 1000),
        admin: () => (admin ??= adminCredential(options.tokenFile, io.env)),
        user: () => (user ??= userCredential(io.env)),
      },
      out,
    };
  };

  adminCommands(program, context);
  userCommands(program, context, io.env);
  return program;
}

/**
 * Runs `aikb` with `args` (the words after the command name) and resolves with its exit code:
 * 0 done, 1 a failed request (one line on stderr), 2 a usage error.
 */
export async function runAikb(args: readonly string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return 0;
  } catch (error) {
    // Commander has already printed its message (or the help it was asked for).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof CliFailure) {
      io.stderr.write(`aikb: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(`aikb: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
