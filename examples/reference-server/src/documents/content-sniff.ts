/**
 * The sniffing rules of uploads ({@link classifyHead}, {@link TextValidator}, {@link nameBinary}):
 * pure functions over bytes, so the verdict depends on the bytes only, never on how they were cut
 * into chunks. `content.ts` composes them into the public `sniffContentType` and `inspectContent`.
 */
import type { DocumentContentType } from './content';

/**
 * How many leading bytes decide the type: the WHATWG MIME Sniffing Standard's resource header
 * length, enough for the HTML patterns after leading whitespace.
 */
export const SNIFF_BYTES = 1445;

/** The client's hints between plain text and Markdown (never trusted for anything else). */
export interface TypeHints {
  /** The client's file name: `.md` or `.markdown` makes a text file Markdown. */
  readonly filename?: string;
  /** The part's declared `Content-Type`: `text/markdown` (or `text/x-markdown`) makes a text file Markdown. */
  readonly declaredType?: string;
}

/** What the head alone says: a type to confirm by validating the text, or a refusal naming what the file is. */
export type HeadVerdict = { readonly type: DocumentContentType } | { readonly refuse: string };

const UTF8_BOM = [0xef, 0xbb, 0xbf];

function startsWith(bytes: Uint8Array, signature: readonly number[], at = 0): boolean {
  if (bytes.length < at + signature.length) return false;
  return signature.every((byte, index) => bytes[at + index] === byte);
}

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

/**
 * The WHATWG HTML patterns, compared case-insensitively after leading whitespace and followed by a
 * space or `>`. `strong` ones win over a Markdown hint; the others are how Markdown files often
 * start too (a README opening with `<p align="center">`), so a `.md` name keeps those Markdown.
 */
const HTML_PATTERNS: readonly { readonly bytes: readonly number[]; readonly strong: boolean }[] = [
  ...['<!DOCTYPE HTML', '<HTML'].map((p) => ({ bytes: ascii(p), strong: true })),
  ...['<HEAD', '<SCRIPT', '<IFRAME', '<H1', '<DIV', '<FONT', '<TABLE', '<A', '<STYLE', '<TITLE', '<B', '<BODY', '<BR', '<P', '<!--'].map((p) => ({
    bytes: ascii(p),
    strong: false,
  })),
];

const WHITESPACE = new Set([0x09, 0x0a, 0x0c, 0x0d, 0x20]);

/** The HTML pattern the head starts with (after an optional UTF-8 BOM and whitespace), if any. */
function htmlPattern(head: Uint8Array): { strong: boolean } | undefined {
  let at = startsWith(head, UTF8_BOM) ? UTF8_BOM.length : 0;
  while (at < head.length && WHITESPACE.has(head[at]!)) at++;
  for (const pattern of HTML_PATTERNS) {
    const end = at + pattern.bytes.length;
    if (end >= head.length) continue; // the tag-terminating byte must be there too
    const matches = pattern.bytes.every((byte, index) => {
      const actual = head[at + index]!;
      // Upper-case ASCII letters of the pattern match either case, as in the standard.
      return byte >= 0x41 && byte <= 0x5a ? (actual & 0xdf) === byte : actual === byte;
    });
    if (matches && (head[end] === 0x20 || head[end] === 0x3e)) return { strong: pattern.strong };
  }
  return undefined;
}

/** Text formats that are documents of their own: read as text they would index their markup. */
const REFUSED_TEXT_FORMATS: readonly { readonly signature: readonly number[]; readonly name: string }[] = [
  { signature: ascii('{\\rtf'), name: 'an RTF document' },
  { signature: ascii('%!PS'), name: 'a PostScript file' },
];

/** Whether the hints say Markdown. */
export function hintsMarkdown(hints: TypeHints): boolean {
  return /\.(md|markdown)$/i.test(hints.filename ?? '') || /^\s*text\/(x-)?markdown\s*(;|$)/i.test(hints.declaredType ?? '');
}

/**
 * The verdict of the first {@link SNIFF_BYTES} bytes (or the whole file when shorter): PDF by
 * `%PDF-` at offset 0, HTML by the WHATWG rule, otherwise plain text or Markdown by the hints. A
 * textual verdict still needs the whole stream to pass a {@link TextValidator}.
 */
export function classifyHead(head: Uint8Array, hints: TypeHints): HeadVerdict {
  // Only at offset 0, as the MIME Sniffing Standard says; readers that skip leading junk are more
  // lenient than a type check should be (the refusal then names the PDF, see nameBinary).
  if (startsWith(head, ascii('%PDF-'))) return { type: 'application/pdf' };
  const bomless = startsWith(head, UTF8_BOM) ? head.subarray(UTF8_BOM.length) : head;
  for (const format of REFUSED_TEXT_FORMATS) if (startsWith(bomless, format.signature)) return { refuse: format.name };
  const markdown = hintsMarkdown(hints);
  const html = htmlPattern(head);
  if (html && (html.strong || !markdown)) return { type: 'text/html' };
  return { type: markdown ? 'text/markdown' : 'text/plain' };
}

/** Common binary formats by their leading bytes, to name them in a refusal; `at` is the offset. */
const BINARY_SIGNATURES: readonly { readonly signature: readonly number[]; readonly at?: number; readonly name: string }[] = [
  { signature: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], name: 'a PNG image' },
  { signature: [0xff, 0xd8, 0xff], name: 'a JPEG image' },
  { signature: ascii('GIF87a'), name: 'a GIF image' },
  { signature: ascii('GIF89a'), name: 'a GIF image' },
  { signature: ascii('WEBP'), at: 8, name: 'a WebP image' },
  { signature: [0x49, 0x49, 0x2a, 0x00], name: 'a TIFF image' },
  { signature: [0x4d, 0x4d, 0x00, 0x2a], name: 'a TIFF image' },
  { signature: [0x50, 0x4b, 0x03, 0x04], name: 'a ZIP archive (Word, Excel, PowerPoint, OpenDocument and EPUB files are ZIP archives)' },
  { signature: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], name: 'an old Microsoft Office file (.doc, .xls, .ppt)' },
  { signature: [0x1f, 0x8b], name: 'a gzip archive' },
  { signature: ascii('BZh'), name: 'a bzip2 archive' },
  { signature: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: 'an xz archive' },
  { signature: [0x28, 0xb5, 0x2f, 0xfd], name: 'a Zstandard archive' },
  { signature: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], name: 'a 7-Zip archive' },
  { signature: ascii('Rar!\x1a\x07'), name: 'a RAR archive' },
  { signature: ascii('ustar'), at: 257, name: 'a tar archive' },
  { signature: [0x7f, 0x45, 0x4c, 0x46], name: 'an ELF executable' },
  { signature: ascii('MZ'), name: 'a Windows executable' },
  { signature: [0xcf, 0xfa, 0xed, 0xfe], name: 'a Mach-O executable' },
  { signature: [0x00, 0x61, 0x73, 0x6d], name: 'a WebAssembly module' },
  { signature: ascii('SQLite format 3\0'), name: 'an SQLite database' },
  { signature: ascii('ID3'), name: 'an MP3 file' },
  { signature: ascii('OggS'), name: 'an Ogg file' },
  { signature: ascii('fLaC'), name: 'a FLAC file' },
  { signature: ascii('WAVE'), at: 8, name: 'a WAV file' },
  { signature: ascii('ftyp'), at: 4, name: 'an MP4 or QuickTime file' },
  { signature: [0x1a, 0x45, 0xdf, 0xa3], name: 'a Matroska or WebM file' },
  { signature: [0xfe, 0xff], name: 'UTF-16 text (save it as UTF-8)' },
  { signature: [0xff, 0xfe], name: 'UTF-16 text (save it as UTF-8)' },
];

/** How far into a file PDF readers look for `%PDF-` (Acrobat's 1024 bytes). */
const PDF_HEADER_SEARCH = 1024;

/**
 * What a refused file looks like, from its head: a name from a small table of common binary
 * formats, or `undefined`. Only the name is ever shown to the client, never the file's bytes.
 */
export function nameBinary(head: Uint8Array): string | undefined {
  for (const { signature, at = 0, name } of BINARY_SIGNATURES) if (startsWith(head, signature, at)) return name;
  const pdfAt = Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, PDF_HEADER_SEARCH + 5)).indexOf('%PDF-', 0, 'latin1');
  if (pdfAt > 0) return `a PDF with ${pdfAt} bytes before its %PDF- header (remove them)`;
  return undefined;
}

/** Why a {@link TextValidator} refused: a binary control byte, or bytes that are not UTF-8. */
export type TextFailure = 'binary' | 'not-utf8';

/**
 * The WHATWG "binary data bytes": C0 controls other than tab, line feed, form feed, carriage
 * return and escape. No text file holds them; every common binary format does.
 */
const BINARY_BYTE = (() => {
  const table = new Uint8Array(256);
  for (let byte = 0; byte < 0x20; byte++) if (![0x09, 0x0a, 0x0c, 0x0d, 0x1b].includes(byte)) table[byte] = 1;
  return table;
})();

/**
 * Checks that a stream of bytes, fed in chunks cut anywhere, is UTF-8 text (a BOM allowed, a
 * character split across chunks fine) without binary control bytes. The first failure sticks.
 */
export class TextValidator {
  readonly #decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  #failure: TextFailure | undefined;

  /** The first failure so far, if any. */
  get failure(): TextFailure | undefined {
    return this.#failure;
  }

  /** Checks the next bytes; returns the failure, if any so far. */
  push(bytes: Uint8Array): TextFailure | undefined {
    if (this.#failure !== undefined || bytes.length === 0) return this.#failure;
    let binaryAt = 0;
    while (binaryAt < bytes.length && BINARY_BYTE[bytes[binaryAt]!] === 0) binaryAt++;
    // The text before the first binary byte is decoded first, so which failure comes first does
    // not depend on where the chunks were cut.
    try {
      this.#decoder.decode(bytes.subarray(0, binaryAt), { stream: true });
    } catch {
      return (this.#failure = 'not-utf8');
    }
    if (binaryAt < bytes.length) this.#failure = 'binary';
    return this.#failure;
  }

  /** The stream ended: a character cut off at the end is a failure too. */
  end(): TextFailure | undefined {
    if (this.#failure !== undefined) return this.#failure;
    try {
      this.#decoder.decode();
    } catch {
      this.#failure = 'not-utf8';
    }
    return this.#failure;
  }
}
