import { describe, expect, it } from 'vitest';
import { createHashingEmbedder } from './hashing-embedder';
import { cosineDistance } from './search-store.contract';

describe('createHashingEmbedder', () => {
  it('is deterministic, of the configured dimension and L2-normalised', async () => {
    const embedder = createHashingEmbedder({ dimensions: 64 });
    const [a, b] = await embedder.embed(['Connection pool exhausted', 'Connection pool exhausted']);
    expect(a).toEqual(b);
    expect(a).toHaveLength(64);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 12);
    expect(embedder.id).toBe('hashing-v1/64');
  });

  it('puts texts that share words closer than texts that do not', async () => {
    const [query, near, far] = await createHashingEmbedder().embed([
      'pool exhausted',
      'the connection pool was exhausted again',
      'quarterly pricing for customers',
    ]);
    expect(cosineDistance(query!, near!)).toBeLessThan(cosineDistance(query!, far!));
  });

  it('matches word fragments through character n-grams', async () => {
    const [query, stem, other] = await createHashingEmbedder().embed(['indexing', 'index', 'banana']);
    expect(cosineDistance(query!, stem!)).toBeLessThan(cosineDistance(query!, other!));
  });

  it('never returns a zero vector, even for text without words', async () => {
    const [blank, punctuation] = await createHashingEmbedder({ dimensions: 8 }).embed(['', '?!…']);
    expect(blank!.some((x) => x !== 0)).toBe(true);
    expect(punctuation!.some((x) => x !== 0)).toBe(true);
  });

  it('names a bad option and refuses non-string input', async () => {
    expect(() => createHashingEmbedder({ dimensions: 0 })).toThrow(/dimensions/);
    expect(() => createHashingEmbedder({ dimensions: 4096 })).toThrow(/dimensions/);
    await expect(createHashingEmbedder().embed([1 as unknown as string])).rejects.toThrow(TypeError);
  });
});
