/**
 * The operator CLI's one way to call the server: bounded in time, and every failure turned into
 * one line an operator can act on (never a stack trace, never a token).
 */

/** A failure the CLI reports as one line on stderr, with the exit code scripts can trust. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  constructor(
    message: string,
    /** 1: the request failed (4xx, 5xx, no connection, timeout); 2: the command line was wrong. */
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** Who a request is made as. */
export type Caller = 'admin' | 'user' | 'anonymous';

/** A token and where it came from (named in errors; the token itself never is). */
export interface Credential {
  readonly token: string | undefined;
  /** `ADMIN_TOKEN`, a file path, ...: what to fix when it is refused. */
  readonly source: string;
}

/** Where and how the CLI talks to the server. */
export interface Target {
  readonly url: URL;
  readonly timeoutMs: number;
  readonly admin: () => Credential;
  readonly user: () => Credential;
}

/** One request. */
export interface Call {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Under the server's URL, e.g. `/api/admin/feature-flags`. */
  readonly path: string;
  readonly as: Caller;
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as multipart/form-data (fetch sets the boundary). */
  readonly form?: FormData;
  readonly headers?: Readonly<Record<string, string>>;
  /** Statuses besides 2xx whose body is the answer (the health check's 503). */
  readonly accept?: readonly number[];
}

/** What the server answered. */
export interface Answer {
  readonly status: number;
  /** The parsed JSON body; `undefined` for an empty one (204). */
  readonly body: unknown;
}

/** The longest answer the CLI reads; beyond it the request fails (a CLI's output is for people). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** `value` percent-encoded as one path segment (ids and names come from the command line). */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

function urlOf(target: Target, call: Call): URL {
  const url = new URL(target.url.pathname.replace(/\/$/, '') + call.path, target.url);
  for (const [key, value] of Object.entries(call.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
  return url;
}

function connectionFailure(error: unknown, target: Target): CliFailure {
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError')
    return new CliFailure(`no answer from ${target.url.origin} within ${target.timeoutMs / 1000} s (raise it with --timeout <seconds>)`, 1);
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH')
    return new CliFailure(`no aikb server at ${target.url.origin}: is it running? (${code}; set AIKB_URL or --url)`, 1);
  const detail = typeof cause?.message === 'string' ? cause.message : (error as Error | undefined)?.message;
  return new CliFailure(`the request to ${target.url.origin} failed: ${detail ?? String(error)}${code ? ` (${code})` : ''}`, 1);
}

interface ProblemBody {
  title?: unknown;
  detail?: unknown;
  field?: unknown;
  similar?: unknown;
  retryAfterSeconds?: unknown;
}

/** The one line for a refused request: what went wrong and what to do. */
function refusal(status: number, body: unknown, call: Call, credential: Credential | undefined): CliFailure {
  const problem = (typeof body === 'object' && body !== null ? body : {}) as ProblemBody;
  const detail = typeof problem.detail === 'string' ? problem.detail : undefined;
  // The admin guard answers 401 without a valid credential, 403 for a token that is not the admin one.
  if (status === 401 || status === 403) {
    const whence = credential?.token === undefined ? `no token: ${credential?.source ?? 'none found'}` : `from ${credential.source}`;
    const why = detail ? `; the server says: ${detail}` : '';
    if (call.as === 'admin') return new CliFailure(`the admin token was refused: set ADMIN_TOKEN or --token-file (${whence})${why}`, 1);
    if (call.as === 'user' && status === 401)
      return new CliFailure(`the user token was refused: run aikb login --email <email>, or set AIKB_USER_TOKEN (${whence})${why}`, 1);
    return new CliFailure(`${status === 401 ? 'not signed in' : 'forbidden'}: ${detail ?? 'the credentials were refused'}`, 1);
  }
  if (status === 404) {
    const similar = Array.isArray(problem.similar) ? problem.similar.filter((s): s is string => typeof s === 'string') : [];
    const missing = similar.filter((name) => !detail?.includes(name));
    const hint = missing.length > 0 ? ` (similar: ${missing.join(', ')})` : '';
    return new CliFailure(`not found: ${detail ?? `${call.method} ${call.path}`}${hint}`, 1);
  }
  const title = typeof problem.title === 'string' ? problem.title : `HTTP ${status}`;
  const field = typeof problem.field === 'string' ? ` (field: ${problem.field})` : '';
  const retry = typeof problem.retryAfterSeconds === 'number' ? ` (retry after ${problem.retryAfterSeconds} s)` : '';
  return new CliFailure(`${status} ${title}${detail ? `: ${detail}` : ''}${field}${retry}`, 1);
}

/** The body as text, read up to {@link MAX_ANSWER_BYTES} (a larger one fails: it is not an answer for people). */
async function readText(response: Response): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream: the rest is never read.
    if (size > MAX_ANSWER_BYTES) throw new CliFailure(`the answer is larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`, 1);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readBody(response: Response): Promise<unknown> {
  const text = await readText(response);
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

/**
 * Makes one request and answers the parsed body of a 2xx (or an `accept`ed status).
 * @throws {CliFailure} with exit code 1 for any other status, no connection or a timeout
 */
export async function request(target: Target, call: Call): Promise<Answer> {
  const credential = call.as === 'admin' ? target.admin() : call.as === 'user' ? target.user() : undefined;
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  if (credential?.token !== undefined) headers.authorization = `Bearer ${credential.token}`;
  if (call.json !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  let body: unknown;
  try {
    response = await fetch(urlOf(target, call), {
      method: call.method,
      headers,
      body: call.json !== undefined ? JSON.stringify(call.json) : call.form,
      signal: AbortSignal.timeout(target.timeoutMs),
      redirect: 'error',
    });
    body = await readBody(response);
  } catch (error) {
    if (error instanceof CliFailure) throw error;
    throw connectionFailure(error, target);
  }
  if (response.ok || call.accept?.includes(response.status)) return { status: response.status, body };
  throw refusal(response.status, body, call, credential);
}
