import type { Request } from 'express';

/** A request body read in full, or how much of it was too much. */
export type ReadBody = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'parsed'; readonly value: unknown } | { readonly kind: 'too-large'; readonly drained: boolean };

/**
 * Reads the whole body, keeping at most `limit` bytes. A larger body is drained (and discarded)
 * up to `drainLimit`, so the caller can still answer after it has been received; beyond that,
 * reading stops. A body already parsed by an earlier middleware is returned as such.
 */
export function readBody(req: Request, limit: number, drainLimit: number): Promise<ReadBody> {
  if ((req as { _body?: boolean })._body || req.readableEnded) return Promise.resolve({ kind: 'parsed', value: req.body });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: ReadBody) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.off('close', onEnd);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
      if (size > drainLimit) {
        req.pause();
        done({ kind: 'too-large', drained: false });
      }
    };
    const onEnd = () => done(size > limit ? { kind: 'too-large', drained: true } : { kind: 'text', text: Buffer.concat(chunks).toString('utf8') });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onEnd);
    // A client that goes away mid-body: resolve anyway, the answer is simply not delivered.
    req.on('close', onEnd);
  });
}
