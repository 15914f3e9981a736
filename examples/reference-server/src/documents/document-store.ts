import type { Migration, Queryable } from '@aikb/core/db';
import { translatePgError } from '@aikb/core/db';

/**
 * The server's own table of uploaded documents (`aikb_document_files`): who uploaded what, where
 * its bytes are in Drive, and the text extracted from it, so the search index can be rebuilt from
 * it (and the delete saga can re-index a document whose removal it undoes).
 */
export const documentFileMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'server.documents.0001_files',
    up: `
      CREATE TABLE IF NOT EXISTS aikb_document_files (
        id text PRIMARY KEY,
        owner_id text NOT NULL,
        title text NOT NULL,
        acl jsonb NOT NULL,
        drive_key text NOT NULL UNIQUE,
        filename text,
        content_type text NOT NULL,
        bytes bigint NOT NULL,
        sha256 text NOT NULL,
        text text NOT NULL,
        saga_id text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX IF NOT EXISTS aikb_document_files_owner ON aikb_document_files (owner_id);
    `,
  },
]);

/** One row of `aikb_document_files`: plain JSON, so the delete saga can keep it in its log. */
export interface DocumentFile {
  readonly id: string;
  readonly ownerId: string;
  readonly title: string;
  readonly acl: readonly string[];
  readonly driveKey: string;
  readonly filename: string | null;
  readonly contentType: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly text: string;
  /** The upload saga that wrote it; `null` on the flag-off path. */
  readonly sagaId: string | null;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** The rows of uploaded documents. A missing row is `undefined` / `false`, never a throw. */
export interface DocumentFileStore {
  /** Inserts `file`, or replaces the row with its id (a retried step writes the same; a flag-off retry with the same Idempotency-Key, the new upload). */
  insert(file: Omit<DocumentFile, 'createdAt'> & { readonly createdAt?: string }): Promise<void>;
  get(id: string): Promise<DocumentFile | undefined>;
  /** `true` when a row was deleted. */
  delete(id: string): Promise<boolean>;
  /** Every row's id and Drive key, for `drive check` (one query; the table is the server's own). */
  listKeys(): Promise<ReadonlyArray<{ readonly id: string; readonly driveKey: string }>>;
}

interface Row {
  id: string;
  owner_id: string;
  title: string;
  acl: string[];
  drive_key: string;
  filename: string | null;
  content_type: string;
  bytes: string | number;
  sha256: string;
  text: string;
  saga_id: string | null;
  created_at: Date | string;
}

const what = 'the document table';

/**
 * The {@link DocumentFileStore} on `aikb_document_files` (apply {@link documentFileMigrations}
 * first). Driver errors become `UnavailableError` (connection) or typed errors (`translatePgError`).
 */
export function createPostgresDocumentFileStore({ pool }: { pool: Queryable }): DocumentFileStore {
  return {
    async insert(file) {
      try {
        await pool.query(
          `INSERT INTO aikb_document_files (id, owner_id, title, acl, drive_key, filename, content_type, bytes, sha256, text, saga_id, created_at)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, COALESCE($12::timestamptz, now()))
           ON CONFLICT (id) DO UPDATE SET owner_id = EXCLUDED.owner_id, title = EXCLUDED.title, acl = EXCLUDED.acl, drive_key = EXCLUDED.drive_key,
             filename = EXCLUDED.filename, content_type = EXCLUDED.content_type, bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256,
             text = EXCLUDED.text, saga_id = EXCLUDED.saga_id`,
          [
            file.id,
            file.ownerId,
            file.title,
            JSON.stringify(file.acl),
            file.driveKey,
            file.filename,
            file.contentType,
            file.bytes,
            file.sha256,
            file.text,
            file.sagaId,
            file.createdAt ?? null,
          ],
        );
      } catch (error) {
        translatePgError(error, { what, fields: { title: file.title, text: file.text, filename: file.filename } });
      }
    },
    async get(id) {
      try {
        const { rows } = await pool.query<Row>('SELECT * FROM aikb_document_files WHERE id = $1', [id]);
        const row = rows[0];
        return row && toFile(row);
      } catch (error) {
        translatePgError(error, { what });
      }
    },
    async delete(id) {
      try {
        const result = await pool.query('DELETE FROM aikb_document_files WHERE id = $1', [id]);
        return (result.rowCount ?? 0) > 0;
      } catch (error) {
        translatePgError(error, { what });
      }
    },
    async listKeys() {
      try {
        const { rows } = await pool.query<{ id: string; drive_key: string }>('SELECT id, drive_key FROM aikb_document_files ORDER BY id');
        return rows.map((row) => ({ id: row.id, driveKey: row.drive_key }));
      } catch (error) {
        translatePgError(error, { what });
      }
    },
  };
}

function toFile(row: Row): DocumentFile {
  return {
    id: row.id,
    ownerId: row.owner_id,
    title: row.title,
    acl: row.acl,
    driveKey: row.drive_key,
    filename: row.filename,
    contentType: row.content_type,
    bytes: Number(row.bytes),
    sha256: row.sha256,
    text: row.text,
    sagaId: row.saga_id,
    createdAt: (row.created_at instanceof Date ? row.created_at : new Date(row.created_at)).toISOString(),
  };
}
