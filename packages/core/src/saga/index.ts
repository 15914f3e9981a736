/**
 * `@aikb/core/saga`: durable multi-step operations with compensations. Each step's start, attempts,
 * outcome and output is written to a {@link SagaLog} (Postgres or memory) before the next step
 * begins; a failure runs the compensations of the steps that ran, in reverse; an interrupted saga
 * is recovered by exactly one instance, across restarts and deploys.
 */
export type {
  FinishStep,
  JsonValue,
  NewSaga,
  SagaCompensationContext,
  SagaDefinition,
  SagaDefinitionOptions,
  SagaErrorInfo,
  SagaLease,
  SagaListQuery,
  SagaLog,
  SagaOutcome,
  SagaPage,
  SagaPhase,
  SagaRecord,
  SagaRecoveryPolicy,
  SagaRecoveryResult,
  SagaRetryPolicy,
  SagaRunner,
  SagaRunnerOptions,
  SagaRunnerStats,
  SagaRunOptions,
  SagaState,
  SagaStepContext,
  SagaStepDefinition,
  SagaStepOptions,
  SagaStepRecord,
  SagaStepStatus,
  SagaSummary,
  SagaTransition,
  StartStep,
  StepStarted,
} from './saga';
export { SAGA_STATES } from './saga';
export { defineSaga } from './define-saga';
export { createSagaRunner } from './create-saga-runner';
export { createMemorySagaLog } from './memory-saga-log';
export type { PostgresSagaLogOptions } from './postgres-saga-log';
export { createPostgresSagaLog, sagaLogMigrations } from './postgres-saga-log';
