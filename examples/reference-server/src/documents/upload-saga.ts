import type { Readable } from 'node:stream';
import { AikbError, UnavailableError } from '@aikb/core';
import { isPgConnectionError } from '@aikb/core/db';
import type { DriveStore } from '@aikb/core/drive';
import { defineSaga, type SagaRetryPolicy } from '@aikb/core/saga';
import type { SearchStore } from '@aikb/core/search';
import type { TestHooks, UploadStep } from '../config';
import { extractText, inspectContent, type DocumentContentType } from './content';
import type { DocumentFileStore } from './document-store';

/** The upload saga's name in the saga log (`/api/admin/sagas?name=document_upload`). */
export const UPLOAD_SAGA = 'document_upload';
/** The most characters of text kept per document: the search store's document limit. */
export const MAX_TEXT_CHARS = 5_000_000;

/** Where an uploaded document's file lives in Drive. */
export const driveKeyFor = (documentId: string): string => `documents/${documentId}`;

/** The input of one upload, as the saga log keeps it (never the file: it is streamed, not logged). */
export type UploadInput = {
  readonly documentId: string;
  readonly ownerId: string;
  readonly title: string;
  readonly acl: readonly string[];
  readonly filename: string | null;
  readonly declaredType: string | null;
  readonly driveKey: string;
};

/** What step 1 (`drive`) stored. */
export type DriveOutput = { readonly driveKey: string; readonly bytes: number; readonly sha256: string; readonly contentType: DocumentContentType };
/** What step 2 (`rows`) wrote. */
export type RowsOutput = { readonly textChars: number };
/** What step 3 (`index`) indexed. */
export type IndexOutput = { readonly chunks: number };

/**
 * The file of an upload being received by this process, handed to step 1 outside the saga's
 * JSON input. Step 1 takes `body` (it can be read once); an error a step throws is kept in
 * `error` so the HTTP answer can carry its details (the log keeps only its message and code).
 */
export interface PendingUpload {
  body: Readable | undefined;
  error?: unknown;
}

/**
 * The files being received, by document id. An entry lives only while its request runs (the route
 * deletes it when it answers), so the map holds at most one entry per open connection.
 */
export type PendingUploads = Map<string, PendingUpload>;

/** What the upload steps work on. */
export interface UploadDeps {
  readonly drive: DriveStore;
  readonly files: DocumentFileStore;
  readonly search: SearchStore;
  /** `UPLOAD_MAX_BYTES`. */
  readonly maxBytes: number;
  readonly pending: PendingUploads;
  readonly hooks?: TestHooks | undefined;
}

/** Transient failures (an outage, a timeout, a lost connection): the only ones a step retries. */
export function isTransient(error: unknown): boolean {
  if (error instanceof AikbError) return error.code === 'UNAVAILABLE' || error.code === 'DEADLINE_EXCEEDED' || error.code === 'RESOURCE_EXHAUSTED';
  return isPgConnectionError(error);
}

/** Compensations fail only as an outage: wrapped with the message the runbook's log line shows. */
async function undo(message: string, work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (error) {
    throw new UnavailableError(message, { cause: error });
  }
}

/** The test hooks (`AIKB_TEST_BLOCK_UPLOAD_STEP`, `AIKB_TEST_FAIL_UPLOAD_STEP`): nothing without `AIKB_TEST_HOOKS=1`. */
async function hook(hooks: TestHooks | undefined, step: UploadStep, signal: AbortSignal | undefined): Promise<void> {
  if (!hooks) return;
  if (hooks.failUploadStep === step) throw new UnavailableError(`test hook: the ${step} step fails (AIKB_TEST_FAIL_UPLOAD_STEP)`);
  if (hooks.blockUploadStep === step) {
    // Until the step is aborted (its timeout, a cancel, shutdown) or the process is killed.
    await new Promise<never>((_resolve, reject) => {
      const stop = () => reject(new UnavailableError(`test hook: the ${step} step was blocked (AIKB_TEST_BLOCK_UPLOAD_STEP)`));
      if (signal?.aborted) stop();
      signal?.addEventListener('abort', stop, { once: true });
    });
  }
}

/** The three steps of an upload and their undos, shared by the saga and the flag-off path. */
export interface UploadSteps {
  drive(input: UploadInput, signal?: AbortSignal): Promise<DriveOutput>;
  undoDrive(input: UploadInput): Promise<void>;
  rows(input: UploadInput, drive: DriveOutput, sagaId: string | null, signal?: AbortSignal): Promise<RowsOutput>;
  undoRows(input: UploadInput): Promise<void>;
  index(input: UploadInput, drive: DriveOutput, signal?: AbortSignal): Promise<IndexOutput>;
  undoIndex(input: UploadInput): Promise<void>;
}

/** {@link UploadSteps} over `deps`. */
export function createUploadSteps(deps: UploadDeps): UploadSteps {
  const { drive, files, search, maxBytes, pending, hooks } = deps;
  /** Keeps a step's error beside the request that waits for it (see {@link PendingUpload}). */
  const remember = async <T>(input: UploadInput, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      const entry = pending.get(input.documentId);
      if (entry) entry.error = error;
      throw error;
    }
  };
  return {
    drive: (input, signal) =>
      remember(input, async () => {
        const entry = pending.get(input.documentId);
        const body = entry?.body;
        if (!entry || !body) {
          // Recovery in a process that never received the file (the one that did was killed).
          throw new AikbError('FAILED_PRECONDITION', 'the file of this upload is no longer being received (the server restarted): upload it again', {
            details: { field: 'file' },
          });
        }
        entry.body = undefined;
        const inspector = inspectContent({ maxBytes, filename: input.filename ?? undefined, declaredType: input.declaredType ?? undefined });
        body.once('error', (error) => inspector.destroy(error));
        body.pipe(inspector);
        const abort = () => inspector.destroy(new AikbError('DEADLINE_EXCEEDED', 'the file was not received in time', { details: { field: 'file' } }));
        signal?.addEventListener('abort', abort, { once: true });
        try {
          await hook(hooks, 'drive', signal);
          await drive.put(input.driveKey, inspector, { maxBytes });
          const { contentType, bytes, sha256 } = await inspector.result;
          return { driveKey: input.driveKey, bytes, sha256, contentType };
        } finally {
          signal?.removeEventListener('abort', abort);
          // Refused or failed: stop reading what the client still sends.
          if (!inspector.writableFinished) body.destroy();
        }
      }),
    undoDrive: (input) => undo('Failed to delete file from Drive', () => drive.delete(input.driveKey)),
    rows: (input, stored, sagaId, signal) =>
      remember(input, async () => {
        await hook(hooks, 'rows', signal);
        const object = await drive.get(stored.driveKey);
        if (!object) throw new AikbError('FAILED_PRECONDITION', 'the uploaded file is missing from Drive', { details: { field: 'file' } });
        let text: string;
        try {
          text = await extractText(stored.contentType, object.body, { maxChars: MAX_TEXT_CHARS, ...(signal ? { signal } : {}) });
        } finally {
          object.body.destroy();
        }
        await files.insert({
          id: input.documentId,
          ownerId: input.ownerId,
          title: input.title,
          acl: input.acl,
          driveKey: stored.driveKey,
          filename: input.filename,
          contentType: stored.contentType,
          bytes: stored.bytes,
          sha256: stored.sha256,
          text,
          sagaId,
        });
        return { textChars: text.length };
      }),
    undoRows: (input) => undo('Failed to delete the document row', () => files.delete(input.documentId)),
    index: (input, stored, signal) =>
      remember(input, async () => {
        await hook(hooks, 'index', signal);
        const row = await files.get(input.documentId);
        if (!row) throw new AikbError('FAILED_PRECONDITION', 'the document row is missing', { details: { field: 'file' } });
        const { chunks } = await search.indexDocument({
          id: input.documentId,
          title: input.title,
          text: row.text,
          acl: input.acl,
          metadata: uploadMetadata(input, stored),
        });
        return { chunks };
      }),
    undoIndex: (input) => undo('Failed to remove the document from the search index', () => search.deleteDocument(input.documentId)),
  };
}

/** The search metadata of an uploaded document (`source: 'upload'` is how `drive check` tells uploads from admin-indexed documents). */
export function uploadMetadata(input: Pick<UploadInput, 'filename' | 'ownerId'>, stored: Pick<DriveOutput, 'contentType' | 'bytes'>): Record<string, unknown> {
  return { source: 'upload', contentType: stored.contentType, bytes: stored.bytes, filename: input.filename, ownerId: input.ownerId };
}

const transientRetry: SagaRetryPolicy = { retries: 2, minDelayMs: 100, maxDelayMs: 1000, retryable: isTransient };
const compensationRetry: SagaRetryPolicy = { retries: 3, minDelayMs: 100, maxDelayMs: 1000 };

/**
 * `document_upload` v1 (recovery: compensate): (1) `drive` stores the file, no retry (the stream
 * is consumed), undone by deleting it; (2) `rows` extracts the text and writes the document row,
 * undone by deleting it; (3) `index` indexes it for search in one transaction, undone by removing
 * it. Only transient errors are retried; a refusal (413, 415, 422, 400) goes straight to compensation.
 *
 * @param options.driveTimeoutMs how long step 1 may take to receive the file (the HTTP request timeout)
 * @param options.stepTimeoutMs how long one attempt of the other steps, and of each compensation, may take
 */
export function defineUploadSaga(steps: UploadSteps, { driveTimeoutMs, stepTimeoutMs }: { driveTimeoutMs: number; stepTimeoutMs: number }) {
  return defineSaga<UploadInput>({ name: UPLOAD_SAGA, version: 1, recovery: 'compensate' })
    .step('drive', {
      action: ({ input, signal }) => steps.drive(input, signal),
      compensate: ({ input }) => steps.undoDrive(input),
      timeoutMs: driveTimeoutMs,
      compensationTimeoutMs: stepTimeoutMs,
      retry: { retries: 0 },
      compensationRetry,
    })
    .step('rows', {
      action: ({ input, outputs, sagaId, signal }) => steps.rows(input, outputs.drive, sagaId, signal),
      compensate: ({ input }) => steps.undoRows(input),
      timeoutMs: stepTimeoutMs,
      retry: transientRetry,
      compensationRetry,
    })
    .step('index', {
      action: ({ input, outputs, signal }) => steps.index(input, outputs.drive, signal),
      compensate: ({ input }) => steps.undoIndex(input),
      timeoutMs: stepTimeoutMs,
      retry: transientRetry,
      compensationRetry,
    });
}
