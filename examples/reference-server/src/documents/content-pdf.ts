/**
 * The text layer of a PDF ({@link extractPdfText}), read by Mozilla's PDF.js (`pdfjs-dist`, legacy
 * build) in a `worker_threads` worker: a PDF is hostile input, so the reader runs off the main
 * thread, with a time limit, a heap limit and a page cap, and is terminated when any is reached or
 * the caller aborts. The worker's code is inline (`eval`) and imports PDF.js by its resolved file
 * URL, so it runs the same from source (vitest) and from the bundled server (`dist/`).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AikbError, type Clock } from '@aikb/core';

/** What {@link extractPdfText} needs, fully defaulted by the caller. */
export interface PdfReadOptions {
  readonly maxChars: number;
  readonly maxPages: number;
  readonly timeoutMs: number;
  readonly maxHeapMb: number;
  readonly clock: Clock;
  readonly signal?: AbortSignal;
}

/** How many PDFs are being read and waiting, for tests and metrics. */
export interface PdfReaderStats {
  /** PDFs being read. */
  readonly running: number;
  /** PDFs waiting for a reader. */
  readonly queued: number;
  /** Reader threads alive, including those being terminated. */
  readonly threads: number;
}

/** At most this many readers at once (each is a thread with its own heap): one per core. */
const READERS = Math.max(1, availableParallelism());
/** At most this many PDFs wait for a reader; more is an overload (503), not an unbounded queue. */
const MAX_QUEUED = 32;

/** Where PDF.js is (its entry, and its folder for the CMaps, standard fonts and WebAssembly decoders), resolved once. */
let pdfjs: { readonly url: string; readonly assets: string } | undefined;
function locatePdfjs(): { readonly url: string; readonly assets: string } {
  if (!pdfjs) {
    const entry = createRequire(import.meta.url).resolve('pdfjs-dist/legacy/build/pdf.mjs');
    pdfjs = { url: pathToFileURL(entry).href, assets: `${path.resolve(path.dirname(entry), '../..')}${path.sep}` };
  }
  return pdfjs;
}

/** The worker's message when it is done. */
type WorkerResult = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: 'encrypted' | 'invalid'; readonly detail: string };

/**
 * The worker. Plain JavaScript (a CommonJS script, as `eval` workers are): it is never compiled,
 * so keep it small. `isEvalSupported: false` keeps PDF.js from compiling code out of font data.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const reply = (message) => parentPort.postMessage(message);
(async () => {
  const pdfjs = await import(workerData.pdfjsUrl);
  let doc;
  try {
    doc = await pdfjs.getDocument({
      data: new Uint8Array(workerData.data),
      isEvalSupported: false,
      disableFontFace: true,
      useSystemFonts: false,
      stopAtErrors: false,
      verbosity: 0,
      cMapUrl: workerData.assets + 'cmaps/',
      standardFontDataUrl: workerData.assets + 'standard_fonts/',
      wasmUrl: workerData.assets + 'wasm/',
    }).promise;
  } catch (error) {
    return reply({ ok: false, reason: error && error.name === 'PasswordException' ? 'encrypted' : 'invalid', detail: String(error && error.message) });
  }
  const pages = Math.min(doc.numPages, workerData.maxPages);
  let text = '';
  for (let number = 1; number <= pages && text.length < workerData.maxChars; number++) {
    const page = await doc.getPage(number);
    const content = await page.getTextContent();
    let pageText = '';
    for (const item of content.items) {
      if (typeof item.str !== 'string') continue;
      pageText += item.str;
      if (item.hasEOL) pageText += '\\n';
    }
    page.cleanup();
    pageText = pageText.trim();
    if (pageText !== '') text += (text === '' ? '' : '\\n\\n') + pageText;
  }
  reply({ ok: true, text: text.slice(0, workerData.maxChars) });
})().catch((error) => reply({ ok: false, reason: 'invalid', detail: String(error && error.message) }));
`;

let running = 0;
let threads = 0;
const waiting: (() => void)[] = [];

/** How many PDFs are being read now and how many wait for a reader. */
export function pdfReaderStats(): PdfReaderStats {
  return { running, queued: waiting.length, threads };
}

function unprocessable(message: string, reason: string, cause?: unknown): AikbError {
  return new AikbError('UNPROCESSABLE_CONTENT', message, { details: { field: 'file', reason }, cause });
}

/** Waits for a free reader (or fails at once when too many wait). */
async function acquire(signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  if (running < READERS) {
    running++;
    return;
  }
  if (waiting.length >= MAX_QUEUED)
    throw new AikbError('RESOURCE_EXHAUSTED', `too many PDFs are being read (${MAX_QUEUED} waiting): try again later`, { details: { field: 'file' } });
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      waiting.splice(waiting.indexOf(grant), 1);
      reject(signal!.reason as Error);
    };
    const grant = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    waiting.push(grant);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function release(): void {
  const next = waiting.shift();
  if (next) next();
  else running--;
}

/**
 * The text layer of the PDF `data`, pages separated by a blank line, at most `maxPages` pages
 * and about `maxChars` characters (the rest is not read).
 * @throws {AikbError} `UNPROCESSABLE_CONTENT` (422) when the PDF is encrypted, damaged, too slow
 *   or too large to read; `RESOURCE_EXHAUSTED` when too many PDFs wait for a reader; the signal's
 *   reason when aborted
 */
export async function extractPdfText(data: Uint8Array, options: PdfReadOptions): Promise<string> {
  await acquire(options.signal);
  try {
    return await readInWorker(data, options);
  } finally {
    release();
  }
}

function readInWorker(data: Uint8Array, options: PdfReadOptions): Promise<string> {
  const { signal, clock } = options;
  signal?.throwIfAborted();
  // A copy the worker owns: `data` may share its ArrayBuffer with Node's buffer pool.
  const copy = new Uint8Array(data);
  const { url, assets } = locatePdfjs();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      pdfjsUrl: url,
      assets,
      data: copy.buffer,
      maxPages: options.maxPages,
      maxChars: options.maxChars,
    },
    transferList: [copy.buffer],
    resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb },
    // PDF.js's console output about a broken file is not the server's log: read and dropped.
    stdout: true,
    stderr: true,
  });
  threads++;
  worker.on('exit', () => threads--);
  worker.stdout.resume();
  worker.stderr.resume();
  return new Promise<string>((resolve, reject) => {
    let done = false;
    const finish = (outcome: () => void) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      outcome();
    };
    const timer = clock.setTimeout(
      () => finish(() => reject(unprocessable(`the PDF could not be read within ${options.timeoutMs} ms (too complex or damaged)`, 'timeout'))),
      options.timeoutMs,
    );
    const onAbort = () => finish(() => reject(signal!.reason as Error));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (result: WorkerResult) =>
      finish(() => {
        if (result.ok) resolve(result.text);
        else if (result.reason === 'encrypted') reject(unprocessable('the PDF is encrypted with a password: upload it unprotected', 'encrypted'));
        else reject(unprocessable('the PDF is damaged or not a PDF the reader understands', 'invalid', new Error(result.detail)));
      }),
    );
    worker.once('error', (error: Error & { code?: string }) =>
      finish(() =>
        reject(
          error.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? unprocessable(`the PDF needs more than ${options.maxHeapMb} MB of memory to read`, 'memory', error)
            : unprocessable('the PDF could not be read', 'invalid', error),
        ),
      ),
    );
    worker.once('exit', (code) =>
      finish(() => reject(unprocessable('the PDF could not be read', 'invalid', new Error(`the PDF reader exited with code ${code}`)))),
    );
  });
}
