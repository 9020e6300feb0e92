/**
 * A one-shot wake-up list: consumers await `changed()` (one promise each) or register a callback
 * with `onNextChange()` (no allocation: a relay's long-lived senders reuse one bound callback);
 * producers call `notify()` after every state change. Nothing is retained once notified.
 */
export class ChangeNotifier {
  #waiters: Array<() => void> = [];

  /** Resolves at the next `notify()`. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Calls `callback` (synchronously, inside `notify()`) at the next change. It must not throw. */
  onNextChange(callback: () => void): void {
    this.#waiters.push(callback);
  }

  /** Wakes every current waiter. */
  notify(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
