import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import { AikbError, UnavailableError } from '../errors';
import type { Logger } from '../logger';
import { noopLogger } from '../logger';
import { checkOptions } from '../options';
import type {
  DriveBody,
  DriveEntry,
  DriveListOptions,
  DriveObject,
  DrivePage,
  DrivePutOptions,
  DrivePutResult,
  DriveStore,
  FsDriveStoreOptions,
} from './drive';
import { bodyChunks, checkKey, checkListOptions, checkPrefix, checkPutOptions, compareKeys, createCounters, isSegment, pump } from './internal/validate';

/**
 * Bytes before the body in every stored file: a magic line and the file's metadata as JSON, padded
 * with spaces. In the same file as the body, so one rename replaces both (a sidecar would need two,
 * and two concurrent puts could pair one's body with the other's metadata).
 */
const HEADER_BYTES = 1024;
const MAGIC = 'aikb-drive/1\n';
/** Appended to a key's last segment to name its file: never in a directory name, so `a` and `a/b` can both exist. */
const FILE_SUFFIX = '~';
/** The name of a put's temporary file: the target's name, a random UUID, `.tmp`. */
const TEMP_FILE = /~[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;
/** How many swept directories a store remembers before it starts over (bounds its memory). */
const MAX_SWEPT_DIRECTORIES = 10_000;
/** Error codes of a missing path. */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

interface Header {
  bytes: number;
  sha256: string;
  contentType?: string;
}

const errorCode = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

function encodeHeader(header: Header): Buffer {
  const text = `${MAGIC}${JSON.stringify(header)}`;
  const buffer = Buffer.alloc(HEADER_BYTES, ' ');
  buffer.write(text, 'utf8');
  buffer.write('\n', HEADER_BYTES - 1, 'utf8');
  return buffer;
}

function decodeHeader(buffer: Buffer): Header | undefined {
  const text = buffer.toString('utf8');
  if (!text.startsWith(MAGIC)) return undefined;
  try {
    const parsed = JSON.parse(text.slice(MAGIC.length).trimEnd()) as Partial<Header>;
    if (!Number.isSafeInteger(parsed.bytes) || typeof parsed.sha256 !== 'string') return undefined;
    if (parsed.contentType !== undefined && typeof parsed.contentType !== 'string') return undefined;
    return parsed as Header;
  } catch {
    return undefined;
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength;) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset, position + offset);
    offset += bytesWritten;
  }
}

/**
 * A {@link DriveStore} in a directory (the data dir), one file per key (`uploads/u1/a.pdf` →
 * `<root>/uploads/u1/a.pdf~`, the body after a 1 KiB metadata header).
 *
 * A put streams into a temporary file beside the target (`a.pdf~<uuid>.tmp`), fsyncs it, renames
 * it over the target and fsyncs the directory, so a reader or a crash sees the old file or the new
 * one, whole; a put that fails (too large, a failing body, a disk error) removes its temporary
 * file. Only a crash of the process can leave one: `get` and `list` never see it, and the store's
 * first put into its directory removes it once it is `staleTempMs` old. Disk
 * errors (ENOSPC, EACCES, EROFS, EIO, ...) are logged and thrown as `UnavailableError` with the
 * cause. Directories emptied by deletes are left in place. On a case-insensitive file system
 * (macOS, Windows defaults) keys that differ only by case share one file: use lowercase keys there.
 * Another process writing into `root` is not guarded against; files that are not the store's own
 * are ignored by `list`.
 *
 * @throws {TypeError} naming the option when an option is invalid
 * @example
 * ```ts
 * const drive = createFsDriveStore({ root: path.join(dataDir, 'drive'), logger });
 * await drive.put('uploads/u1/report.pdf', req, { maxBytes: 10 * 1024 * 1024, contentType: 'application/pdf' });
 * ```
 */
export function createFsDriveStore(options: FsDriveStoreOptions): DriveStore {
  const check = checkOptions('createFsDriveStore', options);
  check.string('root', true);
  check.number('maxObjectBytes', { min: 0, integer: true });
  check.number('staleTempMs', { min: 0, integer: true });
  check.clock();
  check.logger();
  const root = path.resolve(options.root);
  const { maxObjectBytes = 100 * 1024 * 1024, staleTempMs = 3_600_000 } = options;
  const clock: Clock = options.clock ?? systemClock;
  /** Directories this store has swept of stale temporary files. */
  const swept = new Set<string>();
  const logger: Logger = options.logger ?? noopLogger;
  const counters = createCounters('fs');

  const fileOf = (segments: readonly string[]) => path.join(root, ...segments.slice(0, -1), `${segments.at(-1)}${FILE_SUFFIX}`);

  /** The `UnavailableError` of a failed disk operation, logged and counted, with the error as cause. */
  function unavailable(op: string, key: string, error: unknown): UnavailableError {
    const code = errorCode(error) ?? 'UNKNOWN';
    counters.counts.unavailable++;
    logger.error({ err: error, key, op, code }, 'drive: disk operation failed');
    return new UnavailableError(`drive: could not ${op} ${key} (${code})`, { cause: error, details: { code } });
  }

  /** Runs one disk operation; its error becomes {@link unavailable}'s. */
  async function disk<T>(op: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw unavailable(op, key, error);
    }
  }

  /** Opens `segments`' file, or `undefined` when there is none. */
  async function openFile(key: string, segments: readonly string[]): Promise<FileHandle | undefined> {
    try {
      return await open(fileOf(segments), 'r');
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return undefined;
      throw unavailable('open', key, error);
    }
  }

  /** fsync of a directory, so a rename survives a power cut; best effort (some file systems refuse it). */
  async function syncDirectory(dir: string, key: string): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(dir, 'r');
      await handle.sync();
    } catch (error) {
      logger.warn({ err: error, key, code: errorCode(error) }, 'drive: could not fsync the directory after a rename');
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /**
   * Removes the temporary files in `dir` that no put has written to for `staleTempMs` (a crashed
   * process's), once per directory per store; best effort: failures are logged, never thrown.
   */
  async function sweepOnce(dir: string): Promise<void> {
    if (swept.has(dir)) return;
    if (swept.size >= MAX_SWEPT_DIRECTORIES) swept.clear();
    swept.add(dir);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      logger.warn({ err: error, dir: path.relative(root, dir) }, 'drive: could not sweep stale temporary files');
      return;
    }
    for (const name of names.filter((n) => TEMP_FILE.test(n))) {
      const file = path.join(dir, name);
      try {
        if (clock.now() - (await stat(file)).mtimeMs < staleTempMs) continue;
        await unlink(file);
        logger.info({ file: path.relative(root, file) }, 'drive: removed a stale temporary file (left by a crashed put)');
      } catch (error) {
        // gone meanwhile: its put finished or failed
        if (!MISSING.has(errorCode(error) ?? ''))
          logger.warn({ err: error, file: path.relative(root, file) }, 'drive: could not remove a stale temporary file');
      }
    }
  }

  async function put(key: string, body: DriveBody, putOptions?: DrivePutOptions): Promise<DrivePutResult> {
    const segments = checkKey(key);
    const { maxBytes, contentType } = checkPutOptions(putOptions, maxObjectBytes);
    bodyChunks(body); // a bad body fails before any I/O
    const dir = path.join(root, ...segments.slice(0, -1));
    const temp = path.join(dir, `${segments.at(-1)}${FILE_SUFFIX}${randomUUID()}.tmp`);
    let handle: FileHandle | undefined;
    let created = false;
    try {
      await disk('create the directory of', key, () => mkdir(dir, { recursive: true }));
      await sweepOnce(dir);
      const file = await disk('create a temporary file for', key, () => open(temp, 'wx', 0o640));
      handle = file;
      created = true;
      let position = HEADER_BYTES;
      const { bytes, sha256 } = await pump(key, body, maxBytes, async (chunk) => {
        await disk('write', key, () => writeAll(file, chunk, position));
        position += chunk.byteLength;
      });
      const header: Header = contentType === undefined ? { bytes, sha256 } : { bytes, sha256, contentType };
      await disk('write', key, () => writeAll(file, encodeHeader(header), 0));
      await disk('fsync', key, () => file.sync());
      handle = undefined;
      await disk('close', key, () => file.close());
      await disk('rename into place', key, () => rename(temp, fileOf(segments)));
      created = false;
      await syncDirectory(dir, key);
      counters.counts.puts++;
      counters.counts.bytesWritten += bytes;
      return { key, bytes, sha256 };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if (created)
        await unlink(temp).catch((unlinkError: unknown) => {
          if (errorCode(unlinkError) !== 'ENOENT') logger.error({ err: unlinkError, key, temp }, 'drive: could not remove the temporary file of a failed put');
        });
      throw counters.putFailed(error);
    }
  }

  async function get(key: string): Promise<DriveObject | undefined> {
    const segments = checkKey(key);
    const handle = await openFile(key, segments);
    if (!handle) return undefined;
    try {
      const { size } = await disk('stat', key, () => handle.stat());
      const { buffer, bytesRead } = await disk('read', key, () => handle.read(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0));
      const header = bytesRead === HEADER_BYTES ? decodeHeader(buffer) : undefined;
      if (!header || header.bytes !== size - HEADER_BYTES) {
        logger.error({ key, size }, 'drive: a stored file is damaged (its header does not match it)');
        throw new AikbError('INTERNAL', `drive: the file of ${key} is damaged`, { details: { key } });
      }
      const body = handle.createReadStream({ start: HEADER_BYTES, autoClose: true });
      return { body, bytes: header.bytes, sha256: header.sha256, contentType: header.contentType };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  async function remove(key: string): Promise<boolean> {
    const segments = checkKey(key);
    try {
      await unlink(fileOf(segments));
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return false;
      throw unavailable('delete', key, error);
    }
    counters.counts.deletes++;
    return true;
  }

  async function exists(key: string): Promise<boolean> {
    const segments = checkKey(key);
    try {
      return (await stat(fileOf(segments))).isFile();
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return false;
      throw unavailable('stat', key, error);
    }
  }

  /** A directory's entries that are keys (files) or may hold keys (directories), in list order. */
  async function entriesOf(dir: string, keyPrefix: string): Promise<Array<{ sortKey: string; dir: boolean }>> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return [];
      throw unavailable('list', keyPrefix || '/', error);
    }
    const result: Array<{ sortKey: string; dir: boolean }> = [];
    for (const entry of entries) {
      if (entry.isDirectory() && isSegment(entry.name)) result.push({ sortKey: `${keyPrefix}${entry.name}/`, dir: true });
      else if (entry.isFile() && entry.name.endsWith(FILE_SUFFIX) && isSegment(entry.name.slice(0, -1)))
        result.push({ sortKey: `${keyPrefix}${entry.name.slice(0, -1)}`, dir: false });
    }
    return result.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  }

  async function list(prefix: string, listOptions?: DriveListOptions): Promise<DrivePage> {
    const { dirs } = checkPrefix(prefix);
    const { limit, after } = checkListOptions(listOptions);
    const keys: string[] = [];
    // Depth first, each directory in order with a directory sorted as `name/`: that visits keys in
    // ascending order (every key under `a/` sorts after `a-b` and `a.b` and before `a0`), so the
    // walk stops after limit + 1 keys and skips whole directories before `after`.
    async function walk(dir: string, keyPrefix: string): Promise<void> {
      for (const entry of await entriesOf(dir, keyPrefix)) {
        if (keys.length > limit) return;
        if (!entry.sortKey.startsWith(prefix) && !prefix.startsWith(entry.sortKey)) continue;
        if (entry.dir) {
          if (after !== undefined && entry.sortKey < after && !after.startsWith(entry.sortKey)) continue;
          await walk(path.join(dir, entry.sortKey.slice(keyPrefix.length, -1)), entry.sortKey);
        } else if (entry.sortKey.startsWith(prefix) && (after === undefined || entry.sortKey > after)) keys.push(entry.sortKey);
      }
    }
    await walk(path.join(root, ...dirs), dirs.length > 0 ? `${dirs.join('/')}/` : '');
    const page = keys.slice(0, limit);
    const items: DriveEntry[] = [];
    for (const key of page) {
      try {
        items.push({ key, bytes: (await stat(fileOf(key.split('/')))).size - HEADER_BYTES });
      } catch (error) {
        if (MISSING.has(errorCode(error) ?? '')) continue; // deleted meanwhile: not listed
        throw unavailable('stat', key, error);
      }
    }
    return { items, next: keys.length > limit ? page.at(-1) : undefined };
  }

  return { put, get, delete: remove, exists, list, stats: () => counters.stats() };
}
