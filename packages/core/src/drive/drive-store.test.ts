import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { createRecordingLogger } from '@aikb/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { isAikbError, UnavailableError } from '../errors';
import { describeDriveStoreContract, endlessBody, failingBody } from './drive-store.contract';
import { createFsDriveStore } from './fs-drive-store';
import { createMemoryDriveStore } from './memory-drive-store';

const scratch = mkdtempSync(path.join(tmpdir(), 'aikb-drive-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshRoot = () => path.join(scratch, `root-${++dirs}`);

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('createMemoryDriveStore', () => {
  describe('contract', () => {
    describeDriveStoreContract(() => createMemoryDriveStore());
  });

  it('refuses a put that would go over maxTotalBytes, keeping what it had', async () => {
    const drive = createMemoryDriveStore({ maxTotalBytes: 1000 });
    await drive.put('a', new Uint8Array(600));
    const { body, state } = endlessBody(new Uint8Array(100));
    await expect(drive.put('b', body)).rejects.toSatisfy((e: unknown) => isAikbError(e, 'RESOURCE_EXHAUSTED'));
    expect(state.closed).toBe(true);
    expect(drive.stats()).toMatchObject({ objects: 1, storedBytes: 600, refusedTooLarge: 1 });
    await drive.put('a', new Uint8Array(400)); // received while the old 600 are still held, then frees them
    expect(drive.stats()).toMatchObject({ objects: 1, storedBytes: 400 });
    await drive.delete('a');
    await expect(drive.put('c', new Uint8Array(1000))).resolves.toMatchObject({ bytes: 1000 });
  });

  it('caps a put at maxObjectBytes even when the put asks for more', async () => {
    const drive = createMemoryDriveStore({ maxObjectBytes: 10 });
    await expect(drive.put('a', new Uint8Array(11), { maxBytes: 1000 })).rejects.toSatisfy((e: unknown) => isAikbError(e, 'PAYLOAD_TOO_LARGE'));
  });

  it('checks its options at construction', () => {
    expect(() => createMemoryDriveStore({ maxTotalBytes: -1 })).toThrow(/createMemoryDriveStore: maxTotalBytes/);
    expect(() => createMemoryDriveStore({ maxObjectBytes: 1.5 })).toThrow(TypeError);
    expect(() => createMemoryDriveStore(null as never)).toThrow(/options/);
  });
});

describe('createFsDriveStore', () => {
  describe('contract', () => {
    const root = freshRoot();
    describeDriveStoreContract(() => createFsDriveStore({ root }));
  });

  it('creates its root on the first put and leaves no temporary file behind after failures', async () => {
    const root = freshRoot();
    const drive = createFsDriveStore({ root });
    await expect(drive.get('a')).resolves.toBeUndefined();
    await expect(drive.list('')).resolves.toEqual({ items: [], next: undefined });
    await drive.put('docs/ok.txt', Buffer.from('ok'));
    await drive.put('docs/big', endlessBody().body, { maxBytes: 4096 }).catch(() => undefined);
    await drive.put('docs/half', failingBody([new Uint8Array(10_000)], new Error('reset'))).catch(() => undefined);
    await drive.put('docs/ok.txt', failingBody([new Uint8Array(10)], new Error('reset'))).catch(() => undefined);
    expect(await filesUnder(root)).toEqual(['docs/ok.txt~']);
  });

  it('a get opened before a replacing put finishes reads the old file whole, and the next get the new one', async () => {
    const drive = createFsDriveStore({ root: freshRoot() });
    const old = Buffer.alloc(200_000, 'o');
    await drive.put('doc', old);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let firstChunkWritten!: () => void;
    const written = new Promise<void>((resolve) => (firstChunkWritten = resolve));
    const body = (async function* () {
      yield Buffer.alloc(100_000, 'n');
      firstChunkWritten();
      await gate;
      yield Buffer.alloc(100_000, 'n');
    })();
    const putting = drive.put('doc', body);
    await written;
    const during = await drive.get('doc');
    release();
    await putting;
    expect((await buffer(during!.body)).equals(old)).toBe(true);
    expect((await buffer((await drive.get('doc'))!.body)).equals(Buffer.alloc(200_000, 'n'))).toBe(true);
  });

  it('turns a disk error into UnavailableError with the cause, logs it, and counts it as a failed put', async () => {
    const file = path.join(scratch, `plain-file-${++dirs}`);
    writeFileSync(file, 'not a directory');
    const logger = createRecordingLogger();
    const drive = createFsDriveStore({ root: path.join(file, 'drive'), logger });
    const error = await drive.put('a/b', Buffer.from('x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).cause).toMatchObject({ code: 'ENOTDIR' });
    expect((error as UnavailableError).details).toEqual({ code: 'ENOTDIR' });
    expect(logger.lines.some((l) => l.level === 'error' && (l.obj as { key?: string }).key === 'a/b')).toBe(true);
    expect(drive.stats()).toMatchObject({ failedPuts: 1, unavailable: 1, puts: 0 });
    expect(readdirSync(scratch)).toContain(path.basename(file));
  });

  it('turns a read-only directory into UnavailableError (EACCES), and works again once it is writable', async (context) => {
    if (process.getuid?.() === 0) context.skip(); // root writes through any mode
    const root = freshRoot();
    await mkdir(path.join(root, 'ro'), { recursive: true });
    await chmod(path.join(root, 'ro'), 0o500);
    const drive = createFsDriveStore({ root });
    await expect(drive.put('ro/x', Buffer.from('x'))).rejects.toSatisfy((e: unknown) => e instanceof UnavailableError);
    await chmod(path.join(root, 'ro'), 0o700);
    await expect(drive.put('ro/x', Buffer.from('x'))).resolves.toMatchObject({ bytes: 1 });
  });

  it('reports a damaged file as INTERNAL instead of serving it, and ignores foreign files in listings', async () => {
    const root = freshRoot();
    const drive = createFsDriveStore({ root });
    await drive.put('good', Buffer.from('x'));
    await writeFile(path.join(root, 'bad~'), 'not a drive file');
    await writeFile(path.join(root, 'README'), 'someone else’s');
    await writeFile(path.join(root, 'good~1234.tmp'), 'a crashed put');
    await expect(drive.get('bad')).rejects.toSatisfy((e: unknown) => isAikbError(e, 'INTERNAL'));
    expect((await drive.list('')).items.map((i) => i.key)).toEqual(['bad', 'good']);
  });

  it("removes a crashed put's temporary file once it is staleTempMs old, on the first put into its directory", async () => {
    const root = freshRoot();
    await mkdir(path.join(root, 'docs'), { recursive: true });
    const stale = path.join(root, 'docs', 'a.pdf~0b5c9a9e-3f5e-4c41-9a43-5b7f0c7d2a11.tmp');
    const fresh = path.join(root, 'docs', 'b.pdf~6f1d2c3b-8a9e-4f00-b1c2-d3e4f5a6b7c8.tmp');
    const foreign = path.join(root, 'docs', 'notes.tmp');
    for (const file of [stale, fresh, foreign]) await writeFile(file, 'partial');
    const now = Date.now();
    await utimes(stale, new Date(now - 2 * 3_600_000), new Date(now - 2 * 3_600_000));
    await utimes(foreign, new Date(now - 2 * 3_600_000), new Date(now - 2 * 3_600_000));
    const logger = createRecordingLogger();
    const drive = createFsDriveStore({ root, logger, clock: { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined } });
    await drive.put('docs/c.pdf', Buffer.from('x'));
    expect(await filesUnder(root)).toEqual(['docs/b.pdf~6f1d2c3b-8a9e-4f00-b1c2-d3e4f5a6b7c8.tmp', 'docs/c.pdf~', 'docs/notes.tmp']);
    expect(logger.lines.filter((l) => l.level === 'info').map((l) => l.obj.file)).toEqual([path.join('docs', path.basename(stale))]);
  });

  it('checks its options at construction', () => {
    expect(() => createFsDriveStore({ root: scratch, staleTempMs: -1 })).toThrow(/staleTempMs/);
    expect(() => createFsDriveStore({ root: scratch, clock: {} as never })).toThrow(/clock/);
    expect(() => createFsDriveStore({} as never)).toThrow(/createFsDriveStore: root must be a non-empty string/);
    expect(() => createFsDriveStore({ root: scratch, maxObjectBytes: -5 })).toThrow(/maxObjectBytes/);
    expect(() => createFsDriveStore({ root: scratch, logger: {} as never })).toThrow(/logger/);
  });
});
