import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AikbError } from '../errors';
import { checkDatabase, createDatabase, type Database } from './index';

describe('createDatabase', () => {
  const opened: Database[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aikb-db-'));
    dirs.push(dir);
    return path.join(dir, 'data');
  };

  describe('options', () => {
    it.each([
      ['nonsense', /url is not a URL/],
      ['mysql://localhost/db', /url must start with postgres:\/\/ or postgresql:\/\//],
      ['postgres://', /url has no host/],
    ])('rejects url %j with a TypeError naming the option', async (url, message) => {
      await expect(createDatabase({ url })).rejects.toThrow(TypeError);
      await expect(createDatabase({ url })).rejects.toThrow(message);
    });

    it('rejects a max that is not a positive integer', async () => {
      await expect(createDatabase({ url: 'postgres://localhost/x', max: 0 })).rejects.toThrow(/^createDatabase: max must be a whole number ≥ 1 \(got 0\)$/);
    });

    it('rejects an empty dataDir', async () => {
      await expect(createDatabase({ dataDir: '' })).rejects.toThrow(/dataDir must be a non-empty path/);
    });
  });

  describe('with a server url', () => {
    it('does not connect at creation, so a database that is down now is not fatal', async () => {
      const db = await createDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMs: 1000 });
      opened.push(db);
      expect(db.kind).toBe('postgres');
      const check = await checkDatabase(db.pool);
      expect(check.status).toBe('down');
      expect(check.error).toBeTruthy();
    });

    it('hides the password in target', async () => {
      const db = await createDatabase({ url: 'postgres://app:s3cret@127.0.0.1:1/none' });
      opened.push(db);
      expect(db.target).toBe('postgres://app:***@127.0.0.1:1/none');
    });
  });

  describe('embedded', () => {
    it('serves a pg.Pool on PGlite in memory by default', async () => {
      const db = await createDatabase();
      opened.push(db);
      expect(db.kind).toBe('pglite');
      expect(db.target).toBe('memory://');
      const { rows } = await db.pool.query<{ sum: number }>('SELECT $1::int + 1 AS sum', [41]);
      expect(rows[0]?.sum).toBe(42);
    });

    it('keeps data in a data directory across a close and reopen', async () => {
      const dataDir = tempDir();
      const first = await createDatabase({ dataDir, vector: false });
      await first.pool.query('CREATE TABLE kept (v text)');
      await first.pool.query("INSERT INTO kept VALUES ('survives')");
      await first.close();

      const second = await createDatabase({ dataDir, vector: false });
      opened.push(second);
      const { rows } = await second.pool.query<{ v: string }>('SELECT v FROM kept');
      expect(rows).toEqual([{ v: 'survives' }]);
    });

    it('refuses a data directory that is already open', async () => {
      const dataDir = tempDir();
      const db = await createDatabase({ dataDir, vector: false });
      opened.push(db);
      const second = createDatabase({ dataDir, vector: false });
      await expect(second).rejects.toBeInstanceOf(AikbError);
      await expect(createDatabase({ dataDir, vector: false })).rejects.toThrow(/already open/);
    });
  });
});
