import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';
import { currentTraceId } from '@aikb/core/tracing';
import { currentRequest } from '@aikb/express';
import type { ServerConfig } from './config';

export type { PinoLogger };

/**
 * Structured JSON logs on stdout (pretty when stdout is a terminal), and also to `LOG_FILE` when
 * set, so `tail /var/log/aikb/server.log | grep ...` works as the runbook expects.
 */
export function createLogger(config: Pick<ServerConfig, 'logLevel' | 'logFile'>): PinoLogger {
  const streams: pino.StreamEntry[] = [
    {
      level: config.logLevel === 'silent' ? 'fatal' : config.logLevel,
      stream: process.stdout.isTTY ? pretty({ colorize: true, sync: true, ignore: 'pid,hostname,severity' }) : pino.destination({ fd: 1, sync: true }),
    },
  ];
  if (config.logFile) {
    mkdirSync(path.dirname(config.logFile), { recursive: true });
    streams.push({
      level: config.logLevel === 'silent' ? 'fatal' : config.logLevel,
      stream: pino.destination({ dest: config.logFile, sync: true, mkdir: true }),
    });
  }
  const root: PinoLogger = pino(
    {
      level: config.logLevel,
      base: { service: 'aikb-server' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // `severity: "ERROR"` beside the numeric level, so the runbook's `grep ERROR` finds error lines.
      formatters: { level: (label, level) => ({ level, severity: label.toUpperCase() }) },
      serializers: { err: pino.stdSerializers.err },
      redact: { paths: ['password', '*.password', 'req.headers.authorization', 'token'], censor: '[redacted]' },
      // A line written during a request through the application logger itself (not the request's
      // child logger, which already carries them) gets the request's requestId and traceId.
      mixin(_object, _level, logger) {
        if (logger !== root) return {};
        const request = currentRequest();
        const traceId = currentTraceId();
        return request ? { requestId: request.requestId, traceId } : traceId ? { traceId } : {};
      },
    },
    pino.multistream(streams),
  );
  return root;
}
