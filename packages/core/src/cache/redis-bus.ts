import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock';
import { UnavailableError } from '../errors';
import { withTimeout } from '../internal/timeout';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { InvalidationBus } from './cache';
import { BusListeners, checkMessage, parseMessage } from './internal/bus-state';

/** {@link createRedisInvalidationBus} options. */
export interface RedisInvalidationBusOptions {
  /**
   * Your ioredis client. It publishes; the bus subscribes on its own connection
   * (`redis.duplicate()`), which it closes on `close()`. Yours stays open.
   */
  redis: Redis;
  /**
   * The pub/sub channel. Every instance that must see each other's changes uses the same one.
   * Redis shares pub/sub channels among all the databases of a server, so the default names the
   * client's database: two deployments on one Redis with different databases (`redis://…/1`,
   * `redis://…/2`) never receive each other's invalidations.
   * @default 'aikb:invalidation' on database 0, 'aikb:invalidation:db<N>' on database N
   */
  channel?: string;
  /**
   * How long `publish` waits for Redis before rejecting with `UnavailableError`, in milliseconds.
   * @default 1000
   */
  publishTimeoutMs?: number;
  /**
   * Sets the publish timeout's timer.
   * @default systemClock
   */
  clock?: Clock;
  /** @default noopLogger */
  logger?: Logger;
}

/**
 * An {@link InvalidationBus} over Redis pub/sub. The subscribing connection reconnects by itself
 * (ioredis); the bus is `disconnected` from the moment that connection drops until it has
 * subscribed again, so subscribers know to resynchronise.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 *
 * @example
 * ```ts
 * const bus = createRedisInvalidationBus({ redis: new Redis(process.env.REDIS_URL) })
 * ```
 */
export function createRedisInvalidationBus(options: RedisInvalidationBusOptions): InvalidationBus {
  const check = checkOptions('createRedisInvalidationBus', options);
  check.object('redis', 'an ioredis client', true, ['publish', 'duplicate']);
  check.string('channel');
  check.number('publishTimeoutMs', { min: 0, exclusiveMin: true });
  check.clock();
  check.logger();
  const redis = options.redis;
  const db = Number((redis as { options?: { db?: unknown } }).options?.db ?? 0) || 0;
  const channel = options.channel ?? (db === 0 ? 'aikb:invalidation' : `aikb:invalidation:db${db}`);
  const publishTimeoutMs = options.publishTimeoutMs ?? 1000;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? noopLogger;
  const listeners = new BusListeners('disconnected', logger);

  // A connection in subscriber mode can do nothing else: it gets its own. We resubscribe ourselves
  // on every 'ready' so the state turns `connected` only once the subscription is really back.
  const subscriber = redis.duplicate({ autoResubscribe: false, lazyConnect: false, maxRetriesPerRequest: null });
  let reported = false;
  subscriber.on('error', (error: Error) => {
    if (!reported) logger.warn({ err: error, channel }, `invalidation bus: redis unreachable (${error.message}); reconnecting`);
    reported = true;
  });
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(
      () => {
        reported = false;
        listeners.setState('connected');
      },
      (error: Error) => logger.warn({ err: error, channel }, 'invalidation bus: subscribe failed'),
    );
  });
  subscriber.on('close', () => listeners.setState('disconnected'));
  subscriber.on('message', (received: string, raw: string) => {
    if (received !== channel) return;
    const message = parseMessage(raw);
    if (message) listeners.deliver(message);
    else logger.warn({ channel }, 'invalidation bus: ignored a malformed message');
  });

  return {
    kind: 'redis',
    get state() {
      return listeners.state;
    },
    async publish(message) {
      const encoded = checkMessage('RedisInvalidationBus.publish', message);
      if (listeners.state === 'closed') throw new UnavailableError('the invalidation bus is closed');
      try {
        await withTimeout(clock, redis.publish(channel, encoded), publishTimeoutMs, `no answer within ${publishTimeoutMs} ms`);
      } catch (error) {
        throw new UnavailableError(`could not publish the invalidation to redis: ${(error as Error).message}`, { cause: error });
      }
    },
    subscribe: (handler) => listeners.subscribe(handler),
    onStateChange: (listener) => listeners.onStateChange(listener),
    async close() {
      listeners.setState('closed');
      listeners.clear();
      subscriber.disconnect();
    },
  };
}
