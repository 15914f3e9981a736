import { Readable } from 'node:stream';
import { AikbError } from '../errors';
import { checkOptions } from '../options';
import type { DriveBody, DriveListOptions, DriveObject, DrivePage, DrivePutOptions, DrivePutResult, DriveStore, MemoryDriveStoreOptions } from './drive';
import { checkKey, checkListOptions, checkPrefix, checkPutOptions, compareKeys, createCounters, pump } from './internal/validate';

interface Stored {
  readonly chunks: readonly Uint8Array[];
  readonly bytes: number;
  readonly sha256: string;
  readonly contentType: string | undefined;
}

/**
 * A {@link DriveStore} in this process's memory, for tests and single-process tools, bounded by
 * `maxTotalBytes` (bytes being received count against it too). It passes the same contract suite
 * as {@link createFsDriveStore}; a restart loses everything.
 *
 * @throws {TypeError} naming the option when an option is invalid
 * @example
 * ```ts
 * const drive = createMemoryDriveStore({ maxTotalBytes: 1024 * 1024 });
 * ```
 */
export function createMemoryDriveStore(options: MemoryDriveStoreOptions = {}): DriveStore {
  const check = checkOptions('createMemoryDriveStore', options, true);
  check.number('maxTotalBytes', { min: 0, integer: true });
  check.number('maxObjectBytes', { min: 0, integer: true });
  const { maxTotalBytes = 64 * 1024 * 1024, maxObjectBytes = 16 * 1024 * 1024 } = options;

  const files = new Map<string, Stored>();
  const counters = createCounters('memory');
  /** Bytes of stored files plus bytes of puts still receiving. */
  let reserved = 0;

  return {
    async put(key: string, body: DriveBody, putOptions?: DrivePutOptions): Promise<DrivePutResult> {
      checkKey(key);
      const { maxBytes, contentType } = checkPutOptions(putOptions, maxObjectBytes);
      const chunks: Uint8Array[] = [];
      let held = 0;
      try {
        const { bytes, sha256 } = await pump(key, body, maxBytes, (chunk) => {
          if (reserved + chunk.byteLength > maxTotalBytes)
            throw new AikbError('RESOURCE_EXHAUSTED', `the memory drive is full (${maxTotalBytes} bytes); nothing was stored`, {
              details: { field: 'body', limitBytes: maxTotalBytes },
            });
          reserved += chunk.byteLength;
          held += chunk.byteLength;
          chunks.push(Uint8Array.prototype.slice.call(chunk));
        });
        const previous = files.get(key);
        if (previous) reserved -= previous.bytes;
        files.set(key, { chunks, bytes, sha256, contentType });
        held = 0;
        counters.counts.puts++;
        counters.counts.bytesWritten += bytes;
        return { key, bytes, sha256 };
      } catch (error) {
        throw counters.putFailed(error);
      } finally {
        reserved -= held;
      }
    },

    async get(key: string): Promise<DriveObject | undefined> {
      checkKey(key);
      const file = files.get(key);
      await Promise.resolve();
      if (!file) return undefined;
      return {
        body: Readable.from(
          file.chunks.map((chunk) => Buffer.from(chunk)),
          { objectMode: false },
        ),
        bytes: file.bytes,
        sha256: file.sha256,
        contentType: file.contentType,
      };
    },

    async delete(key: string): Promise<boolean> {
      checkKey(key);
      await Promise.resolve();
      const file = files.get(key);
      if (!file) return false;
      files.delete(key);
      reserved -= file.bytes;
      counters.counts.deletes++;
      return true;
    },

    async exists(key: string): Promise<boolean> {
      checkKey(key);
      await Promise.resolve();
      return files.has(key);
    },

    async list(prefix: string, listOptions?: DriveListOptions): Promise<DrivePage> {
      checkPrefix(prefix);
      const { limit, after } = checkListOptions(listOptions);
      await Promise.resolve();
      const keys = [...files.keys()].filter((key) => key.startsWith(prefix) && (after === undefined || key > after)).sort(compareKeys);
      const page = keys.slice(0, limit);
      return { items: page.map((key) => ({ key, bytes: files.get(key)?.bytes ?? 0 })), next: keys.length > limit ? page.at(-1) : undefined };
    },

    stats: () => counters.stats({ objects: files.size, storedBytes: [...files.values()].reduce((sum, file) => sum + file.bytes, 0) }),
  };
}
