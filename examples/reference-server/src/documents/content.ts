/**
 * The content rules of document uploads: which files are accepted (sniffed from the bytes, never
 * from the client's headers), the stream check on the way to Drive ({@link inspectContent}) and the
 * text extracted for the search index ({@link extractText}).
 *
 * Accepted: UTF-8 plain text and Markdown, UTF-8 HTML, and PDF. Refused: everything else (415),
 * a file over the size limit (413, cut off while streaming), an empty file (400), and a PDF whose
 * text cannot be read (422). Every refusal is an {@link AikbError} with `details.field: 'file'`.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AikbError, systemClock, type Clock } from '@aikb/core';
import { checkOptions } from '@aikb/core/options';
import { HtmlTextExtractor } from './content-html';
import { extractPdfText } from './content-pdf';
import { classifyHead, nameBinary, SNIFF_BYTES, TextValidator, type TextFailure, type TypeHints } from './content-sniff';

export { pdfReaderStats, type PdfReaderStats } from './content-pdf';

/** The media types an upload may have; anything else is refused with 415. */
export type DocumentContentType = 'text/plain' | 'text/markdown' | 'text/html' | 'application/pdf';

/** Every accepted {@link DocumentContentType}. */
export const DOCUMENT_CONTENT_TYPES: readonly DocumentContentType[] = Object.freeze(['text/plain', 'text/markdown', 'text/html', 'application/pdf']);

/** The upload size limit the issue asks for by default: 25 MiB. */
export const DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024;

/** {@link sniffContentType} options: the client's hints between plain text and Markdown. */
export interface SniffOptions extends TypeHints {
  /**
   * Whether `head` is the whole file. When it is only the start (a stream's first bytes), a
   * character cut off at its end is not an error, and the rest still has to be checked.
   * @default true
   */
  readonly complete?: boolean;
}

/** {@link inspectContent} options. */
export interface InspectOptions {
  /** The most bytes accepted; one more and the stream fails with `PAYLOAD_TOO_LARGE` (413). See {@link DEFAULT_MAX_UPLOAD_BYTES}. */
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
 * (never from the header), fails with `UNSUPPORTED_MEDIA_TYPE` (415) as soon as the bytes show a
 * type that is not accepted, with `PAYLOAD_TOO_LARGE` (413) one byte past `maxBytes`, and counts
 * and hashes what passes.
 */
export interface ContentInspector extends Transform {
  /** Settles when the stream ends: the sniffed type, size and hash; rejects with the stream's error. */
  readonly result: Promise<InspectedContent>;
}

/** {@link extractText} options. */
export interface ExtractOptions {
  /** The most characters of text kept (the search store's document limit): the rest is cut, not refused. */
  readonly maxChars: number;
  /** Stops the extraction (and a PDF reader) with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * How long a PDF may take to read, from the reader's start, before it is given up with 422.
   * @default 30_000
   */
  readonly timeoutMs?: number;
  /**
   * The most pages of a PDF read; the later ones are left out of the text, as `maxChars` cuts.
   * @default 2000
   */
  readonly maxPages?: number;
  /**
   * The PDF reader's JavaScript heap limit (its thread's old generation), in MB; past it the
   * reader is stopped and the PDF refused with 422.
   * @default 512
   */
  readonly maxHeapMb?: number;
  /** The clock of the PDF time limit. @default systemClock */
  readonly clock?: Clock;
}

function unsupported(what: string): AikbError {
  return new AikbError('UNSUPPORTED_MEDIA_TYPE', `the file must be plain text, Markdown, HTML or PDF (this one looks like ${what})`, {
    details: { field: 'file' },
  });
}

/** The refusal of a file that failed the text check; `head` names a known binary format when it can. */
function notText(failure: TextFailure, head: Uint8Array): AikbError {
  return unsupported(nameBinary(head) ?? (failure === 'binary' ? 'binary data' : 'text that is not UTF-8'));
}

/**
 * The type of a file from its bytes (`head`: the whole file, or its first bytes with
 * `complete: false`):
 * - `application/pdf` when it starts with `%PDF-` (at offset 0 only, as the WHATWG MIME Sniffing
 *   Standard says: a file with bytes before the header is refused, and the message says so);
 * - `text/html` by the WHATWG rule: after an optional UTF-8 BOM and whitespace, `<!DOCTYPE HTML`,
 *   `<HTML`, `<HEAD`, `<SCRIPT`, `<IFRAME`, `<H1`, `<DIV`, `<FONT`, `<TABLE`, `<A`, `<STYLE`,
 *   `<TITLE`, `<B`, `<BODY`, `<BR`, `<P` or `<!--`, any case, then a space or `>` (a `.md` name
 *   or `text/markdown` keeps a file Markdown unless it starts with `<!DOCTYPE HTML` or `<HTML`,
 *   since Markdown files often open with a `<p>` or `<div>`);
 * - otherwise `text/markdown` or `text/plain` by the hints, only if the bytes are UTF-8 (a BOM
 *   allowed) without binary control bytes (C0 controls but tab, LF, FF, CR and ESC).
 * HTML must be UTF-8 too: other charsets are refused rather than indexed as mojibake.
 * @throws {AikbError} `UNSUPPORTED_MEDIA_TYPE` (415) otherwise, naming common binary formats
 *   (PNG, JPEG, ZIP/Office, gzip, ELF, ...) and RTF or PostScript; never echoing the bytes
 */
export function sniffContentType(head: Uint8Array, options: SniffOptions = {}): DocumentContentType {
  const verdict = classifyHead(head.subarray(0, SNIFF_BYTES), options);
  if ('refuse' in verdict) throw unsupported(verdict.refuse);
  if (verdict.type === 'application/pdf') return verdict.type;
  const validator = new TextValidator();
  const failure = validator.push(head) ?? (options.complete === false ? undefined : validator.end());
  if (failure) throw notText(failure, head);
  return verdict.type;
}

/**
 * A {@link ContentInspector} for one upload. The verdict depends only on the bytes, never on how
 * they are cut into chunks: the type is decided on the first {@link SNIFF_BYTES} bytes (or the
 * whole file when shorter), a textual file is then checked to its last byte, and when a file is
 * both too large and refused, the refusal whose byte comes first wins. The inspector holds at most
 * {@link SNIFF_BYTES} bytes besides the chunk in hand.
 * @throws {TypeError} naming the option when `maxBytes` is not a whole number ≥ 1
 */
export function inspectContent(options: InspectOptions): ContentInspector {
  const check = checkOptions('inspectContent', options);
  if (options.maxBytes === undefined) throw new TypeError('inspectContent: maxBytes must be a whole number ≥ 1 (got undefined)');
  check.number('maxBytes', { min: 1, integer: true });
  check.string('filename', false, true);
  check.string('declaredType', false, true);
  const { maxBytes } = options;
  const hints: TypeHints = { filename: options.filename, declaredType: options.declaredType };
  const hash = createHash('sha256');
  const validator = new TextValidator();
  let bytes = 0;
  let head: Buffer | undefined = Buffer.alloc(0);
  let contentType: DocumentContentType | undefined;
  let settle: { resolve: (value: InspectedContent) => void; reject: (error: Error) => void } | undefined;
  const result = new Promise<InspectedContent>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined);
  const finish = (outcome: (s: NonNullable<typeof settle>) => void) => {
    if (settle) outcome(settle);
    settle = undefined;
  };

  /** Decides the type on the head; a refusal throws. */
  const sniff = () => {
    const sniffed = head!;
    head = undefined;
    const verdict = classifyHead(sniffed, hints);
    if ('refuse' in verdict) throw unsupported(verdict.refuse);
    contentType = verdict.type;
    if (contentType !== 'application/pdf' && validator.failure) throw notText(validator.failure, sniffed);
  };

  /** Takes bytes that are within the limit. */
  const take = (chunk: Buffer) => {
    hash.update(chunk);
    let rest = chunk;
    if (head) {
      // The head is filled to exactly SNIFF_BYTES, so the verdict is the same for any chunking.
      const part = rest.subarray(0, SNIFF_BYTES - head.length);
      rest = rest.subarray(part.length);
      head = Buffer.concat([head, part]);
      validator.push(part);
      if (head.length === SNIFF_BYTES) sniff();
    }
    if (contentType !== undefined && contentType !== 'application/pdf' && rest.length > 0) {
      const failure = validator.push(rest);
      if (failure) throw notText(failure, Buffer.alloc(0));
    }
  };

  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        const within = chunk.subarray(0, Math.max(0, maxBytes - bytes));
        bytes += within.length;
        take(within);
        if (within.length < chunk.length)
          throw new AikbError('PAYLOAD_TOO_LARGE', `the file is larger than ${maxBytes} bytes`, {
            details: { field: 'file', limit: maxBytes },
          });
        callback(null, chunk);
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(callback: TransformCallback) {
      try {
        if (bytes === 0) throw new AikbError('INVALID_ARGUMENT', 'the file is empty', { details: { field: 'file' } });
        if (head) {
          // A short file: the head is all of it, so a character cut off at its end counts.
          validator.end();
          sniff();
        } else if (contentType !== 'application/pdf') {
          const failure = validator.end();
          if (failure) throw notText(failure, Buffer.alloc(0));
        }
        const found = { contentType: contentType!, bytes, sha256: hash.digest('hex') };
        finish((s) => s.resolve(found));
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  }) as ContentInspector;
  stream.once('error', (error) => finish((s) => s.reject(error)));
  // Destroyed without an error (the client went away): the upload did not end, say so.
  stream.once('close', () =>
    finish((s) => s.reject(new AikbError('INVALID_ARGUMENT', 'the upload ended before the file did', { details: { field: 'file' } }))),
  );
  Object.defineProperty(stream, 'result', { value: result });
  return stream;
}

/** `text` cut to `maxChars` UTF-16 units, without splitting a surrogate pair. */
function cut(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const code = text.charCodeAt(maxChars - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? maxChars - 1 : maxChars);
}

/**
 * The text of a stored upload, for indexing: plain text and Markdown as they are (UTF-8, the BOM
 * stripped), HTML as a reader sees it (see {@link HtmlTextExtractor}: no scripts, styles or head
 * but the title; blocks as line breaks; entities decoded; whitespace collapsed), PDF from its
 * text layer, read in a worker thread with a time limit, a heap limit and a page cap.
 *
 * Memory: text and HTML are read as a stream and reading stops at `maxChars`; a PDF is buffered
 * whole (PDF.js needs random access), which is bounded by the upload limit (25 MiB by default)
 * since `body` is the file {@link inspectContent} let through.
 * @throws {AikbError} `UNPROCESSABLE_CONTENT` (422) when there is no text (a scanned PDF without a
 *   text layer, an HTML page of markup only, a file of whitespace) or when the PDF cannot be read
 *   (encrypted, damaged, over `timeoutMs` or `maxHeapMb`); `RESOURCE_EXHAUSTED` (503) when too many
 *   PDFs wait for a reader; the signal's reason when aborted
 * @throws {TypeError} naming the option when an option is invalid
 * @example
 * ```ts
 * const text = await extractText(inspected.contentType, drive.read(key), { maxChars: 1_000_000, signal });
 * ```
 */
export async function extractText(contentType: DocumentContentType, body: AsyncIterable<Uint8Array>, options: ExtractOptions): Promise<string> {
  const check = checkOptions('extractText', options);
  if (options.maxChars === undefined) throw new TypeError('extractText: maxChars must be a whole number ≥ 1 (got undefined)');
  check.number('maxChars', { min: 1, integer: true });
  check.number('timeoutMs', { min: 1, integer: true });
  check.number('maxPages', { min: 1, integer: true });
  check.number('maxHeapMb', { min: 16, integer: true });
  check.object('signal', 'an AbortSignal', false, ['addEventListener', 'removeEventListener', 'throwIfAborted']);
  check.clock();
  if (!DOCUMENT_CONTENT_TYPES.includes(contentType)) throw new TypeError(`extractText: contentType must be one of ${DOCUMENT_CONTENT_TYPES.join(', ')}`);
  const { maxChars, signal } = options;
  signal?.throwIfAborted();
  let text: string;
  switch (contentType) {
    case 'text/plain':
    case 'text/markdown': {
      const decoder = new TextDecoder('utf-8');
      text = '';
      for await (const chunk of body) {
        signal?.throwIfAborted();
        text += decoder.decode(chunk, { stream: true });
        if (text.length >= maxChars) break;
      }
      if (text.length < maxChars) text += decoder.decode();
      break;
    }
    case 'text/html': {
      const decoder = new TextDecoder('utf-8');
      const html = new HtmlTextExtractor();
      for await (const chunk of body) {
        signal?.throwIfAborted();
        html.write(decoder.decode(chunk, { stream: true }));
        if (html.length >= maxChars) break;
      }
      html.write(decoder.decode());
      text = html.end();
      break;
    }
    case 'application/pdf': {
      const chunks: Buffer[] = [];
      for await (const chunk of body) {
        signal?.throwIfAborted();
        chunks.push(Buffer.from(chunk));
      }
      text = await extractPdfText(Buffer.concat(chunks), {
        maxChars,
        maxPages: options.maxPages ?? 2000,
        timeoutMs: options.timeoutMs ?? 30_000,
        maxHeapMb: options.maxHeapMb ?? 512,
        clock: options.clock ?? systemClock,
        signal,
      });
      if (text.trim() === '')
        throw new AikbError('UNPROCESSABLE_CONTENT', 'the PDF has no text layer (scanned pages?): run OCR on it first', {
          details: { field: 'file', reason: 'no-text-layer' },
        });
      break;
    }
  }
  if (text.trim() === '') throw new AikbError('UNPROCESSABLE_CONTENT', 'the file holds no text to index', { details: { field: 'file', reason: 'no-text' } });
  return cut(text, maxChars);
}
