import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { beforeEach, describe, expect, it } from 'vitest';
import { isAikbError, ValidationError } from '../errors';
import type { DriveStore } from './drive';
import { MAX_DRIVE_KEY_LENGTH } from './drive';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A body that yields `chunk` forever, counting how many chunks were pulled and whether it was closed. */
export function endlessBody(chunk = new Uint8Array(1024).fill(7)) {
  const state = { pulled: 0, closed: false };
  async function* generate(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        state.pulled++;
        yield chunk;
      }
    } finally {
      state.closed = true;
    }
  }
  return { body: generate(), state };
}

/** A body that yields `chunks` and then fails with `error`. */
export async function* failingBody(chunks: readonly Uint8Array[], error: Error): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
  await Promise.resolve();
  throw error;
}

/** Hostile or malformed keys every store must refuse before any I/O. */
export const HOSTILE_KEYS: readonly unknown[] = [
  '',
  '..',
  '../etc/passwd',
  'a/../../b',
  'a/./b',
  '/etc/passwd',
  'a//b',
  'a/b/',
  'a\\b',
  'C:\\windows',
  'a\u0000b',
  'a\nb',
  'a\u001fb',
  'a\u007fb',
  'caf\u00e9',
  '.hidden',
  'a/.git/config',
  'a b',
  '~a',
  'a~',
  'x'.repeat(MAX_DRIVE_KEY_LENGTH + 1),
  `${'x'.repeat(201)}`,
  123,
  null,
  undefined,
  { toString: () => 'a' },
];

const isKeyError = (field: string) => (e: unknown) => e instanceof ValidationError && e.field === field;

/**
 * The behaviour every {@link DriveStore} implementation must have, a Google Drive or S3 adapter
 * included. Call inside a `describe`; `make` is called before each test and may return a store
 * that already holds files: each test works under its own random prefix.
 */
export function describeDriveStoreContract(make: () => Promise<DriveStore> | DriveStore): void {
  let drive: DriveStore;
  let ns: string;
  beforeEach(async () => {
    drive = await make();
    ns = `t-${randomUUID()}`;
  });

  const read = async (key: string) => {
    const file = await drive.get(key);
    return file && { ...file, content: await buffer(file.body) };
  };

  describe('put and get', () => {
    it('round-trips bytes from a Uint8Array, a Readable and an async iterable, with size, sha256 and content type', async () => {
      const bytes = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
      const bodies = {
        bytes: () => bytes,
        readable: () => Readable.from([Buffer.from(bytes.subarray(0, 100_000)), Buffer.from(bytes.subarray(100_000))]),
        iterable: async function* () {
          for (let i = 0; i < bytes.length; i += 65_536) yield bytes.subarray(i, i + 65_536);
        },
      };
      for (const [name, body] of Object.entries(bodies)) {
        const key = `${ns}/${name}.bin`;
        await expect(drive.put(key, body(), { contentType: 'application/octet-stream' })).resolves.toEqual({ key, bytes: bytes.length, sha256: sha256(bytes) });
        const file = await read(key);
        expect(file?.bytes).toBe(bytes.length);
        expect(file?.sha256).toBe(sha256(bytes));
        expect(file?.contentType).toBe('application/octet-stream');
        expect(Buffer.compare(file!.content, Buffer.from(bytes))).toBe(0);
      }
    });

    it('stores an empty file, and a file without a content type', async () => {
      await expect(drive.put(`${ns}/empty`, new Uint8Array(0))).resolves.toEqual({ key: `${ns}/empty`, bytes: 0, sha256: sha256(new Uint8Array(0)) });
      const file = await read(`${ns}/empty`);
      expect(file?.content.length).toBe(0);
      expect(file?.contentType).toBeUndefined();
    });

    it('replaces a file whole, with its new content type', async () => {
      const key = `${ns}/doc.txt`;
      await drive.put(key, Buffer.from('first version, longer than the second'), { contentType: 'text/plain' });
      await drive.put(key, Buffer.from('second'), { contentType: 'text/markdown' });
      const file = await read(key);
      expect(file?.content.toString()).toBe('second');
      expect(file?.contentType).toBe('text/markdown');
      expect(file?.bytes).toBe(6);
    });

    it('keeps a and a/b apart', async () => {
      await drive.put(`${ns}/a`, Buffer.from('file a'));
      await drive.put(`${ns}/a/b`, Buffer.from('file a/b'));
      expect((await read(`${ns}/a`))?.content.toString()).toBe('file a');
      expect((await read(`${ns}/a/b`))?.content.toString()).toBe('file a/b');
    });

    it('answers undefined for a missing key', async () => {
      await expect(drive.get(`${ns}/missing`)).resolves.toBeUndefined();
      await expect(drive.get(`${ns}/missing/deeper`)).resolves.toBeUndefined();
    });

    it('concurrent puts of one key leave one of them, whole', async () => {
      const key = `${ns}/race`;
      const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(50_000 + i * 1000, 65 + i));
      const chunked = (bytes: Buffer) =>
        (async function* () {
          for (let i = 0; i < bytes.length; i += 4096) {
            await Promise.resolve();
            yield bytes.subarray(i, i + 4096);
          }
        })();
      await Promise.all(versions.map((v) => drive.put(key, chunked(v))));
      const file = await read(key);
      expect(versions.some((v) => v.equals(file!.content))).toBe(true);
      expect(file?.sha256).toBe(sha256(file!.content));
      expect((await drive.list(ns)).items.map((i) => i.key)).toEqual([key]);
    });
  });

  describe('size limits', () => {
    it('stops reading an endless stream past maxBytes, throws PAYLOAD_TOO_LARGE and stores nothing', async () => {
      const { body, state } = endlessBody();
      const error = await drive.put(`${ns}/endless`, body, { maxBytes: 10_000 }).catch((e: unknown) => e);
      expect(isAikbError(error, 'PAYLOAD_TOO_LARGE')).toBe(true);
      expect((error as { details: Record<string, unknown> }).details).toMatchObject({ field: 'body', limitBytes: 10_000 });
      expect(state.pulled).toBe(10);
      expect(state.closed).toBe(true);
      await expect(drive.exists(`${ns}/endless`)).resolves.toBe(false);
      await expect(drive.list(ns)).resolves.toEqual({ items: [], next: undefined });
    });

    it('destroys a Readable that goes over maxBytes', async () => {
      const { body } = endlessBody();
      const stream = Readable.from(body, { objectMode: false });
      await expect(drive.put(`${ns}/endless`, stream, { maxBytes: 5000 })).rejects.toSatisfy((e: unknown) => isAikbError(e, 'PAYLOAD_TOO_LARGE'));
      expect(stream.destroyed).toBe(true);
    });

    it('accepts a body of exactly maxBytes and refuses one byte more', async () => {
      await expect(drive.put(`${ns}/exact`, new Uint8Array(100), { maxBytes: 100 })).resolves.toMatchObject({ bytes: 100 });
      await expect(drive.put(`${ns}/over`, new Uint8Array(101), { maxBytes: 100 })).rejects.toSatisfy((e: unknown) => isAikbError(e, 'PAYLOAD_TOO_LARGE'));
      await expect(drive.exists(`${ns}/over`)).resolves.toBe(false);
    });

    it('keeps the old file when a replacing put is too large', async () => {
      await drive.put(`${ns}/doc`, Buffer.from('old'));
      await expect(drive.put(`${ns}/doc`, new Uint8Array(50), { maxBytes: 10 })).rejects.toSatisfy((e: unknown) => isAikbError(e, 'PAYLOAD_TOO_LARGE'));
      expect((await read(`${ns}/doc`))?.content.toString()).toBe('old');
    });
  });

  describe('failing bodies', () => {
    it('throws the body error unchanged and leaves nothing, not even a listing entry', async () => {
      const boom = new Error('client went away');
      await expect(drive.put(`${ns}/half`, failingBody([new Uint8Array(5000), new Uint8Array(5000)], boom))).rejects.toBe(boom);
      await expect(drive.get(`${ns}/half`)).resolves.toBeUndefined();
      await expect(drive.list(ns)).resolves.toEqual({ items: [], next: undefined });
    });

    it('keeps the old file when a replacing body fails', async () => {
      await drive.put(`${ns}/doc`, Buffer.from('old'));
      await expect(drive.put(`${ns}/doc`, failingBody([Buffer.from('new and half')], new Error('reset')))).rejects.toThrow('reset');
      expect((await read(`${ns}/doc`))?.content.toString()).toBe('old');
    });

    it('refuses a body that is not bytes, and string chunks, storing nothing', async () => {
      await expect(drive.put(`${ns}/x`, 'text' as never)).rejects.toSatisfy(isKeyError('body'));
      await expect(drive.put(`${ns}/x`, Readable.from(['a string chunk']))).rejects.toSatisfy(isKeyError('body'));
      await expect(drive.exists(`${ns}/x`)).resolves.toBe(false);
    });
  });

  describe('delete and exists', () => {
    it('deletes once (true), then again harmlessly (false)', async () => {
      await drive.put(`${ns}/doc`, Buffer.from('x'));
      await expect(drive.exists(`${ns}/doc`)).resolves.toBe(true);
      await expect(drive.delete(`${ns}/doc`)).resolves.toBe(true);
      await expect(drive.exists(`${ns}/doc`)).resolves.toBe(false);
      await expect(drive.delete(`${ns}/doc`)).resolves.toBe(false);
      await expect(drive.delete(`${ns}/never/was`)).resolves.toBe(false);
      await expect(drive.get(`${ns}/doc`)).resolves.toBeUndefined();
    });

    it('a prefix directory is not a file', async () => {
      await drive.put(`${ns}/dir/file`, Buffer.from('x'));
      await expect(drive.exists(`${ns}/dir`)).resolves.toBe(false);
      await expect(drive.delete(`${ns}/dir`)).resolves.toBe(false);
      await expect(drive.exists(`${ns}/dir/file`)).resolves.toBe(true);
    });
  });

  describe('list', () => {
    const names = ['a', 'a-b', 'a.x', 'a/c', 'a/c/d', 'a0', 'B', 'b/z', 'b_y'];
    beforeEach(async () => {
      for (const name of names) await drive.put(`${ns}/${name}`, Buffer.from(name));
    });
    const sorted = () => names.map((n) => `${ns}/${n}`).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));

    it('lists keys under a prefix in ascending code-unit order, with sizes', async () => {
      const page = await drive.list(`${ns}/`);
      expect(page.items.map((i) => i.key)).toEqual(sorted());
      expect(page.items.find((i) => i.key === `${ns}/a/c/d`)?.bytes).toBe(5);
      expect(page.next).toBeUndefined();
    });

    it('pages by keyset: every key once, in order, whatever the page size', async () => {
      for (const limit of [1, 2, 3, 4, 9]) {
        const seen: string[] = [];
        let after: string | undefined;
        for (let pages = 0; pages < 20; pages++) {
          const page = await drive.list(`${ns}/`, { limit, after });
          expect(page.items.length).toBeLessThanOrEqual(limit);
          seen.push(...page.items.map((i) => i.key));
          if (page.next === undefined) break;
          after = page.next;
        }
        expect(seen).toEqual(sorted());
      }
    });

    it('keeps paging right when keys are added and deleted between pages', async () => {
      const first = await drive.list(`${ns}/`, { limit: 3 });
      await drive.put(`${ns}/0-before`, Buffer.from('x')); // before the cursor: not seen
      await drive.delete(`${ns}/a0`);
      await drive.put(`${ns}/zz`, Buffer.from('x'));
      const rest = await drive.list(`${ns}/`, { after: first.next });
      expect(rest.items.map((i) => i.key)).toEqual([
        ...sorted()
          .slice(3)
          .filter((k) => k !== `${ns}/a0`),
        `${ns}/zz`,
      ]);
    });

    it('matches a prefix that ends inside a segment', async () => {
      expect((await drive.list(`${ns}/a`)).items.map((i) => i.key)).toEqual(sorted().filter((k) => k.startsWith(`${ns}/a`)));
      expect((await drive.list(`${ns}/a/c`)).items.map((i) => i.key)).toEqual([`${ns}/a/c`, `${ns}/a/c/d`]);
      expect((await drive.list(`${ns}/b`)).items.map((i) => i.key)).toEqual([`${ns}/b/z`, `${ns}/b_y`]);
      await expect(drive.list(`${ns}/nothing`)).resolves.toEqual({ items: [], next: undefined });
    });

    it('starts after a key that does not exist', async () => {
      expect((await drive.list(`${ns}/`, { after: `${ns}/a/c/e` })).items.map((i) => i.key)).toEqual(sorted().filter((k) => k > `${ns}/a/c/e`));
    });

    it('refuses bad prefixes and options', async () => {
      for (const prefix of ['../', '/abs', 'a//', 'a/../', '\u0000', 5]) await expect(drive.list(prefix as string)).rejects.toSatisfy(isKeyError('prefix'));
      for (const limit of [0, -1, 1.5, 1001, Number.NaN, '10']) await expect(drive.list(ns, { limit: limit as number })).rejects.toSatisfy(isKeyError('limit'));
      await expect(drive.list(ns, { after: '../x' })).rejects.toSatisfy(isKeyError('after'));
    });
  });

  describe('hostile keys', () => {
    it('refuses each with a ValidationError naming key, in every method, changing nothing', async () => {
      for (const key of HOSTILE_KEYS) {
        const k = key as string;
        await expect(drive.put(k, Buffer.from('x')), `put ${String(key)}`).rejects.toSatisfy(isKeyError('key'));
        await expect(drive.get(k), `get ${String(key)}`).rejects.toSatisfy(isKeyError('key'));
        await expect(drive.delete(k), `delete ${String(key)}`).rejects.toSatisfy(isKeyError('key'));
        await expect(drive.exists(k), `exists ${String(key)}`).rejects.toSatisfy(isKeyError('key'));
      }
      await expect(drive.list('')).resolves.toBeDefined();
    });

    it('accepts the longest allowed key', async () => {
      const key = `${ns}/${Array.from({ length: 40 }, () => 'x'.repeat(99)).join('/')}`.slice(0, MAX_DRIVE_KEY_LENGTH).replace(/\/$/, 'y');
      await expect(drive.put(key, Buffer.from('deep'))).resolves.toMatchObject({ key, bytes: 4 });
      expect((await read(key))?.content.toString()).toBe('deep');
    });

    it('refuses bad put options', async () => {
      await expect(drive.put(`${ns}/x`, Buffer.from('x'), { maxBytes: -1 })).rejects.toSatisfy(isKeyError('maxBytes'));
      await expect(drive.put(`${ns}/x`, Buffer.from('x'), { contentType: 'text/plain\r\nX-Evil: 1' })).rejects.toSatisfy(isKeyError('contentType'));
      await expect(drive.put(`${ns}/x`, Buffer.from('x'), { contentType: 'a'.repeat(256) })).rejects.toSatisfy(isKeyError('contentType'));
      await expect(drive.exists(`${ns}/x`)).resolves.toBe(false);
    });
  });

  describe('stats', () => {
    it('is a plain JSON object counting puts, refusals and deletes', async () => {
      const before = drive.stats();
      await drive.put(`${ns}/a`, Buffer.from('abc'));
      await drive.put(`${ns}/b`, new Uint8Array(20), { maxBytes: 10 }).catch(() => undefined);
      await drive.put(`${ns}/c`, failingBody([], new Error('x'))).catch(() => undefined);
      await drive.delete(`${ns}/a`);
      const after = drive.stats();
      expect(JSON.parse(JSON.stringify(after))).toEqual(after);
      expect(after.puts - before.puts).toBe(1);
      expect(after.bytesWritten - before.bytesWritten).toBe(3);
      expect(after.refusedTooLarge - before.refusedTooLarge).toBe(1);
      expect(after.failedPuts - before.failedPuts).toBe(1);
      expect(after.deletes - before.deletes).toBe(1);
    });
  });
}
