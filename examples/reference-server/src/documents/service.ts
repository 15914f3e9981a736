import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Meter } from '@opentelemetry/api';
import { AikbError, NotFoundError, UnavailableError, ValidationError, type AikbErrorCode, type Logger, type Principal } from '@aikb/core';
import type { DriveStore } from '@aikb/core/drive';
import type { FeatureFlagClient } from '@aikb/core/flags';
import type { SagaDefinition, SagaOutcome, SagaRunner } from '@aikb/core/saga';
import type { SearchStore } from '@aikb/core/search';
import { statusForCode } from '@aikb/express';
import type { TestHooks } from '../config';
import { defineDeleteSaga } from './delete-saga';
import type { DocumentFileStore } from './document-store';
import type { UploadFields } from './upload-form';
import { createUploadSteps, defineUploadSaga, driveKeyFor, type PendingUpload, type UploadInput } from './upload-saga';

/** Uploads go through the saga when this flag is on for the user (runbook: priority 2.1). */
export const SAGA_FLAG = 'priority_2_1_saga_pattern';
/** The endpoints the sagas run for: the `endpoint` of the runbook's log line and of the error metrics. */
export const UPLOAD_ENDPOINT = '/api/documents/upload';
export const DELETE_ENDPOINT = '/api/documents/:id';

/** How an upload ended, as counted in `aikb_documents_uploads_total{outcome}` (a closed set). */
export type UploadOutcome = 'created' | 'replayed' | 'rejected' | 'undone' | 'failed' | 'in_progress' | 'compensation_failed';
export const UPLOAD_OUTCOMES: readonly UploadOutcome[] = ['created', 'replayed', 'rejected', 'undone', 'failed', 'in_progress', 'compensation_failed'];
/** Which path an upload took: the saga, or the flag-off direct path. */
export type UploadPath = 'saga' | 'direct';
/** What the flag-off path can leave behind, as counted in `aikb_documents_orphans_total{resource}`. */
export type OrphanResource = 'drive_file' | 'document_row';
/** How a delete ended. */
export type DeleteOutcome = 'deleted' | 'not_found' | 'forbidden' | 'undone' | 'failed';
const DELETE_OUTCOMES: readonly DeleteOutcome[] = ['deleted', 'not_found', 'forbidden', 'undone', 'failed'];

/** The 201 answer of an upload. */
export interface UploadedDocument {
  readonly id: string;
  readonly title: string;
  /** `null` on the flag-off path (no saga). */
  readonly sagaId: string | null;
  readonly chunks: number;
  readonly bytes: number;
  readonly contentType: string;
}

/** An upload's request, parsed: the fields and the file's stream. */
export interface UploadRequest extends UploadFields {
  readonly filename: string | null;
  readonly declaredType: string | null;
  readonly body: Readable;
  /** The `Idempotency-Key` header, checked. */
  readonly idempotencyKey: string | undefined;
}

/** What the documents service works on. */
export interface DocumentServiceDeps {
  readonly drive: DriveStore;
  readonly files: DocumentFileStore;
  readonly search: SearchStore;
  readonly runner: SagaRunner;
  /** Registers a definition with its endpoint (`ctx.sagas.register`), so recovery can finish it. */
  readonly register: (definition: SagaDefinition<never, never>, options: { endpoint: string }) => void;
  readonly flags: Pick<FeatureFlagClient, 'isEnabled'>;
  readonly meter: Meter;
  readonly logger: Logger;
  /** `UPLOAD_MAX_BYTES`. */
  readonly maxBytes: number;
  /** How long step 1 may take to receive a file (the HTTP request timeout). */
  readonly driveTimeoutMs: number;
  /** Why search cannot take a document now (`undefined` when it can): uploads and deletes are then 503 before anything is written. */
  readonly searchUnavailable: () => string | undefined;
  readonly hooks?: TestHooks | undefined;
  /**
   * How long one attempt of the `rows` and `index` steps (and each compensation) may take.
   * @default 30000
   */
  readonly stepTimeoutMs?: number;
}

/** Counts since start, for the system status. */
export interface DocumentStats {
  readonly uploads: Readonly<Record<UploadPath, Readonly<Record<UploadOutcome, number>>>>;
  readonly deletes: Readonly<Record<DeleteOutcome, number>>;
  /** What the flag-off path left behind (`aikb-server drive check` lists them). */
  readonly orphans: Readonly<Record<OrphanResource, number>>;
  /** Undone or not fully undone saga uploads over saga uploads that ran (the runbook's target: under 1 %). */
  readonly compensationRate: number;
  readonly compensationRateTarget: number;
  readonly receiving: number;
}

/** Uploads and deletes of documents: the sagas, the flag-off path, and their counts. */
export interface DocumentService {
  /** Checks who may be granted access (see {@link checkGrant}), then stores, rows and indexes the file. */
  upload(principal: Principal, request: UploadRequest): Promise<{ readonly document: UploadedDocument; readonly replayed: boolean }>;
  /** Deletes a document (its owner or an admin). @throws {NotFoundError} when absent (or invisible to the caller) */
  delete(principal: Principal, id: string): Promise<void>;
  /** Counts a request refused before anything was stored. */
  rejected(path: UploadPath): void;
  /** The path `principal`'s uploads take now. */
  pathFor(principal: Principal): UploadPath;
  stats(): DocumentStats;
}

const isAdmin = (principal: Principal) => principal.roles.includes('admin');

/**
 * Who may be granted access by an upload: an admin, anyone; anyone else, only themselves
 * (`user:<own id>`) and their own roles (`role:<a role they have>`); `public` and other users and
 * roles are refused.
 * @throws {AikbError} `PERMISSION_DENIED` (403) naming the first principal refused
 */
export function checkGrant(principal: Principal, acl: readonly string[]): void {
  if (isAdmin(principal)) return;
  for (const entry of acl) {
    const own = entry === `user:${principal.userId}` || (entry.startsWith('role:') && principal.roles.includes(entry.slice(5)));
    if (!own)
      throw new AikbError('PERMISSION_DENIED', `you may not grant access to ${entry}: only to yourself (user:${principal.userId}) and your own roles`, {
        details: { field: 'acl', principal: entry },
      });
  }
}

/** The document id and saga key of an upload with an `Idempotency-Key`: the same for a retry by the same user. */
export function idempotentIds(userId: string, key: string): { documentId: string; sagaKey: string } {
  const hash = createHash('sha256').update(`${userId}\u0000${key}`).digest('hex');
  // A UUID-shaped id (version 8: custom) from the hash; the saga key fits the runner's 200 characters.
  const documentId = `${hash.slice(0, 8)}-${hash.slice(8, 12)}-8${hash.slice(13, 16)}-${((parseInt(hash[16]!, 16) & 0x3) | 0x8).toString(16)}${hash.slice(17, 20)}-${hash.slice(20, 32)}`;
  return { documentId, sagaKey: `upload:${hash}` };
}

/** A code whose answer is a 4xx (an unknown code, a driver's, maps like `INTERNAL`). */
const isClientCode = (code: string): boolean => statusForCode(code as AikbErrorCode) < 500;
const isClientError = (error: unknown): error is AikbError => error instanceof AikbError && isClientCode(error.code);

function inProgress(): AikbError {
  return new AikbError('FAILED_PRECONDITION', 'an upload with this Idempotency-Key is still in progress: retry in a few seconds', {
    details: { field: 'Idempotency-Key', retryAfterSeconds: 5 },
  });
}

/**
 * This request's saga was stopped by the runner closing (the server shuts down): its lease is
 * released, so recovery (on another instance, or on this one once restarted) undoes it at once.
 */
function interruptedByShutdown(sagaId: string): AikbError {
  return new AikbError(
    'UNAVAILABLE',
    'the server shut down during this upload: it will be undone by recovery and nothing is kept; upload the file again (with a new Idempotency-Key if you sent one)',
    { details: { sagaId, interrupted: true, retryAfterSeconds: 5 } },
  );
}

/** {@link DocumentService} over `deps`; registers both sagas. */
export function createDocumentService(deps: DocumentServiceDeps): DocumentService {
  const { drive, files, search, runner, flags, logger } = deps;
  const pending = new Map<string, PendingUpload>();
  const steps = createUploadSteps({ drive, files, search, maxBytes: deps.maxBytes, pending, hooks: deps.hooks });
  const uploadSaga = defineUploadSaga(steps, { driveTimeoutMs: deps.driveTimeoutMs, stepTimeoutMs: deps.stepTimeoutMs ?? 30_000 });
  const deleteSaga = defineDeleteSaga({ drive, files, search });
  deps.register(uploadSaga as unknown as SagaDefinition<never, never>, { endpoint: UPLOAD_ENDPOINT });
  deps.register(deleteSaga as unknown as SagaDefinition<never, never>, { endpoint: DELETE_ENDPOINT });

  const uploadCounter = deps.meter.createCounter('aikb.documents.uploads', {
    description: 'Document uploads, by outcome and path (saga, or direct with the flag off).',
  });
  const deleteCounter = deps.meter.createCounter('aikb.documents.deletes', { description: 'Document deletes, by outcome.' });
  const orphanCounter = deps.meter.createCounter('aikb.documents.orphans', {
    description: 'Files and rows a failed flag-off (direct) upload left behind: the saga path leaves none.',
  });
  const counts: Record<UploadPath, Record<UploadOutcome, number>> = {
    saga: Object.fromEntries(UPLOAD_OUTCOMES.map((o) => [o, 0])) as Record<UploadOutcome, number>,
    direct: Object.fromEntries(UPLOAD_OUTCOMES.map((o) => [o, 0])) as Record<UploadOutcome, number>,
  };
  const deletes = Object.fromEntries(DELETE_OUTCOMES.map((o) => [o, 0])) as Record<DeleteOutcome, number>;
  const orphans: Record<OrphanResource, number> = { drive_file: 0, document_row: 0 };
  // Every series from the start, at 0, so a dashboard sees the rate before the first failure.
  for (const path of ['saga', 'direct'] as const) for (const outcome of UPLOAD_OUTCOMES) uploadCounter.add(0, { outcome, path });
  for (const outcome of DELETE_OUTCOMES) deleteCounter.add(0, { outcome });
  for (const resource of ['drive_file', 'document_row'] as const) orphanCounter.add(0, { resource });

  const count = (path: UploadPath, outcome: UploadOutcome) => {
    counts[path][outcome] += 1;
    uploadCounter.add(1, { outcome, path });
  };
  const countDelete = (outcome: DeleteOutcome) => {
    deletes[outcome] += 1;
    deleteCounter.add(1, { outcome });
  };
  const orphaned = (resource: OrphanResource, input: UploadInput) => {
    orphans[resource] += 1;
    orphanCounter.add(1, { resource });
    logger.warn(
      { documentId: input.documentId, driveKey: input.driveKey, resource },
      `documents: the flag-off upload path left a ${resource} behind (aikb-server drive check lists it)`,
    );
  };
  const ensureSearch = () => {
    const reason = deps.searchUnavailable();
    if (reason !== undefined) throw new UnavailableError(`documents cannot be uploaded or deleted now: ${reason}`);
  };

  async function viaSaga(input: UploadInput, body: Readable, sagaKey: string | undefined) {
    const entry: PendingUpload = { body };
    pending.set(input.documentId, entry);
    let outcome: SagaOutcome;
    try {
      outcome = await runner.run(uploadSaga, input, sagaKey === undefined ? {} : { idempotencyKey: sagaKey });
    } catch (error) {
      count('saga', 'rejected');
      if (error instanceof ValidationError && error.field === 'idempotencyKey')
        throw new AikbError('UNPROCESSABLE_CONTENT', 'Idempotency-Key reused with a different request (another title, acl or file name): use a new key', {
          details: { field: 'Idempotency-Key' },
        });
      throw error;
    } finally {
      pending.delete(input.documentId);
    }
    // Step 1 took the file: this request ran the saga. Otherwise it found the key's earlier one.
    const ran = entry.body === undefined;
    if (!ran) body.destroy();
    switch (outcome.state) {
      case 'completed': {
        const { drive: stored, index } = outcome.outputs as unknown as { drive: { bytes: number; contentType: string }; index: { chunks: number } };
        count('saga', ran ? 'created' : 'replayed');
        const document = {
          id: input.documentId,
          title: input.title,
          sagaId: outcome.id,
          chunks: index.chunks,
          bytes: stored.bytes,
          contentType: stored.contentType,
        };
        return { document, replayed: !ran };
      }
      case 'running':
      case 'compensating':
        count('saga', 'in_progress');
        if (runner.stats().closed) throw interruptedByShutdown(outcome.id);
        throw inProgress();
      case 'compensation_failed':
        count('saga', 'compensation_failed');
        if (ran) throw outcome.compensationError;
        throw new AikbError('INTERNAL', `this upload failed and could not be fully undone: an operator must resolve saga ${outcome.id}`, {
          details: { sagaId: outcome.id },
        });
      case 'parked':
        count('saga', 'compensation_failed');
        throw new AikbError('INTERNAL', `this upload waits for an operator (saga ${outcome.id} is parked)`, { details: { sagaId: outcome.id } });
      default: {
        count('saga', 'undone');
        const cause = entry.error;
        if (!ran) {
          // Only words of a refusal reach the client; a server-side cause stays in the saga log.
          const code = outcome.error?.code;
          const why = code !== undefined && isClientCode(code) ? outcome.error!.message : 'a failure or restart on the server';
          throw new AikbError(
            'FAILED_PRECONDITION',
            `this upload failed and was undone (${why}); nothing was stored: upload the file again with a new Idempotency-Key`,
            { details: { field: 'Idempotency-Key', sagaId: outcome.id, undone: true } },
          );
        }
        if (isClientError(cause)) throw new AikbError(cause.code, cause.message, { details: { ...cause.details, sagaId: outcome.id, undone: true } });
        const timedOut = (cause instanceof AikbError ? cause.code : outcome.error?.code) === 'DEADLINE_EXCEEDED';
        throw new AikbError(
          timedOut ? 'DEADLINE_EXCEEDED' : 'UNAVAILABLE',
          'the upload failed and was undone; nothing was stored: try again later (with a new Idempotency-Key)',
          { details: { sagaId: outcome.id, step: outcome.error?.step ?? null, undone: true } },
        );
      }
    }
  }

  /** The flag-off path: the same steps in order, no log, no compensation for an outage. */
  async function direct(input: UploadInput, body: Readable) {
    pending.set(input.documentId, { body });
    const done: Array<'drive' | 'rows'> = [];
    try {
      const stored = await steps.drive(input);
      done.push('drive');
      await steps.rows(input, stored, null);
      done.push('rows');
      const { chunks } = await steps.index(input, stored);
      count('direct', 'created');
      return {
        document: { id: input.documentId, title: input.title, sagaId: null, chunks, bytes: stored.bytes, contentType: stored.contentType },
        replayed: false,
      };
    } catch (error) {
      if (isClientError(error)) {
        // Bad input changes nothing on this path either: what this request wrote is deleted inline.
        count('direct', 'undone');
        for (const step of done.reverse()) {
          try {
            await (step === 'rows' ? steps.undoRows(input) : steps.undoDrive(input));
          } catch {
            orphaned(step === 'rows' ? 'document_row' : 'drive_file', input);
          }
        }
      } else {
        // No log, no compensation: what was written stays, counted (the saga exists to avoid this).
        count('direct', 'failed');
        for (const step of done) orphaned(step === 'rows' ? 'document_row' : 'drive_file', input);
      }
      throw error;
    } finally {
      pending.delete(input.documentId);
    }
  }

  const pathFor = (principal: Principal): UploadPath => (flags.isEnabled(SAGA_FLAG, { userId: principal.userId }, true) ? 'saga' : 'direct');
  return {
    pathFor,
    rejected: (path) => count(path, 'rejected'),
    async upload(principal, request) {
      const path = pathFor(principal);
      const acl = request.acl ?? [`user:${principal.userId}`];
      try {
        checkGrant(principal, acl);
        ensureSearch();
      } catch (error) {
        count(path, 'rejected');
        throw error;
      }
      const ids =
        request.idempotencyKey === undefined ? { documentId: randomUUID(), sagaKey: undefined } : idempotentIds(principal.userId, request.idempotencyKey);
      if (pending.has(ids.documentId)) {
        count(path, 'in_progress');
        throw inProgress();
      }
      const input: UploadInput = {
        documentId: ids.documentId,
        ownerId: principal.userId,
        title: request.title,
        acl,
        filename: request.filename,
        declaredType: request.declaredType,
        driveKey: driveKeyFor(ids.documentId),
      };
      return path === 'saga' ? viaSaga(input, request.body, ids.sagaKey) : direct(input, request.body);
    },
    async delete(principal, id) {
      const row = await files.get(id);
      if (!row) {
        countDelete('not_found');
        throw new NotFoundError(`no document ${id}`, { key: id });
      }
      if (row.ownerId !== principal.userId && !isAdmin(principal)) {
        // Someone who can read it learns they may not delete it; anyone else, that it does not exist.
        const visible = await search.getDocument(principal, id).catch(() => undefined);
        countDelete(visible ? 'forbidden' : 'not_found');
        if (visible) throw new AikbError('PERMISSION_DENIED', 'only the owner of a document or an admin may delete it', { details: { field: 'id' } });
        throw new NotFoundError(`no document ${id}`, { key: id });
      }
      ensureSearch();
      const outcome = await runner.run(deleteSaga, { documentId: id });
      switch (outcome.state) {
        case 'completed':
          countDelete('deleted');
          return;
        case 'compensation_failed':
          countDelete('failed');
          throw outcome.compensationError;
        default:
          countDelete('undone');
          throw new AikbError('UNAVAILABLE', 'the delete failed and was undone; the document is unchanged: try again later', {
            details: { sagaId: outcome.id },
          });
      }
    },
    stats() {
      const ran = UPLOAD_OUTCOMES.filter((o) => o === 'created' || o === 'undone' || o === 'compensation_failed').reduce((sum, o) => sum + counts.saga[o], 0);
      const failed = counts.saga.undone + counts.saga.compensation_failed;
      return {
        uploads: { saga: { ...counts.saga }, direct: { ...counts.direct } },
        deletes: { ...deletes },
        orphans: { ...orphans },
        compensationRate: ran === 0 ? 0 : failed / ran,
        compensationRateTarget: 0.01,
        receiving: pending.size,
      };
    },
  };
}
