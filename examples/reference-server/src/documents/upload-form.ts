import { Readable } from 'node:stream';
import type { Request } from 'express';
import busboy from 'busboy';
import { AikbError, ValidationError } from '@aikb/core';

/** The most principals an upload's `acl` may name. */
export const MAX_ACL_ENTRIES = 100;
/** The longest title, in characters (the search store's limit). */
export const MAX_TITLE_CHARS = 1000;
/** The largest text field (`title`, `acl`), in bytes. */
const MAX_FIELD_BYTES = 64 * 1024;
const MAX_FIELDS = 8;

/**
 * The most bytes a form holding a file of `maxBytes` can take on the wire: the file, every field at
 * its limit, and 64 KiB for boundaries and part headers. A declared `Content-Length` over it is a
 * 413 before anything is read, whatever the body's type.
 */
export function maxFormBytes(maxBytes: number): number {
  return maxBytes + MAX_FIELDS * MAX_FIELD_BYTES + 64 * 1024;
}
const PRINCIPAL = /^(?:public|user:[^\s\p{Cc}]{1,200}|role:[^\s\p{Cc}]{1,200})$/u;

/** The fields of an upload, read before its file. */
export interface UploadFields {
  readonly title: string;
  /** As sent; `undefined` when the form had no `acl` (the route applies the default). */
  readonly acl: readonly string[] | undefined;
}

/** A multipart upload whose fields were read and whose file part has just begun. */
export interface UploadForm extends UploadFields {
  readonly filename: string | null;
  /** The part's `Content-Type`: a hint between plain text and Markdown, never trusted. */
  readonly declaredType: string | null;
  /**
   * The file's bytes, then the check of the rest of the form: it fails (with a 400 naming the
   * rule) when a second file or a field follows the file, or the form is malformed or cut short,
   * so a store that writes atomically keeps nothing of such a request.
   */
  readonly body: Readable;
  /** Stops reading the request (after a refusal): the route must then answer with `Connection: close`. */
  abandon(): void;
}

const fileLast = () => new ValidationError('file', 'the file must be the last part of the form: send title and acl before file (curl -F in that order)');

function parseAcl(raw: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ValidationError('acl', 'acl must be a JSON array of principals, such as ["role:eng","user:42"]');
  }
  if (!Array.isArray(parsed)) throw new ValidationError('acl', 'acl must be a JSON array of principals, such as ["role:eng","user:42"]');
  if (parsed.length > MAX_ACL_ENTRIES) throw new ValidationError('acl', `acl may name at most ${MAX_ACL_ENTRIES} principals`);
  for (const entry of parsed) {
    if (typeof entry !== 'string' || !PRINCIPAL.test(entry))
      throw new ValidationError('acl', `acl entries must be "public", "user:<id>" or "role:<name>" (got ${JSON.stringify(entry)?.slice(0, 100)})`);
  }
  return [...new Set(parsed as string[])];
}

function checkTitle(raw: string): string {
  const title = raw.trim();
  if (title === '') throw new ValidationError('title', 'title must not be empty');
  if (title.length > MAX_TITLE_CHARS || /\p{Cc}/u.test(title))
    throw new ValidationError('title', `title must be at most ${MAX_TITLE_CHARS} characters, without control characters`);
  return title;
}

/**
 * Reads a `multipart/form-data` upload with busboy, streaming: `title` and `acl` first (each
 * checked as it arrives), then exactly one part named `file`, last. Resolves as soon as the file
 * part begins, before any of its bytes are read; rejects with a 400 (or 415 for another content
 * type) naming the field or rule, having read no file.
 */
export function readUploadForm(req: Request, { maxBytes }: { maxBytes: number }): Promise<UploadForm> {
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      limits: { fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES, fieldNameSize: 100, files: 1, fileSize: maxBytes + 1, parts: 10, headerPairs: 20 },
    });
  } catch {
    return Promise.reject(
      new AikbError('UNSUPPORTED_MEDIA_TYPE', 'send the upload as multipart/form-data with the fields title and acl, then file', {
        details: { field: 'body' },
      }),
    );
  }
  const fields = new Map<string, string>();
  let fileSeen = false;
  let settled = false;
  let afterFile: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const rest = new Promise<void>((resolve, reject) => (afterFile = { resolve, reject }));
  rest.catch(() => undefined);

  // Reads no more of the request: the route answers with `Connection: close`, so what the client
  // still sends is never read (a 413 does not read the rest of an oversized file).
  const abandon = () => {
    req.unpipe(bb);
    req.pause();
    bb.removeAllListeners('file');
    bb.destroy();
  };

  return new Promise<UploadForm>((resolve, reject) => {
    const fail = (error: Error) => {
      if (!settled) {
        settled = true;
        abandon();
        reject(error);
      } else {
        afterFile?.reject(error);
      }
    };
    bb.on('field', (name, value, info) => {
      if (fileSeen) return fail(fileLast());
      if (name !== 'title' && name !== 'acl')
        return fail(new ValidationError(name || 'body', `unknown field "${name.slice(0, 100)}": the form takes title, acl and file`));
      if (fields.has(name)) return fail(new ValidationError(name, `${name} was sent twice`));
      if (info.valueTruncated) return fail(new ValidationError(name, `${name} is longer than ${MAX_FIELD_BYTES} bytes`));
      fields.set(name, value);
    });
    bb.on('file', (name, stream, info) => {
      // Destroying busboy (a refusal, a client gone) fails its file stream: whoever reads it sees
      // the error; one nobody reads must not crash the process with an unhandled 'error'.
      stream.on('error', () => undefined);
      if (fileSeen) {
        stream.resume();
        return fail(new ValidationError('file', 'send one file per upload'));
      }
      fileSeen = true;
      // One byte over the limit, busboy would read and discard the rest of the part: stop reading
      // the socket instead (the inspector refuses the file with 413 on the bytes it has).
      stream.once('limit', () => {
        req.unpipe(bb);
        req.pause();
      });
      if (name !== 'file') {
        stream.resume();
        return fail(new ValidationError(name || 'file', `the file part must be named "file" (got "${name.slice(0, 100)}")`));
      }
      try {
        const rawTitle = fields.get('title');
        if (rawTitle === undefined) throw new ValidationError('title', 'title is required, and must come before file');
        const title = checkTitle(rawTitle);
        const rawAcl = fields.get('acl');
        const acl = rawAcl === undefined ? undefined : parseAcl(rawAcl);
        // Unread, the file holds busboy back (backpressure), so the socket is not read either.
        const body = Readable.from(
          (async function* () {
            for await (const chunk of stream) yield chunk as Buffer;
            await rest;
          })(),
          { objectMode: false },
        );
        settled = true;
        resolve({
          title,
          acl,
          filename: info.filename ? info.filename.slice(0, 255) : null,
          declaredType: info.mimeType ? info.mimeType.slice(0, 255) : null,
          body,
          abandon,
        });
      } catch (error) {
        stream.resume();
        fail(error as Error);
      }
    });
    bb.on('filesLimit', () => fail(new ValidationError('file', 'send one file per upload')));
    bb.on('fieldsLimit', () => fail(new ValidationError('body', 'too many fields: the form takes title, acl and file')));
    bb.on('partsLimit', () => fail(new ValidationError('body', 'too many parts: the form takes title, acl and file')));
    bb.on('error', (error) => fail(new ValidationError('body', `the multipart body is malformed (${(error as Error).message})`)));
    bb.on('close', () => {
      if (!fileSeen) fail(new ValidationError('file', 'no file: send the document as the last part of the form, named file'));
      else afterFile?.resolve();
    });
    // A client that goes away mid-upload: the file stream fails, so nothing is stored.
    req.once('close', () => {
      if (!req.complete) bb.destroy(new Error('the client closed the connection before the upload was complete'));
    });
    req.pipe(bb);
  });
}
