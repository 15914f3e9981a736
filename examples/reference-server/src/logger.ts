import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';
import { currentTraceId } from '@aikb/core/tracing';
import { currentRequest } from '@aikb/express';
import type { ServerConfig } from './config';

export type { PinoLogger };

/** What stands in for a secret in a log line. */
export const REDACTED = '[redacted]';

/**
 * A copy of a log line's fields without secrets: `password` and `token` at the top, `password` one
 * level down (`{ user: { password } }`), and `req.headers.authorization`. The fields themselves are
 * never changed. It runs on every line, so it costs a key scan and copies only when it finds one
 * (pino's path-based `redact` did the same work at about 2 µs a line, which is most of a request
 * log line's budget: bench:http).
 */
export function redactSecrets(fields: Record<string, unknown>): Record<string, unknown> {
  let out = fields;
  const set = (key: string, value: unknown) => {
    if (out === fields) out = { ...fields };
    out[key] = value;
  };
  for (const key in fields) {
    if (!Object.hasOwn(fields, key)) continue;
    if (key === 'password' || key === 'token') {
      set(key, REDACTED);
      continue;
    }
    const value = fields[key];
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
    const inner = value as Record<string, unknown>;
    if (Object.hasOwn(inner, 'password')) set(key, { ...inner, password: REDACTED });
    if (key === 'req') {
      const headers = (out[key] as Record<string, unknown>).headers;
      if (headers !== null && typeof headers === 'object' && Object.hasOwn(headers, 'authorization'))
        set(key, { ...(out[key] as Record<string, unknown>), headers: { ...headers, authorization: REDACTED } });
    }
  }
  return out;
}

/** What the mixin returns when it has nothing to add (never written to). */
const NOTHING: Record<string, never> = Object.freeze({});

let isoTimeMs = Number.NaN;
let isoTimeField = '';
/**
 * pino's `isoTime`, formatted once per millisecond: a busy server writes several lines in each,
 * and `toISOString` showed up in the request log line's cost (bench:http).
 */
function isoTime(): string {
  const now = Date.now();
  if (now !== isoTimeMs) {
    isoTimeMs = now;
    isoTimeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoTimeField;
}

/**
 * Structured JSON logs on stdout (pretty when stdout is a terminal), and also to `LOG_FILE` when
 * set, so `tail /var/log/aikb/server.log | grep ...` works as the runbook expects.
 *
 * Lines are written asynchronously (pino's `sync: false`): a line is handed to the kernel as soon
 * as the previous write is done, never held back to fill a buffer, and lines written meanwhile go
 * out together. The request path does not wait for the disk; pino flushes what is pending when the
 * process exits (SIGTERM, `process.exit`, an uncaught exception). Only a `kill -9` or a power loss
 * can lose the lines of the last moment. A reader in the same process sees a line a moment after it
was logged, not at once (tests poll the file).
 */
export function createLogger(config: Pick<ServerConfig, 'logLevel' | 'logFile'>): PinoLogger {
  const level = config.logLevel === 'silent' ? 'fatal' : config.logLevel;
  const streams: pino.StreamEntry[] = [
    {
      level,
      stream: process.stdout.isTTY ? pretty({ colorize: true, sync: true, ignore: 'pid,hostname,severity' }) : pino.destination({ fd: 1, sync: false }),
    },
  ];
  if (config.logFile) {
    mkdirSync(path.dirname(config.logFile), { recursive: true });
    streams.push({ level, stream: pino.destination({ dest: config.logFile, sync: false, mkdir: true }) });
  }
  const root: PinoLogger = pino(
    {
      level: config.logLevel,
      base: { service: 'aikb-server' },
      timestamp: isoTime,
      formatters: {
        // `severity: "ERROR"` beside the numeric level, so the runbook's `grep ERROR` finds error lines.
        level: (label, number) => ({ level: number, severity: label.toUpperCase() }),
        log: redactSecrets,
      },
      serializers: { err: pino.stdSerializers.err },
      // A line written during a request through the application logger itself (not the request's
      // child logger, which already carries them) gets the request's requestId and traceId.
      // The per-request line carries both already (requestLogging writes it through the root logger).
      mixin(object, _level, logger) {
        if (logger !== root || (Object.hasOwn(object, 'requestId') && Object.hasOwn(object, 'traceId'))) return NOTHING;
        const request = currentRequest();
        const traceId = currentTraceId();
        return request ? { requestId: request.requestId, traceId } : traceId ? { traceId } : NOTHING;
      },
      // pino's default merge copies every field of the line into the mixin's object; with nothing
      // to add (every per-request line), the line is written as it is.
      mixinMergeStrategy: (line, added) => (added === NOTHING ? line : Object.assign(added, line)),
    },
    // One destination needs no fan-out (pino.multistream costs a little on every line).
    streams.length === 1 ? streams[0]!.stream : pino.multistream(streams),
  );
  // A child's bindings are written into every line it logs, so they are redacted too (pino does
  // not pass them through `formatters`). Children inherit this `child` from the root.
  const child = Object.getPrototypeOf(root) as Pick<PinoLogger, 'child'>;
  root.child = function redactingChild(this: PinoLogger, bindings, options) {
    return child.child.call(this, redactSecrets(bindings), options);
  } as PinoLogger['child'];
  return root;
}
