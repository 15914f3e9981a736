const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3, x86 32-bit variant, over the UTF-8 bytes of `key`, as an unsigned integer.
 *
 * ASCII keys (every flag name, and nearly every user id) are hashed straight from their char
 * codes without allocating, which keeps flag evaluation free of garbage; other keys are encoded
 * to UTF-8 first, as the reference implementation and Unleash's server-side SDKs do.
 */
export function murmur3x86_32(key: string, seed = 0): number {
  const length = key.length;
  for (let i = 0; i < length; i++) {
    if (key.charCodeAt(i) > 0x7f) return hashBytes(Buffer.from(key, 'utf8'), seed);
  }
  let h1 = seed | 0;
  const blocks = length & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    h1 = mixBlock(h1, key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8) | (key.charCodeAt(i + 2) << 16) | (key.charCodeAt(i + 3) << 24));
  }
  const tail = length & 3;
  if (tail > 0) {
    let k1 = key.charCodeAt(i);
    if (tail > 1) k1 ^= key.charCodeAt(i + 1) << 8;
    if (tail > 2) k1 ^= key.charCodeAt(i + 2) << 16;
    h1 ^= mixTail(k1);
  }
  return finish(h1, length);
}

function hashBytes(bytes: Uint8Array, seed: number): number {
  let h1 = seed | 0;
  const length = bytes.length;
  const blocks = length & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    h1 = mixBlock(h1, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const tail = length & 3;
  if (tail > 0) {
    let k1 = bytes[i]!;
    if (tail > 1) k1 ^= bytes[i + 1]! << 8;
    if (tail > 2) k1 ^= bytes[i + 2]! << 16;
    h1 ^= mixTail(k1);
  }
  return finish(h1, length);
}

function mixBlock(h1: number, k1: number): number {
  h1 ^= mixTail(k1);
  h1 = (h1 << 13) | (h1 >>> 19);
  return (Math.imul(h1, 5) + 0xe6546b64) | 0;
}

function mixTail(k1: number): number {
  k1 = Math.imul(k1, C1);
  k1 = (k1 << 15) | (k1 >>> 17);
  return Math.imul(k1, C2);
}

function finish(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A hasher for keys that all start with the same ASCII `prefix` (`${flag}:`): the prefix's blocks
 * are mixed once, so each call hashes only the rest, without building the joined string.
 * `hasher(rest) === murmur3x86_32(prefix + rest, 0)` for every `rest`.
 */
export function prefixedMurmur3(prefix: string): (rest: string) => number {
  const length = prefix.length;
  const blocks = length & ~3;
  let h = 0;
  for (let i = 0; i < blocks; i += 4) {
    h = mixBlock(h, prefix.charCodeAt(i) | (prefix.charCodeAt(i + 1) << 8) | (prefix.charCodeAt(i + 2) << 16) | (prefix.charCodeAt(i + 3) << 24));
  }
  const carried = length - blocks;
  let carry = 0;
  for (let j = 0; j < carried; j++) carry |= prefix.charCodeAt(blocks + j) << (8 * j);
  return (rest) => {
    let h1 = h;
    let k1 = carry;
    let filled = carried;
    const restLength = rest.length;
    for (let i = 0; i < restLength; i++) {
      const code = rest.charCodeAt(i);
      if (code > 0x7f) return murmur3x86_32(prefix + rest, 0);
      k1 |= code << (filled << 3);
      if (++filled === 4) {
        h1 = mixBlock(h1, k1);
        k1 = 0;
        filled = 0;
      }
    }
    if (filled > 0) h1 ^= mixTail(k1);
    return finish(h1, length + restLength);
  };
}
