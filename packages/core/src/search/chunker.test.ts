import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkText } from './chunker';

describe('chunkText', () => {
  it('keeps a short text whole and gives nothing for blank text', () => {
    expect(chunkText('One paragraph.')).toEqual(['One paragraph.']);
    expect(chunkText(' \n\n  ')).toEqual([]);
  });

  it('packs paragraphs while they fit and starts a new chunk at a paragraph boundary', () => {
    const a = 'a'.repeat(30);
    const b = 'b'.repeat(30);
    const c = 'c'.repeat(30);
    expect(chunkText(`${a}\n\n${b}\n\n${c}`, { size: 70, overlap: 0 })).toEqual([`${a}\n\n${b}`, c]);
  });

  it('splits a long paragraph at sentences and repeats the end of one chunk at the start of the next', () => {
    const sentences = Array.from({ length: 12 }, (_, i) => `Sentence ${i} is about pools.`);
    const chunks = chunkText(sentences.join(' '), { size: 100, overlap: 40 });
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(100);
    for (let i = 1; i < chunks.length; i++) {
      const previousEnd = chunks[i - 1]!.slice(-20);
      expect(chunks[i]!.includes(previousEnd.split(' ').at(-1)!)).toBe(true);
    }
  });

  it('cuts a sentence longer than the size at spaces, and a word longer than the size anywhere', () => {
    const words = Array.from({ length: 100 }, () => 'word').join(' ');
    for (const chunk of chunkText(words, { size: 50, overlap: 10 })) expect(chunk.length).toBeLessThanOrEqual(50);
    expect(chunkText('x'.repeat(120), { size: 50, overlap: 0 })).toEqual(['x'.repeat(50), 'x'.repeat(50), 'x'.repeat(20)]);
  });

  it('never makes a chunk over the size and loses no word', () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z]{1,30}[.!?]?$/), { maxLength: 200 }),
        fc.array(fc.constantFrom(' ', '\n\n', ' '), { maxLength: 200 }),
        (words, gaps) => {
          const text = words.map((w, i) => w + (gaps[i] ?? ' ')).join('');
          const chunks = chunkText(text, { size: 80, overlap: 20 });
          for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(80);
          const seen = new Set(chunks.join(' ').split(/\s+/));
          for (const word of words) expect(seen.has(word)).toBe(true);
        },
      ),
    );
  });

  it('names a bad option', () => {
    expect(() => chunkText('x', { size: 5 })).toThrow(/size/);
    expect(() => chunkText('x', { size: 100, overlap: 60 })).toThrow(/overlap/);
    expect(() => chunkText(3 as unknown as string)).toThrow(TypeError);
  });
});
