/**
 * A part of the server with a lifetime: `start` receives what the subsystems before it provided
 * (`Needs`) and returns what it adds to the context (`Adds`); `close` releases it. A start that
 * fails must release what it had opened itself: only subsystems whose start succeeded are closed.
 */
export interface Subsystem<Needs extends object, Adds extends object> {
  /** Names the subsystem in logs (`subsystem` field) and errors. */
  readonly name: string;
  start(ctx: Needs): Promise<Adds>;
  /**
   * Releases what `start` opened; given what it returned and the context it started on (to stop
   * in step with a subsystem before it). Omitted: nothing to release.
   */
  close?(started: Adds, ctx: Needs): Promise<void>;
}

// What a list may hold; `startSubsystems` checks the order of the list it is given.
type AnySubsystem = Subsystem<object, object>;

/** The context once every subsystem of `List` has started on top of `Ctx`. */
export type ContextOf<Ctx, List> = List extends readonly [Subsystem<infer _Needs, infer Adds>, ...infer Rest] ? ContextOf<Ctx & Adds, Rest> : Ctx;

/** `true` when each subsystem of `List` finds what it needs in the context before it. */
type InStartOrder<Ctx, List> = List extends readonly [Subsystem<infer Needs, infer Adds>, ...infer Rest]
  ? Ctx extends Needs
    ? InStartOrder<Ctx & Adds, Rest>
    : false
  : true;

/** Started subsystems. */
export interface StartedSubsystems<Ctx> {
  /** What the initial context and every subsystem provided. */
  readonly ctx: Ctx;
  /**
   * Closes every subsystem in reverse start order. A close that throws is logged and the others
   * still close; the returned promise then rejects with an `AggregateError` of every failure.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Where close failures are reported (a pino logger fits). */
export interface LifecycleLogger {
  error(fields: object, message: string): void;
}

/**
 * Starts `subsystems` one after the other, in list order, each on the context built so far.
 * When one fails to start, those already started are closed in reverse order (close failures
 * logged) and the start error is rethrown.
 *
 * @throws what the failing subsystem's `start` threw
 * @example
 * const started = await startSubsystems([infrastructure, flags, auth], { config, logger }, { logger });
 * // ... later
 * await started.close(); // auth, flags, infrastructure
 */
export async function startSubsystems<Initial extends object, const List extends readonly AnySubsystem[]>(
  subsystems: List & (InStartOrder<Initial, List> extends true ? unknown : { 'a subsystem starts before one it needs': never }),
  initial: Initial,
  options: { logger: LifecycleLogger },
): Promise<StartedSubsystems<ContextOf<Initial, List>>> {
  const { logger } = options;
  const started: Array<{ name: string; close: () => Promise<void> }> = [];
  let ctx: object = initial;

  /** Closes what started, last first; each failure is logged, then the next one closes. */
  const closeStarted = async (): Promise<Array<{ name: string; error: unknown }>> => {
    const failures: Array<{ name: string; error: unknown }> = [];
    for (const { name, close } of started.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error({ err: error, subsystem: name }, `${name}: close failed (${error instanceof Error ? error.message : String(error)})`);
        failures.push({ name, error });
      }
    }
    return failures;
  };

  for (const subsystem of subsystems as readonly AnySubsystem[]) {
    let adds: object;
    try {
      adds = await subsystem.start(ctx);
    } catch (error) {
      await closeStarted();
      throw error;
    }
    const needs = ctx;
    started.push({ name: subsystem.name, close: async () => subsystem.close?.(adds, needs) });
    ctx = { ...ctx, ...adds };
  }

  let closing: Promise<void> | undefined;
  return {
    ctx: ctx as ContextOf<Initial, List>,
    close() {
      closing ??= closeStarted().then((failures) => {
        if (failures.length > 0) {
          throw new AggregateError(
            failures.map((f) => f.error),
            `failed to close: ${failures.map((f) => f.name).join(', ')}`,
          );
        }
      });
      return closing;
    },
  };
}
