import { InvalidArgumentError } from 'commander';
import { promptHidden, readAll } from '../terminal';
import { CliFailure, type Target } from './http';
import type { Output } from './output';

/** What every command runs with: the server it calls and where it writes. */
export interface Context {
  readonly target: Target;
  readonly out: Output;
}

/** A commander argument parser for a whole number from `min` to `max` (else a usage error, exit 2). */
export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max)) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A commander argument parser for a share: a number from 0 to 1, or a percentage (`5%`) (else a usage error, exit 2). */
export function share(value: string): number {
  const match = /^(\d{1,3}(?:\.\d{1,6})?)(%?)$/.exec(value.trim());
  const n = match ? Number(match[1]) / (match[2] ? 100 : 1) : NaN;
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a share from 0 to 1, or a percentage such as 5%');
  return n;
}

/**
 * A password: from stdin with `--password-stdin` (one trailing newline dropped), else prompted
 * for on the terminal without echo.
 * @throws {CliFailure} (exit 2) when stdin is not a terminal and `--password-stdin` was not given
 */
export async function readPassword(fromStdin: boolean | undefined, question: string): Promise<string> {
  if (fromStdin) {
    try {
      return (await readAll(process.stdin)).replace(/\r?\n$/, '');
    } catch (error) {
      throw new CliFailure(`--password-stdin: ${(error as Error).message}`, 2);
    }
  }
  if (!process.stdin.isTTY) throw new CliFailure('stdin is not a terminal: pass --password-stdin to read the password from it', 2);
  return promptHidden(question);
}
