import express, { type Express } from 'express';
import { errorHandler, healthRouter, notFound } from '@aikb/express';
import type { ServerConfig } from './config';
import type { Infrastructure } from './infrastructure';
import type { PinoLogger } from './logger';
import { version } from './version';

/** Everything a route needs, created once at start-up. */
export interface ServerContext {
  readonly config: ServerConfig;
  readonly logger: PinoLogger;
  readonly infra: Infrastructure;
}

/** Builds the Express app: the runbook's endpoints over the shared infrastructure. */
export function createApp(ctx: ServerContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(express.json({ limit: '1mb', strict: false }));

  app.use('/api/health', healthRouter({ registry: ctx.infra.health, version }));

  app.use(notFound());
  app.use(errorHandler({ logger: ctx.logger }));
  return app;
}
