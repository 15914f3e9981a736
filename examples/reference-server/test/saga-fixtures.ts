import pg from 'pg';
import { createPostgresSagaLog } from '@aikb/core/saga';

/**
 * Writes to the server's database a document upload saga (of a version the server lacks) as a crashed instance leaves it: the
 * upload to Drive done, the rows failed, the Drive delete failed (`compensation_failed`, steps
 * `action drive succeeded`, `action rows failed`, `compensation drive failed`).
 */
export async function writeCompensationFailedUpload(databaseUrl: string, id: string, idempotencyKey: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const log = createPostgresSagaLog({ pool });
    const lease = { owner: 'crashed', nowMs: Date.now(), leaseExpiresAtMs: Date.now() + 60_000 };
    await log.create({
      id,
      // A version this server does not have (it registers document_upload v1, whose retry would
      // run): an operator's retry is refused until the definition exists, so it stays failed.
      name: 'document_upload',
      version: 99,
      idempotencyKey,
      policy: 'compensate',
      input: { path: 'q3.pdf' },
      ...lease,
      firstStep: 'drive',
    });
    await log.finishStep(id, { ...lease, index: 0, phase: 'action', status: 'succeeded', output: { fileId: 'f1' } });
    await log.startStep(id, { ...lease, index: 1, name: 'rows', phase: 'action' });
    const error = { type: 'Error', message: 'rows failed', step: 'rows' };
    await log.finishStep(id, { ...lease, index: 1, phase: 'action', status: 'failed', error, transition: { from: 'running', to: 'compensating', error } });
    await log.startStep(id, { ...lease, index: 0, name: 'drive', phase: 'compensation' });
    const failed = { type: 'SagaCompensationError', message: 'Failed to delete from Drive', step: 'drive' };
    await log.finishStep(id, {
      ...lease,
      index: 0,
      phase: 'compensation',
      status: 'failed',
      error: { type: 'Error', message: 'Failed to delete from Drive', step: 'drive' },
      transition: { from: 'compensating', to: 'compensation_failed', error: failed },
    });
  } finally {
    await pool.end();
  }
}
