import { describe, expect, it } from 'vitest';
import { monotonicClock, systemClock } from '../clock';
import { noopLogger } from '../logger';
import { checkOptions } from './index';

describe('checkOptions', () => {
  describe('clock', () => {
    it('accepts a Clock, and no clock', () => {
      for (const clock of [systemClock, monotonicClock, undefined]) expect(() => checkOptions('createThing', { clock }).clock()).not.toThrow();
    });

    it.each([
      [(): number => 0, 'a function'],
      [{ now: (): number => 0 }, 'an object'],
      [{ now: (): number => 0, setTimeout: (): number => 0 }, 'an object'],
      [null, 'null'],
    ])('refuses %j naming the factory, the option and the missing method', (clock, got) => {
      expect(() => checkOptions('createThing', { clock }).clock()).toThrow(TypeError);
      expect(() => checkOptions('createThing', { clock }).clock()).toThrow(new RegExp(`^createThing: clock must be a Clock.* \\(got ${got}\\)$`));
    });
  });

  describe('logger', () => {
    it('accepts a Logger, and no logger', () => {
      for (const logger of [noopLogger, undefined]) expect(() => checkOptions('createThing', { logger }).logger()).not.toThrow();
    });

    it('refuses a logger missing a level, naming it', () => {
      const partial = { info: noopLogger.info.bind(noopLogger), warn: noopLogger.warn.bind(noopLogger), error: noopLogger.error.bind(noopLogger) };
      expect(() => checkOptions('createThing', { logger: partial }).logger()).toThrow(
        /^createThing: logger must be a Logger \(with a debug\(\) method\) \(got an object\)$/,
      );
    });
  });

  it('names the bound of a whole number with a maximum', () => {
    expect(() => checkOptions('createThing', { size: 11 }).number('size', { min: 1, max: 10, integer: true })).toThrow(
      /^createThing: size must be a whole number ≥ 1 and ≤ 10 \(got 11\)$/,
    );
  });
});
