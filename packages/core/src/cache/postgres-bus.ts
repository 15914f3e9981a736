import type { PoolClient } from 'pg';
import type { Queryable } from '../db/database';
import { systemClock, unrefTimer, type Clock } from '../clock';
import { UnavailableError, isAikbError } from '../errors';
import { pgErrorToAikbError } from '../db/internal/pg-errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { InvalidationBus } from './cache';
import { BusListeners, checkMessage, parseMessage } from './internal/bus-state';

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/** {@link createPostgresInvalidationBus} options. */
export interface PostgresInvalidationBusOptions {
  /**
   * A `pg.Pool` on a PostgreSQL server. The bus holds one of its connections for `LISTEN` for as
   * long as it is open: size the pool for it. Embedded PGlite serves a single connection, so use
   * the in-process bus there.
   */
  pool: Queryable;
  /**
   * The `LISTEN/NOTIFY` channel (a lower-case identifier).
   * @default 'aikb_invalidation'
   */
  channel?: string;
  /**
   * How long to wait before listening again after the connection dropped, in milliseconds.
   * @default 1000
   */
  reconnectDelayMs?: number;
  /**
   * Sets the reconnect timer (unref'd: it never keeps the process alive).
   * @default systemClock
   */
  clock?: Clock;
  /** @default noopLogger */
  logger?: Logger;
}

/**
 * An {@link InvalidationBus} over PostgreSQL `LISTEN/NOTIFY`, so a deployment with Postgres but no
 * Redis still fans changes out. It listens on one pooled connection and listens again on a new
 * one whenever that drops; it is `disconnected` in between. Payloads are limited to 8000 bytes.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 *
 * @example
 * ```ts
 * const bus = createPostgresInvalidationBus({ pool: db.pool })
 * ```
 */
export function createPostgresInvalidationBus(options: PostgresInvalidationBusOptions): InvalidationBus {
  const check = checkOptions('createPostgresInvalidationBus', options);
  check.object('pool', 'a pg.Pool', true, ['query', 'connect']);
  check.string('channel');
  check.number('reconnectDelayMs', { min: 0 });
  check.clock();
  check.logger();
  const pool = options.pool;
  const channel = options.channel ?? 'aikb_invalidation';
  if (!CHANNEL.test(channel)) throw new TypeError(`createPostgresInvalidationBus: channel must match ${CHANNEL} (got ${JSON.stringify(channel)})`);
  const reconnectDelayMs = options.reconnectDelayMs ?? 1000;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? noopLogger;
  const listeners = new BusListeners('disconnected', logger);
  let client: PoolClient | undefined;
  let timer: unknown;
  let reported = false;

  const onNotification = (notification: { channel: string; payload?: string }) => {
    if (notification.channel !== channel || notification.payload === undefined) return;
    const message = parseMessage(notification.payload);
    if (message) listeners.deliver(message);
    else logger.warn({ channel }, 'invalidation bus: ignored a malformed notification');
  };

  const detach = (listening: PoolClient) => {
    listening.removeListener('notification', onNotification);
    listening.removeAllListeners('error');
    listening.removeAllListeners('end');
  };

  const dropped = (listening: PoolClient, error: Error) => {
    if (client !== listening) return;
    client = undefined;
    detach(listening);
    // pg needs an 'error' listener on a broken client until it is gone.
    listening.on('error', () => {});
    listening.release(error);
    if (listeners.state === 'closed') return;
    listeners.setState('disconnected');
    if (!reported) logger.warn({ err: error, channel }, `invalidation bus: postgres connection lost (${error.message}); listening again`);
    reported = true;
    schedule();
  };

  const schedule = () => {
    if (listeners.state === 'closed') return;
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = clock.setTimeout(() => void listen(), reconnectDelayMs);
    unrefTimer(timer);
  };

  const listen = async () => {
    let listening: PoolClient | undefined;
    try {
      listening = await pool.connect();
      listening.on('notification', onNotification);
      listening.on('error', (error: Error) => dropped(listening!, error));
      listening.on('end', () => dropped(listening!, new Error('connection ended')));
      await listening.query(`LISTEN ${channel}`);
      if (listeners.state === 'closed') {
        detach(listening);
        listening.release();
        return;
      }
      client = listening;
      reported = false;
      listeners.setState('connected');
    } catch (error) {
      if (listening) {
        detach(listening);
        listening.on('error', () => {});
        listening.release(error as Error);
      }
      if (!reported) logger.warn({ err: error, channel }, `invalidation bus: cannot listen on postgres (${(error as Error).message}); retrying`);
      reported = true;
      schedule();
    }
  };
  void listen();

  return {
    kind: 'postgres',
    get state() {
      return listeners.state;
    },
    async publish(message) {
      const encoded = checkMessage('PostgresInvalidationBus.publish', message);
      if (listeners.state === 'closed') throw new UnavailableError('the invalidation bus is closed');
      if (Buffer.byteLength(encoded) >= 8000) throw new TypeError('PostgresInvalidationBus.publish: message is larger than NOTIFY allows (8000 bytes)');
      try {
        await pool.query('SELECT pg_notify($1, $2)', [channel, encoded]);
      } catch (error) {
        // Every failure of a NOTIFY is the bus being unavailable to the caller; the driver's text stays in `cause`.
        const translated = pgErrorToAikbError(error, { what: 'the postgres invalidation bus' });
        throw isAikbError(translated, 'UNAVAILABLE') ? translated : new UnavailableError('could not publish the invalidation to postgres', { cause: error });
      }
    },
    subscribe: (handler) => listeners.subscribe(handler),
    onStateChange: (listener) => listeners.onStateChange(listener),
    async close() {
      listeners.setState('closed');
      listeners.clear();
      if (timer !== undefined) clock.clearTimeout(timer);
      const listening = client;
      client = undefined;
      if (listening) {
        detach(listening);
        // The connection goes back to the pool either way; a failed UNLISTEN only means it was already broken.
        await listening
          .query(`UNLISTEN ${channel}`)
          .catch((error: unknown) => logger.debug({ err: error, channel }, 'invalidation bus: UNLISTEN failed on close'));
        listening.release();
      }
    },
  };
}
