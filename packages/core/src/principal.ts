/**
 * Who is calling: what the auth layer produces from a verified token and what HTTP adapters hand
 * to primitives that decide by caller (search filters by it). Never built from a request body.
 */
export interface Principal {
  /** The user's id. */
  readonly userId: string;
  /** The user's roles, as stored with the user at verification time. */
  readonly roles: readonly string[];
}
