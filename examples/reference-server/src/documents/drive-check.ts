import type { Queryable } from '@aikb/core/db';
import type { DriveStore } from '@aikb/core/drive';
import { DELETE_SAGA } from './delete-saga';
import { UPLOAD_SAGA, driveKeyFor } from './upload-saga';

/** The most entries each list of a {@link DriveCheck} holds (the counts are always whole). */
export const MAX_LISTED = 1000;

/** A document saga that is not finished: its file, row or index entry may be there or not, legitimately for now. */
export interface SagaInFlight {
  readonly sagaId: string;
  readonly saga: string;
  readonly state: string;
  readonly documentId: string | null;
}

/** What {@link checkDrive} found. Every list is at most {@link MAX_LISTED} long; the `counts` are whole. */
export interface DriveCheck {
  readonly files: number;
  readonly rows: number;
  /** Uploaded documents in the search index (`null` when the database has no search tables). */
  readonly indexed: number | null;
  /** Drive files under `documents/` with no row (and no saga working on them). */
  readonly filesWithoutRows: readonly string[];
  /** Rows whose file is missing from Drive. */
  readonly rowsWithoutFiles: readonly string[];
  /** Uploaded documents in the search index without a row. */
  readonly indexedWithoutRows: readonly string[];
  /** Rows that are not in the search index (a failed flag-off upload): the file exists but cannot be found. */
  readonly rowsNotIndexed: readonly string[];
  /** Upload and delete sagas still running or compensating: their files are not orphans yet. */
  readonly inFlight: readonly SagaInFlight[];
  /** Upload and delete sagas left `compensation_failed` or `parked`, unresolved: an operator must look (`/api/admin/sagas`). */
  readonly needOperator: readonly SagaInFlight[];
  readonly counts: {
    readonly filesWithoutRows: number;
    readonly rowsWithoutFiles: number;
    readonly indexedWithoutRows: number;
    readonly rowsNotIndexed: number;
    readonly needOperator: number;
  };
  /** Nothing orphaned and nothing waiting for an operator. */
  readonly clean: boolean;
}

async function tableExists(pool: Queryable, table: string): Promise<boolean> {
  const { rows } = await pool.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [table]);
  return rows[0]?.ok === true;
}

async function driveKeys(drive: DriveStore): Promise<string[]> {
  const keys: string[] = [];
  let after: string | undefined;
  do {
    const page = await drive.list('documents/', { limit: 1000, ...(after === undefined ? {} : { after }) });
    for (const item of page.items) keys.push(item.key);
    after = page.next;
  } while (after !== undefined);
  return keys;
}

/**
 * Compares Drive (keys under `documents/`) with `aikb_document_files` and the search index's
 * uploaded documents (`metadata.source = 'upload'`), leaving out the documents of sagas still in
 * flight. What `aikb-server drive check` prints; tests call it after every failure they inject.
 *
 * @throws whatever the database or Drive throws (an outage is not "clean")
 */
export async function checkDrive({ drive, pool }: { drive: DriveStore; pool: Queryable }): Promise<DriveCheck> {
  const keys = await driveKeys(drive);
  const rows = (await tableExists(pool, 'aikb_document_files'))
    ? (await pool.query<{ id: string; drive_key: string }>('SELECT id, drive_key FROM aikb_document_files')).rows
    : [];
  const indexed = (await tableExists(pool, 'aikb_search_documents'))
    ? (await pool.query<{ id: string }>("SELECT id FROM aikb_search_documents WHERE metadata->>'source' = 'upload'")).rows.map((r) => r.id)
    : null;
  const sagas = (await tableExists(pool, 'aikb_sagas'))
    ? (
        await pool.query<{ id: string; name: string; state: string; document_id: string | null }>(
          `SELECT id, name, state, input->>'documentId' AS document_id FROM aikb_sagas
           WHERE name = ANY($1::text[]) AND (state IN ('running', 'compensating') OR (state IN ('compensation_failed', 'parked') AND resolved_at IS NULL))
           ORDER BY created_at`,
          [[UPLOAD_SAGA, DELETE_SAGA]],
        )
      ).rows
    : [];
  const describe = (s: (typeof sagas)[number]): SagaInFlight => ({ sagaId: s.id, saga: s.name, state: s.state, documentId: s.document_id });
  const inFlight = sagas.filter((s) => s.state === 'running' || s.state === 'compensating').map(describe);
  const needOperator = sagas.filter((s) => s.state !== 'running' && s.state !== 'compensating').map(describe);
  const busy = new Set(inFlight.map((s) => s.documentId).filter((id): id is string => id !== null));
  const busyKeys = new Set([...busy].map(driveKeyFor));

  const rowKeys = new Set(rows.map((r) => r.drive_key));
  const rowIds = new Set(rows.map((r) => r.id));
  const keySet = new Set(keys);
  const indexedSet = new Set(indexed ?? []);
  const filesWithoutRows = keys.filter((key) => !rowKeys.has(key) && !busyKeys.has(key));
  const rowsWithoutFiles = rows.filter((r) => !keySet.has(r.drive_key) && !busy.has(r.id)).map((r) => r.id);
  const indexedWithoutRows = (indexed ?? []).filter((id) => !rowIds.has(id) && !busy.has(id));
  const rowsNotIndexed = indexed === null ? [] : rows.filter((r) => !indexedSet.has(r.id) && !busy.has(r.id)).map((r) => r.id);
  const counts = {
    filesWithoutRows: filesWithoutRows.length,
    rowsWithoutFiles: rowsWithoutFiles.length,
    indexedWithoutRows: indexedWithoutRows.length,
    rowsNotIndexed: rowsNotIndexed.length,
    needOperator: needOperator.length,
  };
  return {
    files: keys.length,
    rows: rows.length,
    indexed: indexed === null ? null : indexed.length,
    filesWithoutRows: filesWithoutRows.slice(0, MAX_LISTED),
    rowsWithoutFiles: rowsWithoutFiles.slice(0, MAX_LISTED),
    indexedWithoutRows: indexedWithoutRows.slice(0, MAX_LISTED),
    rowsNotIndexed: rowsNotIndexed.slice(0, MAX_LISTED),
    inFlight: inFlight.slice(0, MAX_LISTED),
    needOperator: needOperator.slice(0, MAX_LISTED),
    counts,
    clean: Object.values(counts).every((n) => n === 0),
  };
}

/** {@link DriveCheck} as the lines `aikb-server drive check` prints. */
export function formatDriveCheck(check: DriveCheck): string {
  const lines = [`drive check: ${check.files} file(s) in Drive, ${check.rows} document row(s), ${check.indexed ?? 'no search tables:'} indexed upload(s)`];
  const section = (title: string, total: number, items: readonly string[]) => {
    if (total === 0) return;
    lines.push(`${title} (${total}):`, ...items.map((item) => `  ${item}`));
    if (total > items.length) lines.push(`  … and ${total - items.length} more`);
  };
  section('files without rows', check.counts.filesWithoutRows, check.filesWithoutRows);
  section('rows without files', check.counts.rowsWithoutFiles, check.rowsWithoutFiles);
  section('indexed documents without rows', check.counts.indexedWithoutRows, check.indexedWithoutRows);
  section('rows not in the search index', check.counts.rowsNotIndexed, check.rowsNotIndexed);
  const saga = (s: SagaInFlight) => `${s.saga} ${s.sagaId} ${s.state} (document ${s.documentId ?? '?'})`;
  section('sagas an operator must resolve (/api/admin/sagas)', check.counts.needOperator, check.needOperator.map(saga));
  if (check.inFlight.length > 0)
    lines.push(`sagas still in flight, not counted as orphans (${check.inFlight.length}):`, ...check.inFlight.map((s) => `  ${saga(s)}`));
  lines.push(check.clean ? 'clean: Drive, the document table and the search index agree' : 'NOT clean: see above');
  return lines.join('\n');
}
