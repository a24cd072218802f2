/**
 * An event loop turned by hand, for the pollers' tests (packages/loop-polling, the server's idle
 * poller): a clock that moves only when told, and scheduled turns that run only when `turn()` is
 * called, as the event loop would run them after each poll for I/O. Pass `now` and `schedule` to
 * the poller under test.
 */
export function handTurnedLoop() {
  let nowMs = 0;
  let turns = 0;
  const queue: (() => void)[] = [];
  return {
    now: (): number => nowMs,
    schedule: (callback: () => void): void => {
      queue.push(callback);
    },
    advanceUs(us: number): void {
      nowMs += us / 1000;
    },
    /** Runs the turn scheduled, if any; false when nothing was scheduled. */
    turn(): boolean {
      const next = queue.shift();
      if (!next) return false;
      turns++;
      next();
      return true;
    },
    /** Turns scheduled and not yet run. */
    get scheduled(): number {
      return queue.length;
    },
    /** Turns run so far. */
    get turns(): number {
      return turns;
    },
  };
}
