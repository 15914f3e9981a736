import type { Readable } from 'node:stream';
import type { Clock } from '../clock';
import type { Logger } from '../logger';

/**
 * A file's bytes as {@link DriveStore.put} takes them: a Node stream, any async iterable of byte
 * chunks (a web `ReadableStream` is one), or the bytes themselves. Streams are read chunk by chunk
 * and never held whole in memory (the memory store keeps what it stores, of course).
 */
export type DriveBody = Readable | AsyncIterable<Uint8Array> | Uint8Array;

/** The longest key, in characters (all keys are ASCII). */
export const MAX_DRIVE_KEY_LENGTH = 1024;
/** The longest `/`-separated segment of a key, in characters. */
export const MAX_DRIVE_KEY_SEGMENT_LENGTH = 200;
/** The most items one {@link DriveStore.list} page holds. */
export const MAX_DRIVE_LIST_LIMIT = 1000;

/** {@link DriveStore.put} options. */
export interface DrivePutOptions {
  /**
   * The most bytes this body may have; past it the put fails with `PAYLOAD_TOO_LARGE` as soon as
   * the stream goes over (it is not read further) and stores nothing. Capped by the store's own
   * `maxObjectBytes`.
   * @default the store's `maxObjectBytes`
   */
  maxBytes?: number;
  /**
   * The media type returned by {@link DriveStore.get} (`application/pdf`); at most 255 printable
   * ASCII characters. Stored as given, never sniffed.
   * @default none (`get` returns `contentType: undefined`)
   */
  contentType?: string;
}

/** What {@link DriveStore.put} stored. */
export interface DrivePutResult {
  readonly key: string;
  /** The body's length in bytes. */
  readonly bytes: number;
  /** The body's SHA-256, lowercase hex. */
  readonly sha256: string;
}

/** A stored file, as {@link DriveStore.get} opens it. */
export interface DriveObject {
  /**
   * The bytes. Read it to the end or `destroy()` it: the file store holds a file descriptor until
   * then. It is the version that existed when `get` was called, even if a put replaces it meanwhile.
   */
  readonly body: Readable;
  readonly bytes: number;
  /** The body's SHA-256, lowercase hex, as computed when it was put. */
  readonly sha256: string;
  readonly contentType: string | undefined;
}

/** {@link DriveStore.list} options. */
export interface DriveListOptions {
  /**
   * The most keys in the page, from 1 to {@link MAX_DRIVE_LIST_LIMIT}.
   * @default 100
   */
  limit?: number;
  /** Start after this key (the previous page's `next`); it need not exist. */
  after?: string;
}

/** One stored file in a {@link DrivePage}. */
export interface DriveEntry {
  readonly key: string;
  readonly bytes: number;
}

/** One page of {@link DriveStore.list}: keys in ascending code-unit order. */
export interface DrivePage {
  readonly items: readonly DriveEntry[];
  /** Pass as `after` for the next page; `undefined` when this page is the last. */
  readonly next: string | undefined;
}

/** {@link DriveStore.stats}: counts since the store was created, plain JSON. */
export interface DriveStats {
  /** `fs` or `memory`. */
  readonly kind: 'fs' | 'memory';
  /** Puts that stored a file. */
  readonly puts: number;
  /** Bytes those puts stored. */
  readonly bytesWritten: number;
  /** Puts refused because the body was over its `maxBytes` (or the memory store's capacity). */
  readonly refusedTooLarge: number;
  /** Puts that failed otherwise (a failing body stream, a disk error); none left anything behind. */
  readonly failedPuts: number;
  /** Deletes that removed a file. */
  readonly deletes: number;
  /** Operations that failed with `UnavailableError` (a disk error). */
  readonly unavailable: number;
  /** Files held now (memory store only). */
  readonly objects?: number;
  /** Bytes held now (memory store only). */
  readonly storedBytes?: number;
}

/**
 * Where uploaded documents' bytes live: put a stream under a key, get it back as a stream,
 * delete, check, list by prefix. Small on purpose: it is what a Google Drive or S3 adapter
 * implements ({@link createFsDriveStore} for a data directory, {@link createMemoryDriveStore} for
 * tests), and `drive-store.contract.ts` is the suite such an adapter must pass.
 *
 * Keys are `/`-separated paths of ASCII segments: each segment starts with a letter or digit and
 * holds only letters, digits, `.`, `_` and `-` (at most {@link MAX_DRIVE_KEY_SEGMENT_LENGTH}), the
 * whole key at most {@link MAX_DRIVE_KEY_LENGTH}. Anything else (`..`, an absolute path, a
 * backslash, NUL or another control character, an empty segment) is refused with a
 * `ValidationError` naming `key`, before any I/O. `a` and `a/b` may both exist.
 *
 * Failure policy: bad input → `ValidationError` and nothing changes; a body over its size limit →
 * `AikbError` `PAYLOAD_TOO_LARGE` and nothing is stored; a storage outage (disk full, read-only,
 * permission denied) → `UnavailableError` with the cause, and the store keeps serving once the
 * cause is gone. A missing key is `undefined` / `false`, never a throw.
 */
export interface DriveStore {
  /**
   * Stores `body` under `key`, replacing what was there only once the whole body is stored: a
   * reader sees the old file or the new one, never part of one. Concurrent puts of one key: the
   * last to finish wins, whole.
   *
   * @throws {ValidationError} on a bad key (`key`), body (`body`) or option
   * @throws {AikbError} `PAYLOAD_TOO_LARGE` past `maxBytes` (`details.limitBytes`); nothing is stored
   * @throws {UnavailableError} when the storage fails; nothing is stored
   * @throws whatever the body stream throws, unchanged; nothing is stored
   * @example
   * ```ts
   * const { bytes, sha256 } = await drive.put('uploads/u1/report.pdf', req, { maxBytes: 10 * 1024 * 1024, contentType: 'application/pdf' });
   * ```
   */
  put(key: string, body: DriveBody, options?: DrivePutOptions): Promise<DrivePutResult>;
  /**
   * Opens the file under `key`, or `undefined` when there is none.
   * @throws {ValidationError} on a bad key; {@link UnavailableError} when the storage fails
   */
  get(key: string): Promise<DriveObject | undefined>;
  /**
   * Removes the file under `key`: `true` when there was one, `false` when there was none (not an error).
   * @throws {ValidationError} on a bad key; {@link UnavailableError} when the storage fails
   */
  delete(key: string): Promise<boolean>;
  /**
   * Whether a file is stored under `key`.
   * @throws {ValidationError} on a bad key; {@link UnavailableError} when the storage fails
   */
  exists(key: string): Promise<boolean>;
  /**
   * The keys starting with `prefix` (`''` for all), ascending, one page at a time: pass the page's
   * `next` as `after` for the next one. `prefix` need not end at a `/` (`uploads/u1/rep`).
   * @throws {ValidationError} on a bad prefix (`prefix`), `limit` or `after`
   * @throws {UnavailableError} when the storage fails
   */
  list(prefix: string, options?: DriveListOptions): Promise<DrivePage>;
  /** Counts since creation, synchronously (see {@link DriveStats}). */
  stats(): DriveStats;
}

/** {@link createFsDriveStore} options. */
export interface FsDriveStoreOptions {
  /** The directory files live under (created, with its parents, on the first put). Required. */
  root: string;
  /**
   * The largest file a put may store; a put's own `maxBytes` can only lower it.
   * @default 104857600 (100 MiB)
   */
  maxObjectBytes?: number;
  /**
   * A temporary file not written to for this long was left by a crashed process: the first put
   * into its directory (per store) removes it.
   * @default 3600000 (1 hour)
   */
  staleTempMs?: number;
  /**
   * Read to tell how old a temporary file is (compared with its mtime, so epoch milliseconds).
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Where disk errors are logged (with the key and the error code, never the contents).
   * @default noopLogger
   */
  logger?: Logger;
}

/** {@link createMemoryDriveStore} options. */
export interface MemoryDriveStoreOptions {
  /**
   * The most bytes all stored files may hold together; a put that would go over fails with
   * `AikbError` `RESOURCE_EXHAUSTED` and stores nothing.
   * @default 67108864 (64 MiB)
   */
  maxTotalBytes?: number;
  /**
   * The largest file a put may store; a put's own `maxBytes` can only lower it.
   * @default 16777216 (16 MiB)
   */
  maxObjectBytes?: number;
}
