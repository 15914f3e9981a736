/**
 * `@aikb/core/auth`: logins whose timing leaks nothing (a deadline fixed at the start of every
 * attempt, dummy hashing, admission control), password hashing in PHC strings, user stores,
 * user tokens and login rate limits.
 */
export type {
  AttemptObservation,
  AttemptOutcome,
  AuthenticatorStats,
  BeginOptions,
  ConstantTimeAuthenticator,
  ConstantTimeAuthenticatorOptions,
  Credentials,
  LoginAttempt,
  LoginRateLimiter,
  LoginResult,
  NewUser,
  PasswordHasher,
  User,
  UserChange,
  UserChangeOptions,
  UserPatch,
  UserRecord,
  UserStore,
} from './auth';
export { createConstantTimeAuthenticator, MAX_PASSWORD_LENGTH } from './constant-time-authenticator';
export type { Argon2HasherOptions } from './argon2-hasher';
export { createArgon2Hasher } from './argon2-hasher';
export type { ScryptHasherOptions } from './scrypt-hasher';
export { createScryptHasher } from './scrypt-hasher';
export type { MemoryUserStoreOptions } from './memory-user-store';
export { createMemoryUserStore } from './memory-user-store';
export type { PostgresUserStoreOptions } from './postgres-user-store';
export { createPostgresUserStore, userStoreMigrations } from './postgres-user-store';
export type { AddUserInput, UpdateUserInput, UserDirectory, UserDirectoryOptions } from './user-directory';
export { createUserDirectory, isUserId, MAX_POLICY_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './user-directory';
export type { IssuedToken, TokenClaims, TokenService, TokenServiceOptions } from './tokens';
export { createTokenService } from './tokens';
export type { SessionVerifier, SessionVerifierOptions, SessionVerifierStats, VerifiedSession } from './session-verifier';
export type { Principal } from '../principal';
export { createSessionVerifier, USER_KEY_PREFIX, userInvalidationKey } from './session-verifier';
export type { LoginRateLimiterOptions } from './rate-limiter';
export { createLoginRateLimiter } from './rate-limiter';
