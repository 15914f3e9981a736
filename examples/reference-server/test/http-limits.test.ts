import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { until } from '@aikb/test-support';
import { eventually, startServerProcess, tempDataDir, useServerProcesses, type ServerProcess } from './harness';

const { running, cleanups } = useServerProcesses();

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const data = tempDataDir();
  cleanups.push(data.cleanup);
  const server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ...env });
  running.push(server);
  return server;
}

/** A raw TCP client: what it received, and a promise of when the server closed the connection. */
interface RawClient {
  readonly socket: Socket;
  received(): string;
  readonly closed: Promise<number>;
}

async function open(server: ServerProcess): Promise<RawClient> {
  const socket = connect(server.port, '127.0.0.1');
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  socket.on('error', () => {}); // a reset is one way of being cut off
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => data, closed };
}

/** Writes one byte of `text` every `everyMs` until the socket closes. */
function trickle(client: RawClient, text: string, everyMs: number): () => void {
  let i = 0;
  const timer = setInterval(() => {
    if (client.socket.destroyed || client.socket.writableEnded) return clearInterval(timer);
    client.socket.write(text[i++ % text.length]!);
  }, everyMs);
  return () => clearInterval(timer);
}

/** Resolves with the close time, or rejects once `ms` have passed: never waits longer than that. */
function closedWithin(client: RawClient, ms: number, what: string): Promise<number> {
  return Promise.race([
    client.closed,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: connection still open after ${ms} ms`)), ms)),
  ]);
}

/** One request on an open connection; resolves with the status of the answer. */
async function requestOn(client: RawClient, path: string): Promise<number> {
  const before = client.received().length;
  client.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const answer = () => client.received().slice(before);
  await until(() => /^HTTP\/1\.1 \d{3}/.test(answer()) && answer().includes('\r\n\r\n'), `an answer to ${path}`, 5000, 10);
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer())![1]);
}

describe('aikb-server HTTP timeouts (slow clients)', () => {
  // Short limits so the test is quick; the defaults are 10 s for headers and 30 s for the request.
  const limits = { HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000' };
  const slack = 1500;

  /** Sends `head`, then trickles `slowly` a byte every 100 ms; resolves with what the server answered before it cut the connection. */
  async function cutWithin(server: ServerProcess, head: string, slowly: string, ms: number): Promise<{ answer: string; afterMs: number }> {
    const client = await open(server);
    const opened = Date.now();
    client.socket.write(head);
    const stop = trickle(client, slowly, 100);
    try {
      const closedAt = await closedWithin(client, ms, 'slow client');
      return { answer: client.received(), afterMs: closedAt - opened };
    } finally {
      stop();
    }
  }

  it('cuts a client whose headers never end (slowloris) within HTTP_HEADERS_TIMEOUT_MS, with a 408', async () => {
    const server = await start(limits);
    const cut = await cutWithin(server, 'GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaa\r\n', 1000 + slack);
    expect(cut.afterMs).toBeGreaterThanOrEqual(900);
    expect(cut.answer).toMatch(/^HTTP\/1\.1 408/);
    // The server is fine for everyone else.
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
  });

  it('cuts a client that trickles its body within HTTP_REQUEST_TIMEOUT_MS', async () => {
    const server = await start(limits);
    const head = 'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"email":"';
    const cut = await cutWithin(server, head, 'a', 2000 + slack);
    expect(cut.afterMs).toBeLessThanOrEqual(2000 + slack);
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
  });

  it('closes a connection that sends nothing at all within HTTP_HEADERS_TIMEOUT_MS', async () => {
    const server = await start(limits);
    const client = await open(server);
    await closedWithin(client, 1000 + slack, 'silent connection');
  });
});

describe('aikb-server connection cap (HTTP_MAX_CONNECTIONS)', () => {
  it('refuses connections over the cap while still answering the ones it holds', async () => {
    const cap = 4;
    const server = await start({ HTTP_MAX_CONNECTIONS: String(cap), HTTP_KEEPALIVE_TIMEOUT_MS: '20000' });
    // Fill the cap with keep-alive connections, each proven accepted by an answer.
    const held: RawClient[] = [];
    for (let i = 0; i < cap; i++) {
      const client = await open(server);
      held.push(client);
      expect(await requestOn(client, '/api/health')).toBe(200);
    }
    try {
      const over = await open(server);
      await closedWithin(over, 2000, 'connection over the cap');
      expect(over.received()).toBe('');
      // The connections within the cap are still served.
      expect(await requestOn(held[0]!, '/api/health')).toBe(200);
      // A freed slot is usable again.
      held.pop()!.socket.destroy();
      await eventually(
        async () => (await fetch(`${server.url}/api/health`, { headers: { connection: 'close' } })).status === 200,
        5000,
        'a request on the freed slot',
      );
    } finally {
      for (const client of held) client.socket.destroy();
    }
  });
});

describe('aikb-server proxy trust (TRUST_PROXY)', () => {
  const login = (server: ServerProcess, email: string, forwardedFor: string) =>
    fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ email, password: 'wrong-password' }),
    }).then((res) => res.status);

  /** Ten failures of one email "from" one forwarded address: the email + IP block is then on. */
  async function failTenTimes(server: ServerProcess, email: string, forwardedFor: string): Promise<void> {
    for (let i = 0; i < 10; i++) expect(await login(server, email, forwardedFor)).toBe(401);
  }

  it('by default ignores X-Forwarded-For: a client cannot pick the IP that the rate limits count', async () => {
    const server = await start();
    const email = `xff-${randomBytes(4).toString('hex')}@example.com`;
    await failTenTimes(server, email, '203.0.113.1');
    // Another forwarded address changes nothing: the limiter still sees 127.0.0.1.
    expect(await login(server, email, '198.51.100.7')).toBe(429);
    expect(await login(server, email, `198.51.100.${Math.floor(Math.random() * 200) + 10}, 10.0.0.1`)).toBe(429);
  });

  it('with TRUST_PROXY=loopback takes the client address from X-Forwarded-For sent by a local proxy', async () => {
    const server = await start({ TRUST_PROXY: 'loopback' });
    const email = `xff-${randomBytes(4).toString('hex')}@example.com`;
    await failTenTimes(server, email, '203.0.113.1');
    expect(await login(server, email, '203.0.113.1')).toBe(429);
    expect(await login(server, email, '198.51.100.7')).toBe(401);
  });

  it('refuses to start with an invalid TRUST_PROXY, naming it', async () => {
    await expect(start({ TRUST_PROXY: 'everyone' })).rejects.toThrow(/TRUST_PROXY must be false, true, a number of hops/);
  });
});

describe('aikb-server listen backlog (HTTP_LISTEN_BACKLOG)', () => {
  /** The listening socket's backlog as the kernel holds it (`ss -ltn`: Send-Q of a listener). */
  function backlogOf(port: number): number {
    const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' })
      .trim()
      .split(/\s+/);
    return Number(out[2]);
  }
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));

  it('listens with a backlog of 4096 by default (capped by net.core.somaxconn), not 511, so a burst of connections is not dropped', async () => {
    const server = await start();
    expect(backlogOf(server.port)).toBe(Math.min(4096, somaxconn));
  });

  it('takes HTTP_LISTEN_BACKLOG', async () => {
    const server = await start({ HTTP_LISTEN_BACKLOG: '64' });
    expect(backlogOf(server.port)).toBe(64);
  });
});
