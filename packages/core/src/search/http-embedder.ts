import pRetry, { AbortError } from 'p-retry';
import { AikbError, UnavailableError } from '../errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { Embedder } from './search';
import { validateVector } from './validate-vector';

/** {@link createOpenAiEmbedder} options. */
export interface OpenAiEmbedderOptions {
  /** The API root, `/embeddings` is appended: `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama), `http://vllm:8000/v1`. Required. */
  baseUrl: string;
  /** The model name (`text-embedding-3-small`, `nomic-embed-text`, ...). Required. */
  model: string;
  /** The length of the vectors the model returns; checked on every answer. Required. */
  dimensions: number;
  /** Sent as `Authorization: Bearer <apiKey>`; omit for a local server. */
  apiKey?: string;
  /**
   * Send `dimensions` in the request (OpenAI's text-embedding-3 models shorten their vectors to
   * it; most other servers reject the field).
   * @default false
   */
  sendDimensions?: boolean;
  /**
   * Texts per HTTP request.
   * @default 64
   */
  batchSize?: number;
  /**
   * Time allowed for one HTTP request, in milliseconds.
   * @default 30_000
   */
  timeoutMs?: number;
  /**
   * Retries of a request that failed with a network error, a timeout, 408, 429 or a 5xx.
   * @default 3
   */
  retries?: number;
  /**
   * Delay before the first retry, doubled for each next one, in milliseconds.
   * @default 500
   */
  retryDelayMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default noopLogger */
  logger?: Logger;
}

const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
/** Answers larger than this are refused (64 texts × 3072 floats as JSON is about 4 MB). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

interface EmbeddingsResponse {
  data?: unknown;
}

/**
 * An embedder over any OpenAI-compatible `POST /embeddings` endpoint (OpenAI, Azure-style
 * proxies, Ollama's `/v1`, vLLM, LiteLLM). Texts go in batches of `batchSize`; each request has
 * a timeout and is retried (with p-retry, exponential backoff) on network errors, timeouts, 429
 * and 5xx; any other 4xx fails at once. Every returned vector is checked (count, order, D, finite,
 * non-zero) before it can reach the database.
 *
 * @throws {TypeError} when an option is invalid
 * @example
 * ```ts
 * const embedder = createOpenAiEmbedder({ baseUrl: 'http://localhost:11434/v1', model: 'nomic-embed-text', dimensions: 768 })
 * ```
 */
export function createOpenAiEmbedder(options: OpenAiEmbedderOptions): Embedder {
  const check = checkOptions('createOpenAiEmbedder', options);
  check.string('baseUrl', true);
  check.string('model', true);
  check.number('dimensions', { min: 1, max: 16_000, integer: true });
  if (options.dimensions === undefined) throw new TypeError('createOpenAiEmbedder: dimensions must be a whole number ≥ 1 (got undefined)');
  check.string('apiKey');
  check.boolean('sendDimensions');
  check.number('batchSize', { min: 1, max: 2048, integer: true });
  check.number('timeoutMs', { min: 1, integer: true });
  check.number('retries', { min: 0, max: 10, integer: true });
  check.number('retryDelayMs', { min: 0, integer: true });
  check.function('fetch');
  check.object('logger', 'a Logger', false, ['warn']);
  let url: URL;
  try {
    url = new URL(`${options.baseUrl.replace(/\/+$/, '')}/embeddings`);
  } catch {
    throw new TypeError(`createOpenAiEmbedder: baseUrl must be an absolute http(s) URL (got ${JSON.stringify(options.baseUrl)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`createOpenAiEmbedder: baseUrl must be an http(s) URL (got ${url.protocol})`);
  const {
    model,
    dimensions,
    apiKey,
    sendDimensions = false,
    batchSize = 64,
    timeoutMs = 30_000,
    retries = 3,
    retryDelayMs = 500,
    fetch: fetchFn = globalThis.fetch,
    logger = noopLogger,
  } = options;
  const where = `${url.origin}${url.pathname}`;

  async function request(batch: readonly string[], signal: AbortSignal | undefined): Promise<number[][]> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
        body: JSON.stringify({ model, input: batch, ...(sendDimensions ? { dimensions } : {}) }),
        signal: combined,
      });
    } catch (error) {
      if (signal?.aborted) throw new AbortError(new AikbError('DEADLINE_EXCEEDED', 'embedding was cancelled', { cause: error }));
      if (timeout.aborted) throw new UnavailableError(`the embedding server at ${where} did not answer within ${timeoutMs} ms`, { cause: error });
      throw new UnavailableError(`the embedding server at ${where} could not be reached`, { cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      const error = new UnavailableError(`the embedding server at ${where} answered HTTP ${response.status}`, { details: { status: response.status } });
      if (RETRYABLE_STATUS.has(response.status)) throw error;
      throw new AbortError(
        new AikbError(
          'FAILED_PRECONDITION',
          `the embedding server at ${where} refused the request (HTTP ${response.status}): check baseUrl, model and apiKey`,
          { details: { status: response.status } },
        ),
      );
    }
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > MAX_RESPONSE_BYTES)
      throw new AbortError(new AikbError('INTERNAL', `the embedding server at ${where} answered ${declared} bytes, more than ${MAX_RESPONSE_BYTES}`));
    let body: EmbeddingsResponse;
    try {
      body = (await response.json()) as EmbeddingsResponse;
    } catch (error) {
      if (timeout.aborted) throw new UnavailableError(`the embedding server at ${where} did not finish its answer within ${timeoutMs} ms`, { cause: error });
      throw new AbortError(new AikbError('INTERNAL', `the embedding server at ${where} answered something that is not JSON`, { cause: error }));
    }
    return readVectors(body, batch.length);
  }

  function readVectors(body: EmbeddingsResponse, expected: number): number[][] {
    const fail = (why: string) => new AbortError(new AikbError('INTERNAL', `the embedding server at ${where} (model ${model}) ${why}`));
    if (body === null || typeof body !== 'object' || !Array.isArray(body.data)) throw fail('answered without a data array');
    if (body.data.length !== expected) throw fail(`returned ${body.data.length} embeddings for ${expected} texts`);
    const vectors = new Array<number[] | undefined>(expected);
    body.data.forEach((item: unknown, position: number) => {
      const record = (item ?? {}) as { index?: unknown; embedding?: unknown };
      const index = record.index === undefined ? position : record.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= expected || vectors[index])
        throw fail(`returned a bad or repeated index ${JSON.stringify(index) ?? 'undefined'}`);
      try {
        vectors[index] = validateVector(record.embedding, dimensions, `data[${position}].embedding`);
      } catch (error) {
        throw fail(`returned an unusable embedding: ${(error as Error).message} (is dimensions ${dimensions} right for this model?)`);
      }
    });
    return vectors as number[][];
  }

  return {
    id: `openai-compatible/${url.host}/${model}`,
    dimensions,
    async embed(texts, embedOptions = {}) {
      if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) throw new TypeError('embed: texts must be an array of strings');
      const result: number[][] = [];
      for (let start = 0; start < texts.length; start += batchSize) {
        const batch = texts.slice(start, start + batchSize);
        const vectors = await pRetry(() => request(batch, embedOptions.signal), {
          retries,
          minTimeout: retryDelayMs,
          factor: 2,
          maxTimeout: Math.max(retryDelayMs, 30_000),
          randomize: true,
          unref: true,
          ...(embedOptions.signal ? { signal: embedOptions.signal } : {}),
          onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
            if (retriesLeft > 0) logger.warn({ err: error, attempt: attemptNumber, retriesLeft, url: where }, 'embedding request failed; retrying');
          },
        });
        result.push(...vectors);
      }
      return result;
    },
  };
}
