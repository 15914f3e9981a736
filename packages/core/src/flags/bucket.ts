import { murmur3x86_32, prefixedMurmur3 } from './internal/murmur3';

/**
 * The rollout bucket (1–100) of `userId` for the flag `name`:
 * `(murmur3_x86_32(`${name}:${userId}`, seed 0) % 100) + 1`.
 *
 * This is Unleash's gradual-rollout normalisation with the flag name as group id, so a user keeps
 * their bucket as a rollout grows (everyone in at 10% is still in at 50%), every instance agrees,
 * and a flag can move between aikb and Unleash without reshuffling users. A user is in a rollout
 * of `p` percent when `bucket <= p`.
 *
 * Keys are hashed as UTF-8. For ASCII user ids this equals `unleash-client`'s value; for non-ASCII
 * ids the Node `unleash-client` (which hashes the low byte of each UTF-16 unit) differs from
 * both this function and Unleash's other SDKs.
 *
 * @example
 * ```ts
 * rolloutBucket('priority_2_1_saga_pattern', 'user-42')   // a stable number from 1 to 100
 * ```
 */
export function rolloutBucket(name: string, userId: string): number {
  return (murmur3x86_32(`${name}:${userId}`, 0) % 100) + 1;
}

/**
 * `rolloutBucket` for one flag, faster: the flag-name part of the hash is computed once.
 * `bucketsFor(name)(userId) === rolloutBucket(name, userId)`.
 */
export function bucketsFor(name: string): (userId: string) => number {
  // The prefix hasher needs an ASCII prefix; every valid flag name is.
  if (!/^\p{ASCII}*$/u.test(name)) return (userId) => rolloutBucket(name, userId);
  const hash = prefixedMurmur3(`${name}:`);
  return (userId) => (hash(userId) % 100) + 1;
}
