import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import { expressServerOptions } from '@aikb/express';
import { createStatusRegistry } from '@aikb/core/health';
import { createPrometheusMeterProvider } from '@aikb/prometheus';
import { createApp } from './app';
import type { ServerContext } from './context';
import type { ServerConfig } from './config';
import { openInfrastructure, type Infrastructure } from './infrastructure';
import { startSubsystems, type Subsystem } from './lifecycle';
import type { PinoLogger } from './logger';
import { serverMigrations } from './migrations';
import { authSubsystem } from './subsystems/auth';
import { documentsSubsystem } from './subsystems/documents';
import { flagsSubsystem } from './subsystems/flags';
import { observabilitySubsystem } from './subsystems/observability';
import { SAGA_DRAIN_MS, sagaSubsystem, type SagaSubsystem } from './subsystems/saga';
import { searchSubsystem } from './subsystems/search';

/** A running server. */
export interface RunningServer {
  readonly port: number;
  readonly infra: Infrastructure;
  /**
   * Stops accepting connections, finishes in-flight requests, then closes every subsystem in
   * reverse start order (a failure is logged and the rest still close; it then rejects).
   */
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
export function createHttpServer(config: Pick<ServerConfig, 'http'>, app: Express): Server {
  const limits = config.http;
  const http = createServer(
    {
      // Requests and responses born with the app's prototypes: Express's per-request prototype
      // swap would otherwise cost about half of a cheap request's CPU (bench:http).
      ...expressServerOptions(app),
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

/** The config, logger, registries and the meter every subsystem starts on. */
export type InitialContext = Pick<ServerContext, 'config' | 'logger' | 'status' | 'metrics' | 'meter'>;

/** The initial context: fresh status and Prometheus registries, and the server-wide meter recording into the latter. */
export function createInitialContext(config: ServerConfig, logger: PinoLogger): InitialContext {
  const metrics = new Registry();
  const meter = createPrometheusMeterProvider({ registry: metrics }).getMeter('@aikb/reference-server');
  return { config, logger, status: createStatusRegistry(), metrics, meter };
}

/** Opens the database and Redis (`infra`); closes them last. */
const infrastructureSubsystem: Subsystem<InitialContext, Pick<ServerContext, 'infra'>> = {
  name: 'infrastructure',
  start: async ({ config, logger }) => ({ infra: await openInfrastructure(config, logger, serverMigrations) }),
  close: ({ infra }) => infra.close(),
};

/**
 * Waits for migrations. Embedded mode has no outage to wait out: start serving on a migrated
 * schema. A server database gets one attempt; if it is down, serve degraded while migrations
 * retry in the background.
 */
const migrationsSubsystem: Subsystem<Pick<ServerContext, 'config' | 'infra'>, object> = {
  name: 'migrations',
  async start({ config, infra }) {
    if (!config.databaseUrl) await infra.migrated;
    else await infra.firstMigrationAttempt;
    return {};
  },
};

/**
 * Everything the app is built on, in start order (each finds what it needs in the context the
 * ones before it provided); closed in reverse. A new subsystem is one entry here.
 */
export const contextSubsystems = [
  infrastructureSubsystem,
  migrationsSubsystem,
  observabilitySubsystem,
  flagsSubsystem,
  authSubsystem,
  sagaSubsystem,
  searchSubsystem,
  documentsSubsystem,
] as const;

/**
 * How long requests in flight get to be answered on shutdown; what is still open then is cut. The
 * rest of the shutdown (pools, Redis) then has 2 s before the CLI's forced exit at 10 s.
 */
const REQUEST_GRACE_MS = 8000;

/**
 * Shuts the HTTP server down: stops accepting, lets the requests in flight be answered and closes
 * each connection as soon as its answer is sent (keep-alive ones too). A request that waits for a
 * saga (an upload) is answered once its saga finishes or, after {@link SAGA_DRAIN_MS}, is
 * interrupted by the closing runner (its lease released so that recovery, here once restarted or
 * on another instance, undoes it at once): the runner is closed here, not after the HTTP server,
 * which would wait for those requests until the forced exit. After {@link REQUEST_GRACE_MS} the
 * connections still open are closed.
 */
async function closeHttp(http: Server, sagas: SagaSubsystem): Promise<void> {
  const closed = new Promise<void>((resolve) => http.close(() => resolve()));
  // Node keeps a keep-alive connection open for keepAliveTimeout after each answer, even while
  // closing: from now on, an answered connection is closed at once.
  http.keepAliveTimeout = 1;
  http.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, REQUEST_GRACE_MS)));
  try {
    // Bounded too: a saga whose log cannot be written (the database gone) must not hold the stop.
    await Promise.race([sagas.runner.close({ drainMs: SAGA_DRAIN_MS }), grace]);
    await Promise.race([closed, grace]);
  } finally {
    clearTimeout(timer);
    http.closeAllConnections();
  }
  await closed;
}

/** Builds the app and listens; on close, stops listening and answers what is in flight (see {@link closeHttp}). */
const httpSubsystem: Subsystem<ServerContext, { http: Server; port: number }> = {
  name: 'http',
  async start(ctx) {
    const { config } = ctx;
    const http = createHttpServer(config, createApp(ctx));
    http.listen({ port: config.port, host: config.host, backlog: config.http.listenBacklog });
    try {
      await once(http, 'listening');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new StartupError(`port ${config.port} on ${config.host} is already in use (set PORT to a free port)`);
      if (code === 'EACCES') throw new StartupError(`not allowed to listen on port ${config.port} (set PORT to a port above 1023)`);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new StartupError(`HOST ${config.host} is not an address of this machine`);
      throw error;
    }
    return { http, port: (http.address() as AddressInfo).port };
  },
  close: ({ http }, { sagas }) => closeHttp(http, sagas),
};

/** Starts every subsystem and listens; a failure closes what had started and is rethrown. */
export async function startServer(config: ServerConfig, logger: PinoLogger): Promise<RunningServer> {
  const started = await startSubsystems([...contextSubsystems, httpSubsystem], createInitialContext(config, logger), { logger });
  const { port, infra, auth } = started.ctx;
  auth.announce();
  logger.info({ port, host: config.host }, `aikb-server listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
  return { port, infra, close: () => started.close() };
}
