import { describe, expect, it } from 'vitest';
import { passDeadline } from '../../functions/handlers/trimRetention.js';

describe('retention pass deadline', () => {
  it('keeps 10% of the time left back, at least 2 s and at most 30 s', () => {
    expect(passDeadline(300_000, 0)).toBe(270_000);
    expect(passDeadline(100_000, 0)).toBe(90_000);
    expect(passDeadline(10_000, 0)).toBe(8_000);
    expect(passDeadline(900_000, 0)).toBe(870_000);
  });

  it('a deadline already behind the clock when little time is left (the pass then starts nothing)', () => {
    expect(passDeadline(1_000, 5_000)).toBeLessThan(5_000);
  });
});
