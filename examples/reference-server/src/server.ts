import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createStatusRegistry } from '@aikb/core/health';
import { createApp } from './app';
import type { ServerContext } from './context';
import type { ServerConfig } from './config';
import { openInfrastructure, type Infrastructure } from './infrastructure';
import type { PinoLogger } from './logger';
import { serverMigrations } from './migrations';
import { startFlags } from './subsystems/flags';
import { createAuthSubsystem } from './subsystems/auth';

/** A running server. */
export interface RunningServer {
  readonly port: number;
  readonly infra: Infrastructure;
  /** Stops accepting connections, finishes in-flight requests and closes every connection. */
  close(): Promise<void>;
}

/** A start-up failure with a one-line explanation for the operator. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * The Node HTTP server with every connection bounded (`HTTP_*` settings): a slow client cannot
 * hold a connection beyond the headers / request / idle timeouts, nor can many of them exhaust
 * the process beyond `HTTP_MAX_CONNECTIONS`.
 */
export function createHttpServer(config: Pick<ServerConfig, 'http'>, app: RequestListener): Server {
  const limits = config.http;
  const http = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node enforces headersTimeout and requestTimeout on this interval (default 30 s): check
      // often enough that a timeout is not overrun by more than a tenth of it (at most 1 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10))),
    },
    app,
  );
  // Inactivity in either direction (a client that stops reading the answer, a handler that never
  // writes): the socket is destroyed.
  http.setTimeout(limits.idleTimeoutMs);
  // Beyond the cap, Node closes a new connection as soon as it is accepted.
  http.maxConnections = limits.maxConnections;
  return http;
}

/** Opens the infrastructure, builds the app and listens. */
export async function startServer(config: ServerConfig, logger: PinoLogger): Promise<RunningServer> {
  const infra = await openInfrastructure(config, logger, serverMigrations);
  // Embedded mode has no outage to wait out: start serving on a migrated schema. A server database
  // gets one attempt; if it is down, serve degraded while migrations retry in the background.
  if (!config.databaseUrl) await infra.migrated;
  else await infra.firstMigrationAttempt;

  const base = { config, logger, infra, status: createStatusRegistry(), metrics: new Registry() };
  const flags = await startFlags(base);
  let ctx: ServerContext;
  try {
    const withFlags = { ...base, flags: flags.client, bus: flags.bus };
    ctx = { ...withFlags, auth: await createAuthSubsystem(withFlags) };
  } catch (error) {
    await flags.close();
    await infra.close();
    throw error;
  }
  const app = createApp(ctx);
  const http = createHttpServer(config, app);
  http.listen(config.port, config.host);
  try {
    await once(http, 'listening');
  } catch (error) {
    await flags.close();
    await infra.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new StartupError(`port ${config.port} on ${config.host} is already in use (set PORT to a free port)`);
    if (code === 'EACCES') throw new StartupError(`not allowed to listen on port ${config.port} (set PORT to a port above 1023)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new StartupError(`HOST ${config.host} is not an address of this machine`);
    throw error;
  }
  const port = (http.address() as AddressInfo).port;
  ctx.auth.announce();
  logger.info({ port, host: config.host }, `aikb-server listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);

  return {
    port,
    infra,
    async close() {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeIdleConnections();
      });
      await flags.close();
      await infra.close();
    },
  };
}
