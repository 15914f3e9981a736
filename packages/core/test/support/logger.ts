import type { Logger } from '../../src/logger';

/** One line a {@link RecordingLogger} received. */
export interface LoggedLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg?: string;
}

/** A {@link Logger} that keeps what it is given, for tests to read. */
export interface RecordingLogger extends Logger {
  /** Every line, in order. */
  readonly lines: LoggedLine[];
}

/** Creates a {@link RecordingLogger}; `const { lines, ...logger } = createRecordingLogger()` splits it. */
export function createRecordingLogger(): RecordingLogger {
  const lines: LoggedLine[] = [];
  const at = (level: LoggedLine['level']) => (obj: object, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
