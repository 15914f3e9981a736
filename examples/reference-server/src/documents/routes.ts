import { Router, type Request, type Response } from 'express';
import { ValidationError } from '@aikb/core';
import { requirePrincipal } from '@aikb/express';
import type { DocumentService } from './service';
import { readUploadForm, type UploadForm } from './upload-form';

const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;

/** The `Idempotency-Key` header, checked: 1 to 255 printable ASCII characters. */
function idempotencyKey(req: Request): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !IDEMPOTENCY_KEY.test(raw))
    throw new ValidationError('Idempotency-Key', 'the Idempotency-Key header must be 1 to 255 printable ASCII characters');
  return raw;
}

/** An answer sent before the request was read to its end: the connection is closed after it, so the rest is never read. */
function stopReading(req: Request, res: Response, form?: UploadForm): void {
  if (req.complete) return;
  form?.abandon();
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
      form = await readUploadForm(req, { maxBytes });
      const { document, replayed } = await service.upload(principal, { ...form, idempotencyKey: key });
      if (replayed) {
        stopReading(req, res, form);
        res.setHeader('Idempotent-Replayed', 'true');
      }
      res.status(201).json(document);
    } catch (error) {
      if (!form) service.rejected(service.pathFor(principal));
      stopReading(req, res, form);
      throw error;
    }
  });
  router.delete('/documents/:id', async (req, res) => {
    await service.delete(requirePrincipal(req), req.params.id);
    res.status(204).end();
  });
  return router;
}
