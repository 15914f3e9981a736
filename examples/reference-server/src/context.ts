import type { Meter } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import type { InvalidationBus } from '@aikb/core/cache';
import type { FeatureFlagClient } from '@aikb/core/flags';
import type { StatusRegistry } from '@aikb/core/health';
import type { ServerConfig } from './config';
import type { Infrastructure } from './infrastructure';
import type { PinoLogger } from './logger';
import type { AuthSubsystem } from './subsystems/auth';
import type { DocumentsSubsystem } from './subsystems/documents';
import type { Observability } from './subsystems/observability';
import type { SagaSubsystem } from './subsystems/saga';
import type { SearchSubsystem } from './subsystems/search';

/**
 * Everything the server's subsystems share, created once at start-up. A subsystem
 * (`src/subsystems/<name>.ts`) registers its health checks on `infra.health`, its operator status
 * on `status`, and records its metrics through `meter`. Each subsystem is a `Subsystem` entry
 * (`src/lifecycle.ts`) declaring what it needs and what it adds here; `contextSubsystems` in
 * `server.ts` lists them in start order, and they close in reverse.
 */
export interface ServerContext {
  readonly config: ServerConfig;
  readonly logger: PinoLogger;
  readonly infra: Infrastructure;
  /** Subsystem status for `GET /api/admin/system/status`. */
  readonly status: StatusRegistry;
  /** The one Prometheus registry, served at `GET /metrics`: `meter`'s instruments and the process metrics. */
  readonly metrics: Registry;
  /**
   * The one OpenTelemetry meter every primitive and middleware records through (`meter` option),
   * bridged into `metrics` by `@aikb/prometheus`.
   */
  readonly meter: Meter;
  /** Pool monitoring, tracing, request logs, HTTP metrics and their routes (`src/subsystems/observability.ts`). */
  readonly observability: Observability;
  /** Feature flags (`src/subsystems/flags.ts`): `ctx.flags.isEnabled('priority_1_3_constant_time_auth', { userId })`. */
  readonly flags: FeatureFlagClient;
  /**
   * The invalidation bus (Redis, Postgres LISTEN/NOTIFY or in-process), created and closed by the
   * flags subsystem; others only publish and subscribe (auth: session revocations).
   */
  readonly bus: InvalidationBus;
  /** Login, user tokens, the admin guard and user management. */
  readonly auth: AuthSubsystem;
  /** The durable saga runner (`src/subsystems/saga.ts`); definitions register with their endpoint. */
  readonly sagas: SagaSubsystem;
  /** Documents and search (`POST /api/search`, `/api/documents`, `/api/admin/documents`). */
  readonly search: SearchSubsystem;
  /** Uploads and deletes (`POST /api/documents/upload`, `DELETE /api/documents/:id`): Drive, the document table, the upload and delete sagas. */
  readonly documents: DocumentsSubsystem;
}
