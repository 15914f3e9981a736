import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An answer as {@link rawRequest} received it, its body parsed as JSON (`null` when empty). */
export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/**
 * Sends the bytes and headers exactly as given, with their `Content-Length` (supertest labels a
 * string form-urlencoded and serializes a Buffer labelled JSON), on a connection of its own.
 */
export function rawRequest(server: Server, method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        method,
        path,
        agent: false,
        headers: { ...headers, 'Content-Length': String(bytes.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(Buffer.concat(chunks).toString() || 'null') as Record<string, unknown>,
          }),
        );
      },
    );
    // The server may answer (and close) before it has read everything.
    req.on('error', reject);
    req.end(bytes);
  });
}
