/**
 * A one-shot wake-up list: consumers await `changed()`, producers call `notify()` after every
 * state change. Each waiter costs one promise, and nothing is retained once notified.
 */
export class ChangeNotifier {
  #waiters: Array<() => void> = [];

  /** Resolves at the next `notify()`. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Wakes every current waiter. */
  notify(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
