import { Router, type Request, type Response } from 'express';
import { AikbError, ValidationError } from '@aikb/core';
import { requirePrincipal } from '@aikb/express';
import type { DocumentService } from './service';
import { maxFormBytes, readUploadForm, type UploadForm } from './upload-form';

const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;

/** The `Idempotency-Key` header, checked: 1 to 255 printable ASCII characters. */
function idempotencyKey(req: Request): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !IDEMPOTENCY_KEY.test(raw))
    throw new ValidationError('Idempotency-Key', 'the Idempotency-Key header must be 1 to 255 printable ASCII characters');
  return raw;
}

/** The request's declared `Content-Length`, or NaN without one. */
const declaredLength = (req: Request): number => Number(req.headers['content-length']);

/** A refused or replayed upload whose declared body is at most this (and the upload limit) is read to its end. */
const DRAIN_BYTES = 1024 * 1024;

/**
 * An answer sent before the request was read to its end. A small body with a declared length is
 * read to its end and dropped: its client, still sending, gets the answer instead of a broken pipe,
 * and the connection stays usable. Any other is never read further: the connection is closed
 * after the answer (a 413 does not read the rest of an oversized file).
 */
function stopReading(req: Request, res: Response, maxBytes: number, form?: UploadForm): void {
  if (req.complete) return;
  form?.abandon();
  const declared = declaredLength(req);
  if (Number.isSafeInteger(declared) && declared <= Math.min(DRAIN_BYTES, maxBytes)) {
    req.resume();
    return;
  }
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

/**
 * `POST /documents/upload` and `DELETE /documents/:id`, for the user router (mounted under `/api`
 * behind `requireUser`: no body is read before the caller is known).
 */
export function documentRoutes({ service, maxBytes }: { service: DocumentService; maxBytes: number }): Router {
  const router = Router();
  router.post('/documents/upload', async (req, res) => {
    const principal = requirePrincipal(req);
    let form: UploadForm | undefined;
    try {
      const key = idempotencyKey(req);
      const declared = declaredLength(req);
      if (declared > maxFormBytes(maxBytes)) {
        throw new AikbError('PAYLOAD_TOO_LARGE', `the upload declares ${declared} bytes; a file may have ${maxBytes} (UPLOAD_MAX_BYTES)`, {
          details: { field: 'body', limit: maxBytes },
        });
      }
      form = await readUploadForm(req, { maxBytes });
      const { document, replayed } = await service.upload(principal, { ...form, idempotencyKey: key });
      if (replayed) {
        stopReading(req, res, maxBytes, form);
        res.setHeader('Idempotent-Replayed', 'true');
      }
      res.status(201).json(document);
    } catch (error) {
      if (!form) service.rejected(service.pathFor(principal));
      stopReading(req, res, maxBytes, form);
      throw error;
    }
  });
  router.delete('/documents/:id', async (req, res) => {
    await service.delete(requirePrincipal(req), req.params.id);
    res.status(204).end();
  });
  return router;
}
