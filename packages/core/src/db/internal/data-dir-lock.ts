import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { AikbError } from '../../errors';

/** Lock files this process holds: a pid match alone cannot tell ours from a stale one. */
const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes an exclusive, process-wide lock on a PGlite data directory: two processes writing the
 * same directory corrupt it. The lock file sits beside the directory and holds the owner's pid;
 * a lock left by a dead process is taken over.
 *
 * @returns a function that releases the lock
 * @throws {AikbError} `FAILED_PRECONDITION` when a live process holds the directory
 */
export function lockDataDir(dataDir: string): () => void {
  const lockPath = `${path.resolve(dataDir)}.lock`;
  if (heldHere.has(lockPath)) {
    throw new AikbError('FAILED_PRECONDITION', `data directory ${dataDir} is already open in this process`);
  }
  mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(lockPath);
      return () => {
        heldHere.delete(lockPath);
        rmSync(lockPath, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new AikbError('FAILED_PRECONDITION', `data directory ${dataDir} is in use by process ${owner}; stop it first (lock file ${lockPath})`);
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new AikbError('FAILED_PRECONDITION', `could not lock data directory ${dataDir} (lock file ${lockPath})`);
}
