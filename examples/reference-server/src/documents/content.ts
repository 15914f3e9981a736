import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AikbError } from '@aikb/core';

/** The media types an upload may have; anything else is refused with 415. */
export type DocumentContentType = 'text/plain' | 'text/markdown' | 'text/html' | 'application/pdf';

/** Every accepted {@link DocumentContentType}. */
export const DOCUMENT_CONTENT_TYPES: readonly DocumentContentType[] = Object.freeze(['text/plain', 'text/markdown', 'text/html', 'application/pdf']);

/** {@link inspectContent} options. */
export interface InspectOptions {
  /** The most bytes accepted; one more and the stream fails with `PAYLOAD_TOO_LARGE` (413). */
  readonly maxBytes: number;
  /** The client's file name: tells Markdown from plain text (`.md`, `.markdown`); never trusted for the type. */
  readonly filename?: string;
  /** The client's declared type (the part's `Content-Type`): also only a hint between plain text and Markdown. */
  readonly declaredType?: string;
}

/** What {@link inspectContent} found once the stream ended. */
export interface InspectedContent {
  readonly contentType: DocumentContentType;
  readonly bytes: number;
  /** SHA-256 of the bytes, lowercase hex. */
  readonly sha256: string;
}

/**
 * A pass-through stream for an upload on its way to Drive: it sniffs the type from the content
 * (never from the header), fails with `UNSUPPORTED_MEDIA_TYPE` (415) as soon as the first bytes
 * show a type that is not accepted, with `PAYLOAD_TOO_LARGE` (413) one byte past `maxBytes`, and
 * counts and hashes what passes.
 */
export interface ContentInspector extends Transform {
  /** Settles when the stream ends: the sniffed type, size and hash; rejects with the stream's error. */
  readonly result: Promise<InspectedContent>;
}

/** {@link extractText} options. */
export interface ExtractOptions {
  /** The most characters of text kept (the search store's document limit). */
  readonly maxChars: number;
  readonly signal?: AbortSignal;
}

const SNIFF_BYTES = 512;

function unsupported(what: string): AikbError {
  return new AikbError('UNSUPPORTED_MEDIA_TYPE', `the file must be plain text, Markdown, HTML or PDF (this one looks like ${what})`, {
    details: { field: 'file' },
  });
}

function hintsMarkdown(options: Pick<InspectOptions, 'filename' | 'declaredType'>): boolean {
  return /\.(md|markdown)$/i.test(options.filename ?? '') || /^text\/(x-)?markdown\b/i.test(options.declaredType ?? '');
}

/** The type of an upload from its first bytes (see {@link inspectContent}). */
export function sniffContentType(head: Uint8Array, options: Pick<InspectOptions, 'filename' | 'declaredType'> = {}): DocumentContentType {
  const text = Buffer.from(head).toString('latin1');
  if (text.startsWith('%PDF-')) return 'application/pdf';
  if (head.includes(0)) throw unsupported('binary data');
  if (/^\s*(<!doctype html|<html[\s>])/i.test(text)) return 'text/html';
  return hintsMarkdown(options) ? 'text/markdown' : 'text/plain';
}

/** A {@link ContentInspector}. */
export function inspectContent(options: InspectOptions): ContentInspector {
  const hash = createHash('sha256');
  let bytes = 0;
  let head: Buffer[] = [];
  let headBytes = 0;
  let contentType: DocumentContentType | undefined;
  let settle!: { resolve: (value: InspectedContent) => void; reject: (error: Error) => void };
  const result = new Promise<InspectedContent>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined);
  const sniff = () => {
    contentType = sniffContentType(Buffer.concat(head, headBytes), options);
    head = [];
  };
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        bytes += chunk.length;
        if (bytes > options.maxBytes)
          throw new AikbError('PAYLOAD_TOO_LARGE', `the file is larger than ${options.maxBytes} bytes`, {
            details: { field: 'file', limit: options.maxBytes },
          });
        hash.update(chunk);
        if (contentType === undefined) {
          head.push(chunk);
          headBytes += chunk.length;
          if (headBytes >= SNIFF_BYTES) sniff();
        }
        callback(null, chunk);
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(callback: TransformCallback) {
      try {
        if (bytes === 0) throw new AikbError('INVALID_ARGUMENT', 'the file is empty', { details: { field: 'file' } });
        if (contentType === undefined) sniff();
        settle.resolve({ contentType: contentType!, bytes, sha256: hash.digest('hex') });
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  }) as ContentInspector;
  stream.once('error', (error) => settle.reject(error));
  Object.defineProperty(stream, 'result', { value: result });
  return stream;
}

/**
 * The text of a stored upload, for indexing: plain text and Markdown as they are, HTML without
 * markup, PDF from its text layer.
 * @throws {AikbError} `UNPROCESSABLE_CONTENT` (422) when there is no text (a scanned PDF without a text layer)
 */
export async function extractText(contentType: DocumentContentType, body: AsyncIterable<Uint8Array>, options: ExtractOptions): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  const raw = Buffer.concat(chunks);
  let text: string;
  switch (contentType) {
    case 'text/plain':
    case 'text/markdown':
      text = raw.toString('utf8');
      break;
    case 'text/html':
    case 'application/pdf':
      throw new AikbError('UNSUPPORTED_MEDIA_TYPE', `${contentType} extraction is not available yet`, { details: { field: 'file' } });
  }
  if (text.trim() === '') throw new AikbError('UNPROCESSABLE_CONTENT', 'the file holds no text to index', { details: { field: 'file' } });
  return text.slice(0, options.maxChars);
}
