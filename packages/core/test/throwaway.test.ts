import { describe, expect, it } from 'vitest';
import { createThrowawayRedis, freePort, hasRedisServer } from './support';
import { redisPid } from './support/throwaway';

// A spare port can be taken by another test's server between the moment it is handed out and the
// moment redis-server binds it; the throw-away Redis must then not run against the other server.
describe.skipIf(!hasRedisServer())('createThrowawayRedis', () => {
  it('starts on another port when its spare one was taken meanwhile, and answers with its own process', async () => {
    const other = await createThrowawayRedis();
    await other.start();
    const taken = other.port;
    const ports = [taken];
    const mine = await createThrowawayRedis({ pickPort: async () => ports.shift() ?? freePort() });
    try {
      await mine.start();
      expect(mine.port).not.toBe(taken);
      expect(mine.url).toBe(`redis://127.0.0.1:${mine.port}`);
      expect(redisPid(mine.port)).toBeDefined();
      expect(redisPid(mine.port)).not.toBe(redisPid(taken));
      // Killing it leaves the other server alone.
      const otherPid = redisPid(taken);
      await mine.kill();
      expect(redisPid(mine.port)).toBeUndefined();
      expect(redisPid(taken)).toBe(otherPid);
    } finally {
      await mine.kill();
      await other.kill();
    }
  });

  it('refuses to restart on its port once another server holds it, naming the conflict', async () => {
    const mine = await createThrowawayRedis();
    await mine.start();
    await mine.kill();
    const ports = [mine.port];
    const intruder = await createThrowawayRedis({ pickPort: async () => ports.shift() ?? freePort() });
    try {
      await intruder.start();
      expect(intruder.port).toBe(mine.port);
      await expect(mine.start()).rejects.toThrow(`port ${mine.port} was taken by another server while this one was stopped`);
    } finally {
      await intruder.kill();
      await mine.kill();
    }
  });
});
