/**
 * `@aikb/core/health`: named, measured health checks and operator-facing status, each registered
 * by the subsystem it describes.
 */
export type { ComponentHealth, ComponentStatus, HealthCheck, HealthRegistry, HealthRegistryOptions, HealthReport, MeasuredComponentHealth } from './health';
export { createHealthRegistry } from './create-health-registry';
export type { StatusProvider, StatusRegistry, SubsystemStatus } from './status';
export { createStatusRegistry } from './status';
