/**
 * Takes turns on the event loop: one waiter goes on per turn of the loop, after the loop has
 * handled its I/O. A runner working through a backlog in a process with fast stores (the local
 * server: cached reads, synchronous SQLite and file writes) never waits on real I/O, so without
 * turns its whole backlog runs in microtasks and every HTTP request of the process waits until
 * it is done (measured: a million-record backlog held a partition read for seconds). With turns,
 * a request waits for at most one runner step (one batch read, handled and committed) per step it
 * needs itself.
 */
export interface Turns {
  /** Resolves on a later turn of the event loop, once the waiters before it have had theirs. */
  take(): Promise<void>;
}

export class EventLoopTurns implements Turns {
  private readonly waiting: (() => void)[] = [];
  private scheduled = false;

  take(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    // An immediate queued from an immediate runs on the next turn, after that turn's I/O: one
    // waiter per turn.
    setImmediate(() => {
      this.scheduled = false;
      this.waiting.shift()?.();
      this.schedule();
    });
  }
}
