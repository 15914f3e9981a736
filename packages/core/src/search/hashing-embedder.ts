import { checkOptions } from '../options';
import type { Embedder } from './search';

/** {@link createHashingEmbedder} options. */
export interface HashingEmbedderOptions {
  /**
   * D, the vector length (pgvector's HNSW index takes at most 2000).
   * @default 256
   */
  dimensions?: number;
  /**
   * Length of the character n-grams hashed beside whole words (0 for words only).
   * @default 3
   */
  ngram?: number;
}

/** 32-bit FNV-1a over UTF-16 code units: fast, stable across platforms and versions. */
function fnv1a(text: string, seed: number): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

const WORD = /[\p{L}\p{N}]+/gu;
const WORD_WEIGHT = 1;
const NGRAM_WEIGHT = 0.5;

/**
 * A deterministic local embedder: feature hashing of lower-cased words and character n-grams into
 * D dimensions (a second hash picks each feature's sign), L2-normalised. No network, no model
 * download, the same vector for the same text on every machine.
 *
 * It is lexical, not a language model: texts are close when they share words or word fragments
 * ("indexing" finds "index"), not when they mean the same thing in other words ("car" does not
 * find "automobile"). Plug in a real model with {@link createOpenAiEmbedder} for semantic search.
 *
 * A text with no letter or digit gets a fixed non-zero vector, never a zero one.
 *
 * @throws {TypeError} when an option is invalid
 * @example
 * ```ts
 * const embedder = createHashingEmbedder({ dimensions: 256 })
 * const [v] = await embedder.embed(['connection pool exhausted'])
 * ```
 */
export function createHashingEmbedder(options: HashingEmbedderOptions = {}): Embedder {
  const check = checkOptions('createHashingEmbedder', options, true);
  check.number('dimensions', { min: 1, max: 2000, integer: true });
  check.number('ngram', { min: 0, max: 8, integer: true });
  const { dimensions = 256, ngram = 3 } = options;

  function embedOne(text: string): number[] {
    const vector = new Float64Array(dimensions);
    const add = (feature: string, weight: number) => {
      const slot = fnv1a(feature, 0) % dimensions;
      vector[slot]! += fnv1a(feature, 0x9e3779b9) & 1 ? weight : -weight;
    };
    for (const match of text.normalize('NFKC').toLowerCase().matchAll(WORD)) {
      const word = match[0];
      add(`w:${word}`, WORD_WEIGHT);
      if (ngram > 0 && word.length > ngram) {
        const padded = `^${word}$`;
        for (let i = 0; i + ngram <= padded.length; i++) add(`g:${padded.slice(i, i + ngram)}`, NGRAM_WEIGHT);
      }
    }
    let norm = 0;
    for (const value of vector) norm += value * value;
    if (norm === 0) {
      // No features (blank or punctuation only), or features that cancelled out: a fixed unit vector.
      add('\u0000empty', 1);
      norm = 1;
    }
    const scale = 1 / Math.sqrt(norm);
    return Array.from(vector, (value) => value * scale);
  }

  return {
    id: `hashing-v1/${dimensions}${ngram === 3 ? '' : `/ngram${ngram}`}`,
    dimensions,
    embed(texts) {
      if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
        return Promise.reject(new TypeError('embed: texts must be an array of strings'));
      }
      return Promise.resolve(texts.map(embedOne));
    },
  };
}
