import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createOpenAiEmbedder } from './http-embedder';

interface Received {
  authorization: string | undefined;
  body: { model: string; input: string[]; dimensions?: number };
}

/** A fake OpenAI-compatible server on 127.0.0.1: `answer` decides each reply. */
async function fakeServer(answer: (request: Received, n: number, res: ServerResponse) => void): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (chunk: Buffer) => (data += chunk.toString()));
    req.on('end', () => {
      const request = { authorization: req.headers.authorization, body: JSON.parse(data) as Received['body'] };
      received.push(request);
      answer(request, received.length, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, received, server };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const vectorFor = (text: string, d: number) => Array.from({ length: d }, (_, i) => (i === text.length % d ? 1 : 0.1));
const ok = (request: Received, res: ServerResponse, d = 4) => {
  res.setHeader('content-type', 'application/json');
  // Reversed, with indexes: the embedder must put them back in order.
  res.end(JSON.stringify({ data: request.body.input.map((text, index) => ({ index, embedding: vectorFor(text, d) })).reverse() }));
};

describe('createOpenAiEmbedder', () => {
  it('posts batches to /embeddings with the model and key, and returns vectors in input order', async () => {
    const fake = await fakeServer((request, _n, res) => ok(request, res));
    const embedder = createOpenAiEmbedder({ baseUrl: `${fake.url}/`, model: 'm', dimensions: 4, apiKey: 'sk-test', batchSize: 2 });
    const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
    expect(await embedder.embed(texts)).toEqual(texts.map((t) => vectorFor(t, 4)));
    expect(fake.received.map((r) => r.body.input)).toEqual([['a', 'bb'], ['ccc', 'dddd'], ['eeeee']]);
    expect(fake.received[0]).toMatchObject({ authorization: 'Bearer sk-test', body: { model: 'm' } });
    expect(fake.received[0]!.body.dimensions).toBeUndefined();
    expect(embedder).toMatchObject({ dimensions: 4, id: expect.stringContaining('/m') as string });
  });

  it('retries 429 and 5xx answers, then succeeds', async () => {
    const fake = await fakeServer((request, n, res) => {
      if (n <= 2) {
        res.statusCode = n === 1 ? 429 : 503;
        res.end('busy');
        return;
      }
      ok(request, res);
    });
    const embedder = createOpenAiEmbedder({ baseUrl: fake.url, model: 'm', dimensions: 4, retries: 3, retryDelayMs: 1 });
    expect(await embedder.embed(['x'])).toHaveLength(1);
    expect(fake.received).toHaveLength(3);
  });

  it('gives up after the retries with an UNAVAILABLE error', async () => {
    const fake = await fakeServer((_request, _n, res) => {
      res.statusCode = 500;
      res.end();
    });
    const embedder = createOpenAiEmbedder({ baseUrl: fake.url, model: 'm', dimensions: 4, retries: 2, retryDelayMs: 1 });
    await expect(embedder.embed(['x'])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(fake.received).toHaveLength(3);
  });

  it('does not retry a 4xx such as a bad key', async () => {
    const fake = await fakeServer((_request, _n, res) => {
      res.statusCode = 401;
      res.end();
    });
    const embedder = createOpenAiEmbedder({ baseUrl: fake.url, model: 'm', dimensions: 4, retries: 3, retryDelayMs: 1 });
    await expect(embedder.embed(['x'])).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringMatching(/HTTP 401/) as string });
    expect(fake.received).toHaveLength(1);
  });

  it('times out a server that does not answer, and retries it', async () => {
    const fake = await fakeServer((request, n, res) => {
      if (n === 1) return; // never answers
      ok(request, res);
    });
    const embedder = createOpenAiEmbedder({ baseUrl: fake.url, model: 'm', dimensions: 4, timeoutMs: 50, retries: 1, retryDelayMs: 1 });
    expect(await embedder.embed(['x'])).toHaveLength(1);
    expect(fake.received).toHaveLength(2);
  });

  it.each([
    ['a wrong dimension', (r: Received) => ({ data: r.body.input.map((_, index) => ({ index, embedding: [1, 2] })) })],
    ['NaN-like nulls', (r: Received) => ({ data: r.body.input.map((_, index) => ({ index, embedding: [1, null, 1, 1] })) })],
    ['a zero vector', (r: Received) => ({ data: r.body.input.map((_, index) => ({ index, embedding: [0, 0, 0, 0] })) })],
    ['too few embeddings', () => ({ data: [] })],
    ['a repeated index', (r: Received) => ({ data: r.body.input.map(() => ({ index: 0, embedding: [1, 1, 1, 1] })) })],
    ['no data', () => ({ error: 'x' })],
  ])('refuses an answer with %s, without retrying', async (_name, reply) => {
    const fake = await fakeServer((request, _n, res) => res.end(JSON.stringify(reply(request))));
    const embedder = createOpenAiEmbedder({ baseUrl: fake.url, model: 'm', dimensions: 4, retries: 3, retryDelayMs: 1 });
    await expect(embedder.embed(['x', 'y'])).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(fake.received).toHaveLength(1);
  });

  it('sends dimensions when asked (OpenAI text-embedding-3)', async () => {
    const fake = await fakeServer((request, _n, res) => ok(request, res));
    await createOpenAiEmbedder({ baseUrl: fake.url, model: 'm', dimensions: 4, sendDimensions: true }).embed(['x']);
    expect(fake.received[0]!.body.dimensions).toBe(4);
  });

  it('names a bad option', () => {
    expect(() => createOpenAiEmbedder({ baseUrl: 'not a url', model: 'm', dimensions: 4 })).toThrow(/baseUrl/);
    expect(() => createOpenAiEmbedder({ baseUrl: 'ftp://x', model: 'm', dimensions: 4 })).toThrow(/baseUrl/);
    expect(() => createOpenAiEmbedder({ baseUrl: 'http://x', model: '', dimensions: 4 })).toThrow(/model/);
    expect(() => createOpenAiEmbedder({ baseUrl: 'http://x', model: 'm' } as never)).toThrow(/dimensions/);
    expect(() => createOpenAiEmbedder({ baseUrl: 'http://x', model: 'm', dimensions: 4, timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
