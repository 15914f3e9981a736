import { AikbError, UnavailableError } from '@aikb/core';
import type { DriveStore } from '@aikb/core/drive';
import { defineSaga, type SagaRetryPolicy } from '@aikb/core/saga';
import type { SearchStore } from '@aikb/core/search';
import type { DocumentFile, DocumentFileStore } from './document-store';
import { driveKeyFor, isTransient } from './upload-saga';

/** The delete saga's name in the saga log. */
export const DELETE_SAGA = 'document_delete';

/** The input of one delete. */
export type DeleteInput = { readonly documentId: string };

/** What step 2 (`rows`) deleted: the whole row, so its compensation can put it back. */
export type DeletedRow = { readonly [K in keyof DocumentFile]: DocumentFile[K] };

/** What the delete steps work on. */
export interface DeleteDeps {
  readonly drive: DriveStore;
  readonly files: DocumentFileStore;
  readonly search: SearchStore;
}

const retry: SagaRetryPolicy = { retries: 2, minDelayMs: 100, maxDelayMs: 1000, retryable: isTransient };
const compensationRetry: SagaRetryPolicy = { retries: 3, minDelayMs: 100, maxDelayMs: 1000 };

async function wrap(message: string, work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (error) {
    throw new UnavailableError(message, { cause: error });
  }
}

/**
 * `document_delete` v1 (recovery: resume, so a delete interrupted by a crash is finished, not
 * undone). In the order that never leaves a searchable document without its file: (1) `index`
 * removes it from search (undone by re-indexing the row's text), (2) `rows` deletes the row (undone
 * by inserting it again from the step's output), (3) `drive` deletes the file, last.
 */
export function defineDeleteSaga({ drive, files, search }: DeleteDeps) {
  return defineSaga<DeleteInput>({ name: DELETE_SAGA, version: 1, recovery: 'resume' })
    .step('index', {
      action: async ({ input }) => ({ removed: await search.deleteDocument(input.documentId) }),
      compensate: ({ input }) =>
        wrap('Failed to re-index the document', async () => {
          const row = await files.get(input.documentId);
          if (!row) return; // the row is gone too: nothing to make searchable again
          await search.indexDocument({
            id: row.id,
            title: row.title,
            text: row.text,
            acl: row.acl,
            metadata: { source: 'upload', contentType: row.contentType, bytes: row.bytes, filename: row.filename, ownerId: row.ownerId },
          });
        }),
      retry,
      compensationRetry,
    })
    .step('rows', {
      action: async ({ input }): Promise<DeletedRow | null> => {
        const row = await files.get(input.documentId);
        // A resumed delete whose row went already: its output is lost with the crash, nothing to undo.
        if (!row) return null;
        await files.delete(input.documentId);
        return row;
      },
      compensate: ({ output }) =>
        wrap('Failed to restore the document row', async () => {
          if (output) await files.insert(output);
        }),
      retry,
      compensationRetry,
    })
    .step('drive', {
      action: async ({ input, outputs }) => {
        try {
          return { deleted: await drive.delete(outputs.rows?.driveKey ?? driveKeyFor(input.documentId)) };
        } catch (error) {
          if (error instanceof AikbError) throw error;
          throw new UnavailableError('Failed to delete file from Drive', { cause: error });
        }
      },
      retry,
    });
}
