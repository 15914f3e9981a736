/**
 * Waits until `probe` holds, polling it every `intervalMs` (on the event loop, so deliveries and
 * I/O run in between), for what cannot be awaited as an event: a state reached by a connection in
 * the background, a message delivered by a bus.
 *
 * @throws {Error} naming `what` when `probe` still does not hold after `timeoutMs`
 */
export async function until(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Lets what is already under way settle: pending promise callbacks and the I/O callbacks and
 * timers due now run, a few rounds deep. Waits for no amount of time.
 */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}
