import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import type { Request } from 'express';
import { AikbError, ValidationError } from '@aikb/core';

/**
 * A request body read in full, or why it was not: `too-large` (a 413 error, carrying the limit)
 * when it, or what it inflates to, is over the limit; `invalid` (a 400 naming `body`, or a 415
 * for a content coding this server does not decode, or the caller's own refusal) when it is not
 * taken. `drained` tells whether the whole body was received (else the connection should be
 * closed after answering).
 */
export type ReadBody =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'too-large'; readonly drained: boolean; readonly error: AikbError }
  | { readonly kind: 'invalid'; readonly drained: boolean; readonly error: AikbError };

/** The content codings {@link readBody} decodes; `identity` means none. */
export const BODY_ENCODINGS = ['identity', 'gzip', 'x-gzip', 'deflate', 'br'] as const;

function decoderFor(coding: string): Transform | undefined {
  if (coding === 'gzip' || coding === 'x-gzip') return createGunzip();
  if (coding === 'deflate') return createInflate();
  if (coding === 'br') return createBrotliDecompress();
  return undefined;
}

/** The one coding named by `Content-Encoding` (`identity` when absent), or `undefined` for anything this server does not decode. */
function codingOf(header: string | undefined): string | undefined {
  const codings = (header ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return 'identity';
  // One coding at most: a chain (`gzip, br`) multiplies the work a small body can ask for.
  return codings.length === 1 && (BODY_ENCODINGS as readonly string[]).includes(codings[0]!) ? codings[0] : undefined;
}

function tooLarge(limit: number, drained: boolean): ReadBody {
  return {
    kind: 'too-large',
    drained,
    error: new AikbError('PAYLOAD_TOO_LARGE', `the request body is larger than ${limit} bytes`, { details: { field: 'body', limit } }),
  };
}

const unsupportedCoding = (drained: boolean): ReadBody => ({
  kind: 'invalid',
  drained,
  error: new AikbError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding must be one of ${BODY_ENCODINGS.join(', ')} (one coding at most)`, {
    details: { field: 'Content-Encoding' },
  }),
});

/**
 * Reads the whole body, keeping at most `limit` bytes, after undoing its `Content-Encoding`
 * (gzip, deflate or br; identity when absent). `limit` bounds both the bytes received and the
 * bytes they inflate to, so a decompression bomb stops at `limit`: inflating is abandoned there
 * and the rest is drained unread. A body over `limit` is `too-large` whatever else is wrong with
 * it (a refused type or coding, data that does not decode). It is drained (and discarded) up to `drainLimit`,
 * so the caller can still answer after it has been received; beyond that, reading stops. A body
 * that does not decode (bad or truncated gzip, ...) is `invalid` with a 400; another coding is
 * `invalid` with a 415, answered without decoding anything; so is a body the caller already
 * refuses (`refusal`: a wrong `Content-Type`), drained unread. The stream must not have been read
 * yet: the caller checks that.
 */
export function readBody(req: Request, limit: number, drainLimit: number, refusal?: AikbError): Promise<ReadBody> {
  const header = req.headers['content-encoding'];
  const coding = codingOf(typeof header === 'string' ? header : undefined);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let settled = false;
    // Once set, the body is only drained: the answer no longer depends on what follows.
    let outcome: ((drained: boolean) => ReadBody) | undefined = refusal
      ? (drained) => ({ kind: 'invalid', drained, error: refusal })
      : coding === undefined
        ? unsupportedCoding
        : undefined;
    const decoder = outcome || coding === undefined ? undefined : decoderFor(coding);
    const oversize = (drained: boolean) => tooLarge(limit, drained);

    const finish = (result: ReadBody) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      decoder?.destroy();
      resolve(result);
    };
    const stopDecoding = (why: (drained: boolean) => ReadBody) => {
      outcome ??= why;
      chunks.length = 0;
      decoder?.destroy();
      // Everything was received already (the decoder lags behind): answer now.
      if (req.readableEnded) finish(outcome(true));
    };
    const keep = (chunk: Buffer) => {
      decoded += chunk.length;
      if (decoded > limit) stopDecoding(oversize);
      else chunks.push(chunk);
    };
    const text = (): ReadBody => ({ kind: 'text', text: Buffer.concat(chunks).toString('utf8') });

    decoder?.on('data', (chunk: Buffer) => {
      if (!outcome) keep(chunk);
    });
    decoder?.on('error', () => {
      stopDecoding((drained) => ({
        kind: 'invalid',
        drained,
        error: new ValidationError('body', `the request body is not valid ${coding} data (Content-Encoding: ${coding})`),
      }));
    });
    decoder?.on('end', () => {
      if (req.readableEnded) finish(outcome ? outcome(true) : text());
    });

    const onData = (chunk: Buffer) => {
      received += chunk.length;
      // Over the limit is a 413 whatever else is wrong with the body (its type, its coding): the
      // size is what the client must change first. What is received is bounded by `limit` too: a
      // compressed body is never larger than it inflates to, in practice.
      if (received > limit && outcome !== oversize) {
        outcome = undefined;
        stopDecoding(oversize);
      }
      if (received > drainLimit) {
        req.pause();
        // A drain limit below `limit` (a caller's choice) ends reading before the body is oversized.
        finish((outcome ?? oversize)(false));
        return;
      }
      if (outcome) return;
      if (decoder) decoder.write(chunk);
      else keep(chunk);
    };
    const onEnd = () => {
      if (outcome || !decoder) finish(outcome ? outcome(true) : text());
      // The decoder's own 'end' (or 'error', for a truncated stream) finishes.
      else decoder.end();
    };
    // A client that goes away mid-body: resolve anyway, the answer is simply not delivered.
    const onAbort = () => {
      // 'close' also follows a complete body: then the decoder's 'end' finishes.
      if (req.complete && req.readableEnded) return;
      finish(
        (outcome ?? ((drained) => ({ kind: 'invalid', drained, error: new ValidationError('body', 'the request body was not received in full') })))(false),
      );
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}
