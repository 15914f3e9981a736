import { Router } from 'express';
import { SagaCompensationError } from '@aikb/core';
import type { ErrorMetrics } from '@aikb/core/metrics';
import { createPostgresSagaLog, createSagaRunner, type SagaDefinition, type SagaRunner, type SagaState } from '@aikb/core/saga';
import { currentRequest, requestActor, sagaRouter } from '@aikb/express';
import type { ServerContext } from '../context';
import type { Subsystem } from '../lifecycle';

/** What the saga subsystem needs from those started before it. */
type SagaNeeds = Pick<ServerContext, 'logger' | 'infra' | 'status' | 'meter'> & { readonly config: Pick<ServerContext['config'], 'sagaLeaseMs'> };

/** The saga subsystem as the rest of the server sees it (`ctx.sagas`). */
export interface SagaSubsystem {
  /** The durable runner on the server database; recovery runs at start-up and every 10 s. */
  readonly runner: SagaRunner;
  /**
   * Registers a definition (so recovery can finish its sagas) with the endpoint that runs it: the
   * `endpoint` of the runbook's log line and of the error metrics for its compensation failures.
   */
  register(definition: SagaDefinition<never, never> | SagaDefinition, options: { endpoint: string }): void;
  /**
   * Where compensation failures outside a request (found by recovery, or on an operator retry)
   * are counted; a failure inside a request is counted by that request's own error answer.
   */
  reportErrorsTo(errors: ErrorMetrics): void;
}

/**
 * Starts the saga runner on the server database: recovery at start-up (once migrations have run)
 * and on an interval (10 s, or `SAGA_LEASE_MS` when shorter), status under `sagas` in the system status, and the runbook's log line for
 * every compensation failure:
 * `requestId=… endpoint=/api/documents/upload error=SagaCompensationError message="Failed to delete from Drive"`.
 * Its leases are released on graceful shutdown, so another instance takes over at once.
 */
async function startSagas(ctx: SagaNeeds): Promise<{ sagas: SagaSubsystem }> {
  const { infra, logger } = ctx;
  const endpoints = new Map<string, string>();
  let errors: ErrorMetrics | undefined;
  let lastCounts: Readonly<Record<SagaState, number>> | undefined;

  const onCompensationFailure = (error: Error) => {
    if (!(error instanceof SagaCompensationError)) return;
    const request = currentRequest();
    const endpoint = endpoints.get(error.sagaName) ?? `saga:${error.sagaName}`;
    (request?.logger ?? logger).error(
      {
        requestId: request?.requestId ?? 'saga-recovery',
        endpoint,
        error: error.name,
        message: error.message,
        sagaId: error.sagaId,
        saga: error.sagaName,
        step: error.step,
      },
      `${error.name}: ${error.message}`,
    );
    if (!request) errors?.record({ endpoint, error: { type: error.name, message: error.message } });
  };

  const log = createPostgresSagaLog({ pool: infra.db.pool, logger });
  const runner = createSagaRunner({
    log,
    logger,
    onCompensationFailure,
    meter: ctx.meter,
    // SAGA_LEASE_MS: a saga whose process died is taken over this long after its last write.
    leaseMs: ctx.config.sagaLeaseMs,
    recoveryIntervalMs: Math.min(10_000, ctx.config.sagaLeaseMs),
  });
  ctx.status.register('sagas', async () => {
    try {
      lastCounts = await log.countByState();
    } catch {
      // the database is down: report the last counts seen
    }
    return { ...runner.stats(), ...(lastCounts ? { byState: lastCounts } : {}) };
  });

  void infra.migrated
    .then(async () => {
      const recovered = await runner.recover();
      logger.info({ ...recovered }, `sagas: runner ready, ${recovered.claimed} interrupted saga(s) recovered at start-up`);
    })
    .catch((error: unknown) => logger.error({ err: error }, `sagas: start-up recovery failed (${(error as Error).message}); retried every 10 s`));

  return {
    sagas: {
      runner,
      register(definition, { endpoint }) {
        runner.register(definition);
        endpoints.set(definition.name, endpoint);
        // Its interrupted sagas are recovered now, not at the next interval.
        void infra.migrated.then(() => runner.recover()).catch(() => undefined);
      },
      reportErrorsTo(target) {
        errors = target;
      },
    },
  };
}

/** How long running sagas get to finish on shutdown before they are interrupted and their leases released. */
export const SAGA_DRAIN_MS = 5000;

/**
 * The saga subsystem: provides `sagas`; closes the runner (running sagas get 5 s, then are
 * interrupted and their leases released) before the database. The HTTP server closes it first on
 * shutdown, while requests waiting for their sagas are still open; this close is then a no-op.
 */
export const sagaSubsystem: Subsystem<SagaNeeds, { sagas: SagaSubsystem }> = {
  name: 'sagas',
  start: startSagas,
  close: ({ sagas }) => sagas.runner.close({ drainMs: SAGA_DRAIN_MS }),
};

/** The admin routes: `/sagas` (list, one, retry, resolve, cancel), for the guarded `/api/admin` router. */
export function sagaAdminRoutes(ctx: Pick<ServerContext, 'sagas'>): Router {
  return Router().use('/sagas', sagaRouter({ runner: ctx.sagas.runner, actor: requestActor }));
}
