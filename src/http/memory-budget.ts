/**
 * A byte budget for request bodies that must be held in memory (JSON uploads carry their media
 * as base64). Requests acquire their estimated cost before reading the body and wait, unread,
 * while the budget is spent: back-pressure instead of failures, and a bounded peak RSS.
 * A single request larger than the whole budget still runs, alone.
 */
export class MemoryBudget {
  private used = 0;
  private waiting: Array<{ cost: number; grant: () => void }> = [];

  constructor(readonly capacity: number) {}

  /** Waits until `cost` bytes fit (or nothing else is running); returns the release function. */
  async acquire(cost: number): Promise<() => void> {
    if (!this.fits(cost) || this.waiting.length) {
      await new Promise<void>((grant) => this.waiting.push({ cost, grant }));
    } else {
      this.used += cost;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= cost;
      this.drain();
    };
  }

  get inUse(): number {
    return this.used;
  }

  private fits(cost: number) {
    return this.used === 0 || this.used + cost <= this.capacity;
  }

  private drain() {
    while (this.waiting.length && this.fits(this.waiting[0].cost)) {
      const next = this.waiting.shift()!;
      this.used += next.cost;
      next.grant();
    }
  }
}
