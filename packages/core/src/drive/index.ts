/**
 * `@aikb/core/drive`: where uploaded documents' bytes live. A small {@link DriveStore} interface
 * (put a stream, get, delete, exists, list by prefix) that a Google Drive or S3 adapter would
 * implement, with a file-system implementation (atomic writes under the data dir) and a memory one.
 */
export type {
  DriveBody,
  DriveEntry,
  DriveListOptions,
  DriveObject,
  DrivePage,
  DrivePutOptions,
  DrivePutResult,
  DriveStats,
  DriveStore,
  FsDriveStoreOptions,
  MemoryDriveStoreOptions,
} from './drive';
export { MAX_DRIVE_KEY_LENGTH, MAX_DRIVE_KEY_SEGMENT_LENGTH, MAX_DRIVE_LIST_LIMIT } from './drive';
export { createFsDriveStore } from './fs-drive-store';
export { createMemoryDriveStore } from './memory-drive-store';
