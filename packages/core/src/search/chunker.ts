import { checkOptions } from '../options';

/** {@link chunkText} options. */
export interface ChunkOptions {
  /**
   * Largest chunk, in characters. Paragraphs and sentences are kept whole when they fit; a longer
   * sentence is cut at word boundaries (at a character boundary when one word is longer).
   * @default 1000
   */
  size?: number;
  /**
   * Characters of the end of one chunk repeated at the start of the next (whole sentences or
   * words, at most this many), so a passage cut in two is still found whole. Less than `size`.
   * @default 150
   */
  overlap?: number;
}

const PARAGRAPH = /\n\s*\n/;
const SENTENCE_END = /(?<=[.!?…。！？])\s+/u;

/** Pieces of at most `size` characters: sentences, or cuts of a longer sentence at spaces. */
function pieces(paragraph: string, size: number): string[] {
  const out: string[] = [];
  for (const sentence of paragraph.split(SENTENCE_END)) {
    const trimmed = sentence.trim();
    if (trimmed.length === 0) continue;
    if (trimmed.length <= size) {
      out.push(trimmed);
      continue;
    }
    let rest = trimmed;
    while (rest.length > size) {
      const space = rest.lastIndexOf(' ', size);
      const cut = space > size / 2 ? space : size;
      out.push(rest.slice(0, cut).trim());
      rest = rest.slice(cut).trim();
    }
    if (rest.length > 0) out.push(rest);
  }
  return out;
}

/** The tail of `chunk` of at most `overlap` characters, starting at a word. */
function tail(chunk: string, overlap: number): string {
  if (overlap === 0) return '';
  if (chunk.length <= overlap) return chunk;
  const start = chunk.indexOf(' ', chunk.length - overlap);
  return start === -1 ? '' : chunk.slice(start + 1);
}

/**
 * Splits a text into chunks for embedding: paragraphs (blank-line separated) are packed together
 * while they fit in `size`, a paragraph too large is split into sentences, a sentence too large at
 * spaces. Each chunk after the first starts with up to `overlap` characters of the previous one's
 * end. Whitespace inside a chunk is kept; blank input gives no chunks. Every chunk is at most
 * `size` characters.
 *
 * @throws {TypeError} when `text` is not a string or an option is invalid
 * @example
 * ```ts
 * chunkText(longText, { size: 800, overlap: 100 })   // ['First paragraph…', '…end of it. Next one…']
 * ```
 */
export function chunkText(text: string, options: ChunkOptions = {}): string[] {
  if (typeof text !== 'string') throw new TypeError('chunkText: text must be a string');
  const check = checkOptions('chunkText', options, true);
  check.number('size', { min: 20, max: 1_000_000, integer: true });
  check.number('overlap', { min: 0, integer: true });
  const { size = 1000, overlap = 150 } = options;
  if (overlap >= size / 2) throw new TypeError(`chunkText: overlap must be less than half of size (got ${overlap} for size ${size})`);

  // Units are whole paragraphs where they fit, else their sentences (or cuts of them).
  const units: { text: string; paragraphStart: boolean }[] = [];
  for (const paragraph of text.split(PARAGRAPH)) {
    const trimmed = paragraph.trim();
    if (trimmed.length === 0) continue;
    if (trimmed.length <= size) units.push({ text: trimmed, paragraphStart: true });
    else pieces(trimmed, size).forEach((piece, i) => units.push({ text: piece, paragraphStart: i === 0 }));
  }

  const chunks: string[] = [];
  let current = '';
  let fresh = true; // `current` holds nothing but the overlap carried from the previous chunk
  for (const unit of units) {
    const separator = current.length === 0 ? '' : unit.paragraphStart ? '\n\n' : ' ';
    if (current.length + separator.length + unit.text.length <= size) {
      current += separator + unit.text;
      fresh = false;
      continue;
    }
    if (!fresh) chunks.push(current);
    const carried = fresh ? '' : tail(current, overlap);
    const joined = carried.length > 0 ? `${carried} ${unit.text}` : unit.text;
    current = joined.length <= size ? joined : unit.text;
    fresh = false;
  }
  if (!fresh && current.length > 0) chunks.push(current);
  return chunks;
}
