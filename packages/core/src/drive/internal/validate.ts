import { createHash } from 'node:crypto';
import { AikbError, ValidationError, isAikbError } from '../../errors';
import type { DriveBody, DriveListOptions, DrivePutOptions, DriveStats } from '../drive';
import { MAX_DRIVE_KEY_LENGTH, MAX_DRIVE_KEY_SEGMENT_LENGTH, MAX_DRIVE_LIST_LIMIT } from '../drive';

/** One key segment: starts with a letter or digit, then letters, digits, `.`, `_`, `-`. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** What a list prefix may hold (its last segment may be partial, even empty). */
const PREFIX_CHARS = /^[A-Za-z0-9._/-]*$/;
/** A media type as `put` accepts it: printable ASCII, no spaces at the ends. */
const CONTENT_TYPE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const MAX_CONTENT_TYPE_LENGTH = 255;

/** How a value is shown in an error message: short, and with control characters escaped. */
const shown = (value: unknown): string => (typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value);

/**
 * The key's segments.
 * @throws {ValidationError} naming `field` (`key` by default) when it is not a valid drive key
 */
export function checkKey(key: unknown, field = 'key'): string[] {
  if (typeof key !== 'string') throw new ValidationError(field, `${field} must be a string (got ${shown(key)})`);
  if (key.length === 0 || key.length > MAX_DRIVE_KEY_LENGTH)
    throw new ValidationError(field, `${field} must be 1 to ${MAX_DRIVE_KEY_LENGTH} characters (got ${key.length})`);
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment.length > MAX_DRIVE_KEY_SEGMENT_LENGTH)
      throw new ValidationError(field, `${field} segments must be at most ${MAX_DRIVE_KEY_SEGMENT_LENGTH} characters (got ${segment.length})`);
    if (!SEGMENT.test(segment))
      throw new ValidationError(
        field,
        `${field} must be /-separated segments of letters, digits, ".", "_" and "-", each starting with a letter or digit (got ${shown(key)})`,
      );
  }
  return segments;
}

/**
 * The prefix split into its complete segments and the partial last one (`a/b/c` → `[a, b]`, `c`).
 * @throws {ValidationError} naming `prefix` when no key could start with it
 */
export function checkPrefix(prefix: unknown): { dirs: string[]; rest: string } {
  if (typeof prefix !== 'string') throw new ValidationError('prefix', `prefix must be a string (got ${shown(prefix)})`);
  if (prefix.length > MAX_DRIVE_KEY_LENGTH || !PREFIX_CHARS.test(prefix))
    throw new ValidationError('prefix', `prefix must be at most ${MAX_DRIVE_KEY_LENGTH} key characters (got ${shown(prefix)})`);
  const parts = prefix.split('/');
  const rest = parts.pop() ?? '';
  if (parts.length > 0) checkKey(parts.join('/'), 'prefix');
  if (rest !== '' && !SEGMENT.test(rest)) throw new ValidationError('prefix', `prefix must be the start of a key (got ${shown(prefix)})`);
  return { dirs: parts, rest };
}

/** The resolved list options. */
export function checkListOptions(options: DriveListOptions | undefined): { limit: number; after: string | undefined } {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new ValidationError('options', 'list options must be an object');
  const { limit = 100, after } = options ?? {};
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_DRIVE_LIST_LIMIT)
    throw new ValidationError('limit', `limit must be a whole number from 1 to ${MAX_DRIVE_LIST_LIMIT} (got ${shown(limit)})`);
  if (after !== undefined) checkKey(after, 'after');
  return { limit, after };
}

/** The resolved put options: the effective byte limit and the content type. */
export function checkPutOptions(options: DrivePutOptions | undefined, maxObjectBytes: number): { maxBytes: number; contentType: string | undefined } {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new ValidationError('options', 'put options must be an object');
  const { maxBytes, contentType } = options ?? {};
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0))
    throw new ValidationError('maxBytes', `maxBytes must be a whole number ≥ 0 (got ${shown(maxBytes)})`);
  if (contentType !== undefined && (typeof contentType !== 'string' || contentType.length > MAX_CONTENT_TYPE_LENGTH || !CONTENT_TYPE.test(contentType)))
    throw new ValidationError('contentType', `contentType must be 1 to ${MAX_CONTENT_TYPE_LENGTH} printable ASCII characters (got ${shown(contentType)})`);
  return { maxBytes: Math.min(maxBytes ?? maxObjectBytes, maxObjectBytes), contentType };
}

/**
 * The body as chunks.
 * @throws {ValidationError} naming `body` when it is neither bytes nor an async iterable
 */
export function bodyChunks(body: DriveBody): AsyncIterable<Uint8Array> {
  if (body instanceof Uint8Array) return single(body);
  if (body !== null && typeof body === 'object' && typeof (body as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function')
    return checkedChunks(body);
  throw new ValidationError('body', 'body must be a Uint8Array, a Readable or an async iterable of Uint8Array chunks');
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function* checkedChunks(body: AsyncIterable<unknown>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    if (!(chunk instanceof Uint8Array)) throw new ValidationError('body', 'body chunks must be Uint8Array (a Readable in object or string mode is not a file)');
    yield chunk;
  }
}

/** The `PAYLOAD_TOO_LARGE` error of a body over `limitBytes`. */
export const tooLarge = (key: string, limitBytes: number): AikbError =>
  new AikbError('PAYLOAD_TOO_LARGE', `the body for ${key} is larger than ${limitBytes} bytes; nothing was stored`, { details: { field: 'body', limitBytes } });

/**
 * Reads `body` chunk by chunk into `write`, hashing and counting; stops reading as soon as it goes
 * over `maxBytes` (a `for await` exit destroys a Node stream and returns a generator).
 * @throws {AikbError} `PAYLOAD_TOO_LARGE` past `maxBytes`; what `write` or the body throws
 */
export async function pump(
  key: string,
  body: DriveBody,
  maxBytes: number,
  write: (chunk: Uint8Array) => Promise<void> | void,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of bodyChunks(body)) {
    bytes += chunk.byteLength;
    if (bytes > maxBytes) throw tooLarge(key, maxBytes);
    hash.update(chunk);
    await write(chunk);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The counters behind {@link DriveStats}, shared by both stores. */
export function createCounters(kind: DriveStats['kind']) {
  const counts = { puts: 0, bytesWritten: 0, refusedTooLarge: 0, failedPuts: 0, deletes: 0, unavailable: 0 };
  return {
    counts,
    /** Counts a failed put by its error, and returns the error. */
    putFailed(error: unknown): unknown {
      if (isAikbError(error, 'PAYLOAD_TOO_LARGE') || isAikbError(error, 'RESOURCE_EXHAUSTED')) counts.refusedTooLarge++;
      else counts.failedPuts++;
      return error;
    },
    stats: (extra: Pick<DriveStats, 'objects' | 'storedBytes'> = {}): DriveStats => ({ kind, ...counts, ...extra }),
  };
}

/** Ascending UTF-16 code-unit order (keys are ASCII, so byte order too): the order of {@link DriveStore.list}. */
export const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Whether `name` is a valid key segment. */
export const isSegment = (name: string): boolean => name.length <= MAX_DRIVE_KEY_SEGMENT_LENGTH && SEGMENT.test(name);
