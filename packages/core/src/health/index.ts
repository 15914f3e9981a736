/** `@aikb/core/health`: named, measured health checks that each subsystem registers itself. */
export type {
  ComponentHealth,
  ComponentStatus,
  HealthCheck,
  HealthRegistry,
  HealthRegistryOptions,
  HealthReport,
  MeasuredComponentHealth,
} from './health';
export { createHealthRegistry } from './create-health-registry';
