import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AikbError } from '@aikb/core';
import { createFakeClock, until } from '@aikb/test-support';
import { corruptPdf, makeEncryptedPdf, makeImageOnlyPdf, makeTextPdf } from '../../test/pdf-fixtures';
import { extractText, inspectContent, pdfReaderStats, sniffContentType, type DocumentContentType, type InspectOptions } from './content';
import { SNIFF_BYTES } from './content-sniff';

/** What an inspection ended with: the type, or the error's code and message. */
type Verdict = { type: DocumentContentType; bytes: number; sha256: string } | { code: string; message: string; field: unknown };

/** Streams `chunks` through an inspector into a sink that keeps nothing. */
async function inspect(chunks: readonly Uint8Array[], options: Partial<InspectOptions> = {}): Promise<Verdict> {
  const inspector = inspectContent({ maxBytes: 1_000_000, ...options });
  try {
    await pipeline(
      Readable.from(
        chunks.map((c) => Buffer.from(c)),
        { objectMode: false },
      ),
      inspector,
      new Writable({ write: (_chunk, _encoding, callback) => callback() }),
    );
    const found = await inspector.result;
    return { type: found.contentType, bytes: found.bytes, sha256: found.sha256 };
  } catch (error) {
    expect(error).toBeInstanceOf(AikbError);
    await expect(inspector.result).rejects.toBe(error);
    const { code, message, details } = error as AikbError;
    return { code, message, field: details.field };
  }
}

function sniffError(head: Uint8Array, options = {}): AikbError {
  try {
    sniffContentType(head, options);
  } catch (error) {
    return error as AikbError;
  }
  throw new Error('sniffContentType accepted the bytes');
}

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const bytes = (...values: number[]) => Buffer.from(values);

/** `data` cut at `cuts` (offsets, any order, duplicates ignored). */
function cutAt(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(c, data.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, data.length]) {
    if (point > start) chunks.push(data.subarray(start, point));
    start = Math.max(start, point);
  }
  return chunks;
}

async function* chunksOf(...chunks: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield typeof chunk === 'string' ? utf8(chunk) : chunk;
}

async function extractError(promise: Promise<unknown>): Promise<AikbError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AikbError);
  return error as AikbError;
}

describe('sniffContentType', () => {
  it('reads UTF-8 text as plain text, with or without a BOM, tabs, form feeds and escapes', () => {
    expect(sniffContentType(utf8('Hello, wörld — ☃ 𝄞\r\n\tindented\f\x1b[0m'))).toBe('text/plain');
    expect(sniffContentType(utf8('\ufeffwith a BOM'))).toBe('text/plain');
  });

  it('tells Markdown from plain text by the file name or the declared type only', () => {
    expect(sniffContentType(utf8('# Title'), { filename: 'notes.md' })).toBe('text/markdown');
    expect(sniffContentType(utf8('# Title'), { filename: 'NOTES.Markdown' })).toBe('text/markdown');
    expect(sniffContentType(utf8('# Title'), { declaredType: 'text/markdown; charset=utf-8' })).toBe('text/markdown');
    expect(sniffContentType(utf8('# Title'), { declaredType: 'text/x-markdown' })).toBe('text/markdown');
    expect(sniffContentType(utf8('# Title'), { filename: 'notes.txt', declaredType: 'text/plain' })).toBe('text/plain');
    expect(sniffContentType(utf8('# Title'), { filename: 'notes.md.exe' })).toBe('text/plain');
  });

  it.each([
    '<!DOCTYPE HTML',
    '<HTML',
    '<HEAD',
    '<SCRIPT',
    '<IFRAME',
    '<H1',
    '<DIV',
    '<FONT',
    '<TABLE',
    '<A',
    '<STYLE',
    '<TITLE',
    '<B',
    '<BODY',
    '<BR',
    '<P',
    '<!--',
  ])('reads a file starting with %s (any case, after whitespace, then a space or >) as HTML', (pattern) => {
    for (const start of [pattern, pattern.toLowerCase(), `\ufeff \t\r\n\f${pattern}`])
      for (const end of ['>', ' ']) expect(sniffContentType(utf8(`${start}${end}x</x>`))).toBe('text/html');
  });

  it('reads no HTML where the pattern is not followed by a space or >, or text comes first', () => {
    for (const text of ['<abbr>x</abbr>', '<p1>', '<html-ish>', '<a\n', 'text <html>', '<!DOCTYPE xml>', '<pre>code</pre>', '<P'])
      expect(sniffContentType(utf8(text))).toBe('text/plain');
  });

  it('keeps a Markdown file that opens with a <p> or <div> Markdown, but not one that opens with <!DOCTYPE html>', () => {
    expect(sniffContentType(utf8('<p align="center">logo</p>\n# Project'), { filename: 'README.md' })).toBe('text/markdown');
    expect(sniffContentType(utf8('<!doctype html><html></html>'), { filename: 'page.md' })).toBe('text/html');
    expect(sniffContentType(utf8('<p>x</p>'), { filename: 'page.txt' })).toBe('text/html');
  });

  it('reads %PDF- at the very start as a PDF, whatever follows', () => {
    expect(sniffContentType(makeTextPdf(['Hello']))).toBe('application/pdf');
    expect(sniffContentType(bytes(0x25, 0x50, 0x44, 0x46, 0x2d, 0x00, 0xff))).toBe('application/pdf');
  });

  it.each([
    ['PNG', bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d), 'a PNG image'],
    ['JPEG', bytes(0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10), 'a JPEG image'],
    ['GIF', Buffer.concat([utf8('GIF89a'), bytes(1, 0, 1, 0, 0x80)]), 'a GIF image'],
    ['ZIP (docx)', Buffer.concat([bytes(0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0x06, 0), utf8('[Content_Types].xml')]), 'a ZIP archive'],
    ['gzip', bytes(0x1f, 0x8b, 0x08, 0x00), 'a gzip archive'],
    ['ELF', bytes(0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00), 'an ELF executable'],
    ['PE', Buffer.concat([utf8('MZ'), bytes(0x90, 0x00, 0x03)]), 'a Windows executable'],
    ['OLE', bytes(0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0), 'an old Microsoft Office file'],
    ['UTF-16', Buffer.from('\ufeffhello', 'utf16le'), 'UTF-16 text'],
    ['RTF', utf8('{\\rtf1\\ansi Hello}'), 'an RTF document'],
    ['a PDF after junk', Buffer.concat([bytes(0x00, 0x01, 0x02), makeTextPdf(['x'])]), 'a PDF with 3 bytes before its %PDF- header'],
  ])('refuses %s with 415 naming it', (_name, data, named) => {
    const error = sniffError(data);
    expect(error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', details: { field: 'file' } });
    expect(error.message).toContain(named);
  });

  it('refuses binary control bytes and bytes that are not UTF-8, without echoing them', () => {
    const nul = sniffError(utf8('plain\0text'));
    expect(nul.message).toMatch(/binary data\)$/);
    const latin1 = sniffError(Buffer.from('caf\xe9 <script>alert(1)</script>', 'latin1'));
    expect(latin1.message).toMatch(/text that is not UTF-8\)$/);
    expect(latin1.message).not.toContain('script');
    expect(sniffError(bytes(0x68, 0x69, 0xe2, 0x82)).message).toContain('not UTF-8'); // a cut character at the end of the whole file
  });

  it('accepts a character cut off at the end of a head that is not the whole file', () => {
    expect(sniffContentType(bytes(0x68, 0x69, 0xe2, 0x82), { complete: false })).toBe('text/plain');
  });
});

describe('inspectContent', () => {
  it.each([
    ['plain text', utf8('Hello\n'.repeat(1000)), {}, 'text/plain'],
    ['Markdown', utf8('# Title\n\nSome *text*.\n'), { filename: 'a.md' }, 'text/markdown'],
    ['HTML', utf8('<!DOCTYPE html><html><body><p>Hi</p></body></html>'), {}, 'text/html'],
    ['PDF', makeTextPdf(['Hello']), {}, 'application/pdf'],
  ] as const)('passes %s through with its type, size and SHA-256', async (_name, data, hints, type) => {
    const chunks = cutAt(data, [1, 7, 100, 600]);
    const out: Buffer[] = [];
    const inspector = inspectContent({ maxBytes: data.length, ...hints });
    await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), inspector, new Writable({ write: (chunk: Buffer, _e, cb) => (out.push(chunk), cb()) }));
    expect(Buffer.concat(out).equals(data)).toBe(true);
    await expect(inspector.result).resolves.toEqual({ contentType: type, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  });

  it('accepts a multi-byte character split across chunks at every offset', async () => {
    const data = utf8('x'.repeat(SNIFF_BYTES - 2) + '€𝄞€'.repeat(3));
    for (let at = SNIFF_BYTES - 3; at < data.length; at++) expect(await inspect(cutAt(data, [at]))).toMatchObject({ type: 'text/plain' });
  });

  it('refuses bytes that are not UTF-8 or binary, however late in the stream', async () => {
    const text = utf8('a line of text\n'.repeat(10_000));
    for (const bad of [bytes(0xff), bytes(0xc3, 0x28), bytes(0x00), bytes(0x07)]) {
      const data = Buffer.concat([text, bad, text]);
      const verdict = await inspect(cutAt(data, [4096, 65_536, 140_000]));
      expect(verdict).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'file' });
    }
    // A character cut off by the end of the file.
    expect(await inspect([Buffer.concat([text, bytes(0xe2, 0x82)])])).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    // HTML too: the rule is UTF-8 for every textual type.
    expect(await inspect([utf8('<html><body>'), Buffer.from('caf\xe9', 'latin1')])).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('does not check the body of a PDF for text', async () => {
    expect(await inspect([utf8('%PDF-1.7\n'), bytes(0x00, 0xff, 0xfe, 0x01)])).toMatchObject({ type: 'application/pdf' });
  });

  it('accepts exactly maxBytes and fails with 413 one byte past, cutting the stream off', async () => {
    expect(await inspect([utf8('x'.repeat(100))], { maxBytes: 100 })).toMatchObject({ type: 'text/plain', bytes: 100 });
    expect(await inspect([utf8('x'.repeat(101))], { maxBytes: 100 })).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', field: 'file' });
  });

  it('stops reading an endless upload one chunk past the limit, without draining the source', async () => {
    let pulled = 0;
    let finished = false;
    const endless = Readable.from(
      (function* () {
        try {
          for (;;) {
            pulled++;
            yield Buffer.alloc(1024, 0x61);
          }
        } finally {
          finished = true;
        }
      })(),
    );
    const inspector = inspectContent({ maxBytes: 10 * 1024 });
    const error = await pipeline(endless, inspector, new Writable({ write: (_c, _e, cb) => cb() })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { field: 'file', limit: 10 * 1024 } });
    await expect(inspector.result).rejects.toBe(error);
    // The limit is 10 chunks; a few more are read ahead by the streams' buffers, not the whole source.
    expect(pulled).toBeLessThan(64);
    expect(finished).toBe(true);
  });

  it('refuses an empty file with 400 naming the field', async () => {
    expect(await inspect([])).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'file', message: 'the file is empty' });
  });

  it('rejects its result when the stream is destroyed before the end', async () => {
    const inspector = inspectContent({ maxBytes: 100 });
    inspector.write(utf8('partial'));
    inspector.destroy();
    await expect(inspector.result).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('checks its options when created', () => {
    expect(() => inspectContent({ maxBytes: 0 })).toThrow(/maxBytes must be a whole number ≥ 1/);
    expect(() => inspectContent({} as InspectOptions)).toThrow(/maxBytes/);
    expect(() => inspectContent({ maxBytes: 10, filename: 3 } as unknown as InspectOptions)).toThrow(/filename/);
  });

  it('reaches the same verdict however the bytes are chunked', async () => {
    const byteArray = (max: number) => fc.uint8Array({ maxLength: max });
    const text = fc.string({ unit: 'grapheme', maxLength: 300 }).map(utf8);
    const part = fc.oneof(
      text,
      text,
      fc.constantFrom(utf8('<!DOCTYPE html>'), utf8('<p>'), utf8('%PDF-'), utf8('  \n'), utf8('€'), utf8('𝄞')),
      byteArray(4),
      fc.constantFrom(bytes(0xe2), bytes(0x82, 0xac), bytes(0x00), bytes(0xff), bytes(0xef, 0xbb, 0xbf)),
      fc.constant(Buffer.alloc(SNIFF_BYTES - 3, 0x20)),
    );
    const file = fc.array(part, { maxLength: 12 }).map((parts) => Buffer.concat(parts));
    await fc.assert(
      fc.asyncProperty(
        file,
        fc.array(fc.nat({ max: 4000 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 4000 }),
        fc.boolean(),
        async (data, cuts, maxBytes, md) => {
          const options = { maxBytes, ...(md ? { filename: 'x.md' } : {}) };
          const whole = await inspect([data], options);
          expect(await inspect(cutAt(data, cuts), options)).toEqual(whole);
          // One byte at a time too, for short files.
          if (data.length <= 200) expect(await inspect(cutAt(data, [...data.keys()]), options)).toEqual(whole);
          // And a successful textual verdict agrees with sniffing the whole file at once.
          if ('type' in whole) expect(sniffContentType(data, options)).toBe(whole.type);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('extractText', () => {
  const options = { maxChars: 10_000 };

  it('returns plain text and Markdown as UTF-8, the BOM stripped, characters split across chunks kept', async () => {
    const euro = utf8('€');
    expect(await extractText('text/plain', chunksOf(utf8('\ufeffPrice: '), euro.subarray(0, 1), euro.subarray(1), ' 5'), options)).toBe('Price: € 5');
    expect(await extractText('text/markdown', chunksOf('# Title\n\n*emphasis*\n'), options)).toBe('# Title\n\n*emphasis*\n');
  });

  it('cuts at maxChars, without splitting a surrogate pair, and stops reading', async () => {
    let pulled = 0;
    async function* many() {
      for (;;) {
        pulled++;
        yield utf8('abcdefghij');
      }
    }
    expect(await extractText('text/plain', many(), { maxChars: 25 })).toBe('abcdefghijabcdefghijabcde');
    expect(pulled).toBe(3);
    expect(await extractText('text/plain', chunksOf('ab𝄞'), { maxChars: 3 })).toBe('ab');
  });

  it('refuses a file of whitespace with 422', async () => {
    await expect(extractText('text/plain', chunksOf(' \n\t '), options)).rejects.toMatchObject({ code: 'UNPROCESSABLE_CONTENT', details: { field: 'file' } });
    await expect(extractText('text/html', chunksOf('<html><head><script>x()</script></head><body> </body></html>'), options)).rejects.toMatchObject({
      code: 'UNPROCESSABLE_CONTENT',
    });
  });

  describe('HTML', () => {
    const page = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>The  Title</title><style>body { color: red }</style>
<script>var hidden = "<p>not text</p>";</script><link rel="stylesheet" href="x.css"></head>
<body>
  <noscript>Enable JavaScript</noscript><template><p>inert</p></template>
  <h1>Caf&eacute; &amp; Bar&#8217;s &lt;menu&gt;</h1>
  <p>First   paragraph
     across lines, with <b>bold</b> and <a href="/x">a link</a>.</p>
  <div>One</div><div>Two<br>Three</div>
  <ul><li>apple</li><li>pear</li></ul>
  <table><tr><td>a1</td><td>b1</td></tr><tr><th>a2</th><td>b2</td></tr></table>
  <pre>  keep
    this</pre>
  <svg><text>vector</text></svg>
  <script>document.write('late')</script>
</body></html>`;
    const expected = [
      'The Title',
      '',
      'Café & Bar’s <menu>',
      '',
      'First paragraph across lines, with bold and a link.',
      '',
      'One',
      'Two',
      'Three',
      '',
      'apple',
      'pear',
      '',
      'a1 b1',
      'a2 b2',
      '',
      '  keep',
      '    this',
    ].join('\n');

    it('keeps what a reader sees: the title, blocks as lines, entities decoded, whitespace collapsed but in <pre>', async () => {
      expect(await extractText('text/html', chunksOf(page), options)).toBe(expected);
    });

    it('gives the same text when the HTML arrives a byte at a time', async () => {
      const data = utf8(page);
      expect(await extractText('text/html', chunksOf(...cutAt(data, [...data.keys()])), options)).toBe(expected);
    });

    it('cuts at maxChars', async () => {
      expect(await extractText('text/html', chunksOf(page), { maxChars: 9 })).toBe('The Title');
    });
  });

  describe('PDF', () => {
    const pdf = (data: Uint8Array) => chunksOf(...cutAt(data, [10, 300]));

    it('extracts the text layer, pages separated by a blank line', async () => {
      const text = await extractText('application/pdf', pdf(makeTextPdf(['Hello (world)', 'second line'], ['page two'])), options);
      expect(text).toBe('Hello (world)\nsecond line\n\npage two');
    });

    it('reads at most maxPages pages and maxChars characters', async () => {
      const data = makeTextPdf(['one'], ['two'], ['three']);
      expect(await extractText('application/pdf', pdf(data), { ...options, maxPages: 2 })).toBe('one\n\ntwo');
      expect(await extractText('application/pdf', pdf(data), { maxChars: 2 })).toBe('on');
    });

    it('refuses a PDF without a text layer with 422 saying to run OCR', async () => {
      const error = await extractError(extractText('application/pdf', pdf(makeImageOnlyPdf()), options));
      expect(error).toMatchObject({ code: 'UNPROCESSABLE_CONTENT', details: { field: 'file', reason: 'no-text-layer' } });
      expect(error.message).toMatch(/no text layer.*OCR/);
    });

    it('refuses a damaged PDF with 422, the reader’s words kept for the logs only', async () => {
      const error = await extractError(extractText('application/pdf', pdf(corruptPdf()), options));
      expect(error).toMatchObject({ code: 'UNPROCESSABLE_CONTENT', details: { field: 'file', reason: 'invalid' } });
      expect(error.message).toBe('the PDF is damaged or not a PDF the reader understands');
      expect(String((error.cause as Error).message)).toMatch(/Invalid PDF/);
    });

    it('refuses a password-protected PDF with 422 saying so', async () => {
      const error = await extractError(extractText('application/pdf', pdf(makeEncryptedPdf()), options));
      expect(error).toMatchObject({ code: 'UNPROCESSABLE_CONTENT', details: { field: 'file', reason: 'encrypted' } });
      expect(error.message).toMatch(/encrypted with a password/);
    });

    it('gives up a PDF that takes longer than timeoutMs with 422 and terminates its reader', async () => {
      const clock = createFakeClock();
      const extraction = extractError(extractText('application/pdf', pdf(makeTextPdf(['slow'])), { ...options, clock, timeoutMs: 5000 }));
      await until(() => clock.pending() === 1 && pdfReaderStats().threads === 1, 'the reader started');
      clock.advance(5000);
      const error = await extraction;
      expect(error).toMatchObject({ code: 'UNPROCESSABLE_CONTENT', details: { field: 'file', reason: 'timeout' } });
      expect(error.message).toContain('within 5000 ms');
      await until(() => pdfReaderStats().threads === 0, 'the reader thread exited');
      expect(pdfReaderStats()).toEqual({ running: 0, queued: 0, threads: 0 });
    });

    it('stops the reader when the signal aborts', async () => {
      const controller = new AbortController();
      const extraction = extractText('application/pdf', pdf(makeTextPdf(['aborted'])), { ...options, signal: controller.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(() => pdfReaderStats().threads === 1, 'the reader started');
      const reason = new Error('client went away');
      controller.abort(reason);
      expect(await extraction).toBe(reason);
      await until(() => pdfReaderStats().threads === 0, 'the reader thread exited');
    });

    it('refuses a PDF whose reader runs out of heap with 422', async () => {
      // 16 MB of heap cannot even load PDF.js.
      const error = await extractError(extractText('application/pdf', pdf(makeTextPdf(['big'])), { ...options, maxHeapMb: 16 }));
      expect(error).toMatchObject({ code: 'UNPROCESSABLE_CONTENT', details: { field: 'file', reason: 'memory' } });
      await until(() => pdfReaderStats().threads === 0, 'the reader thread exited');
    });
  });

  it('checks its options', async () => {
    await expect(extractText('text/plain', chunksOf('x'), { maxChars: 0 })).rejects.toThrow(/maxChars must be a whole number ≥ 1/);
    await expect(extractText('text/plain', chunksOf('x'), { maxChars: 5, timeoutMs: -1 })).rejects.toThrow(/timeoutMs/);
    await expect(extractText('image/png' as DocumentContentType, chunksOf('x'), options)).rejects.toThrow(TypeError);
  });
});
