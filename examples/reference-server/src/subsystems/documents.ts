import type { Router } from 'express';
import { createFsDriveStore, type DriveStore } from '@aikb/core/drive';
import type { ServerContext } from '../context';
import { createPostgresDocumentFileStore, type DocumentFileStore } from '../documents/document-store';
import { documentRoutes } from '../documents/routes';
import { createDocumentService, type DocumentService } from '../documents/service';
import type { Subsystem } from '../lifecycle';

/** What the documents subsystem gives the app (`ctx.documents`). */
export interface DocumentsSubsystem {
  readonly drive: DriveStore;
  readonly files: DocumentFileStore;
  readonly service: DocumentService;
  /** `POST /documents/upload`, `DELETE /documents/:id`: mount under `/api` behind `requireUser`. */
  readonly routes: Router;
}

type DocumentsNeeds = Pick<ServerContext, 'config' | 'logger' | 'infra' | 'status' | 'meter' | 'flags' | 'sagas' | 'search'>;

/**
 * Document uploads: files in the file-system Drive (`DRIVE_DIR`), rows in `aikb_document_files`,
 * text in the search index, written by the `document_upload` saga (or directly, with
 * `priority_2_1_saga_pattern` off for the user) and removed by the `document_delete` saga.
 * Status under `documents` in the system status; metrics `aikb_documents_*`.
 */
async function startDocuments(ctx: DocumentsNeeds): Promise<{ documents: DocumentsSubsystem }> {
  const { config, logger, infra } = ctx;
  const drive = createFsDriveStore({ root: config.driveDir, maxObjectBytes: config.uploadMaxBytes, logger });
  const files = createPostgresDocumentFileStore({ pool: infra.db.pool });
  const service = createDocumentService({
    drive,
    files,
    search: ctx.search.store,
    runner: ctx.sagas.runner,
    register: (definition, options) => ctx.sagas.register(definition, options),
    flags: ctx.flags,
    meter: ctx.meter,
    logger,
    maxBytes: config.uploadMaxBytes,
    driveTimeoutMs: config.http.requestTimeoutMs,
    searchUnavailable: ctx.search.unavailable,
    hooks: config.testHooks,
  });
  if (config.testHooks) logger.warn({ testHooks: config.testHooks }, 'AIKB_TEST_HOOKS=1: uploads block or fail on purpose (tests only)');
  ctx.status.register('documents', () => ({ ...service.stats(), drive: drive.stats() }));
  return { documents: { drive, files, service, routes: documentRoutes({ service, maxBytes: config.uploadMaxBytes }) } };
}

/** The documents subsystem: provides `documents`. Nothing to close (the sagas and the pool close with their own subsystems). */
export const documentsSubsystem: Subsystem<DocumentsNeeds, { documents: DocumentsSubsystem }> = {
  name: 'documents',
  start: startDocuments,
};
