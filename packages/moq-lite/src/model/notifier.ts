/**
 * A one-shot wake-up list: consumers await `changed()` (one promise each) or register a callback
 * with `onNextChange()` (no allocation: a relay's long-lived senders reuse one bound callback);
 * producers call `notify()` after every state change. Nothing is retained once notified.
 */
export class ChangeNotifier {
  // Arrays with an explicit count keep their capacity across notifications (setting `length = 0`
  // would release it, and a relay notifies hundreds of waiters every frame).
  #waiters: Array<(() => void) | undefined> = [];
  #count = 0;
  /** The emptied array of the previous notify, reused so a busy notifier does not allocate. */
  #spare: Array<(() => void) | undefined> | undefined = [];

  /** Resolves at the next `notify()`. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.onNextChange(resolve));
  }

  /** Calls `callback` (synchronously, inside `notify()`) at the next change. It must not throw. */
  onNextChange(callback: () => void): void {
    this.#waiters[this.#count++] = callback;
  }

  /** Wakes every current waiter. */
  notify(): void {
    const waiters = this.#waiters;
    const count = this.#count;
    if (count === 0) return;
    // Waiters registered while waking go to another array and wait for the next notify (a
    // nested notify, with the spare in use, gets a fresh one).
    this.#waiters = this.#spare ?? [];
    this.#count = 0;
    this.#spare = undefined;
    for (let i = 0; i < count; i++) {
      const wake = waiters[i]!;
      waiters[i] = undefined;
      wake();
    }
    this.#spare = waiters;
  }

  /**
   * Wakes every current waiter and lets go of the wake-up lists, for an object that has reached
   * its final state: a finished frame or group stays in a cache for seconds, and lists sized for
   * hundreds of subscribers must not stay with it. Later waiters still work (a new list).
   */
  notifyFinal(): void {
    this.notify();
    this.#spare = undefined;
    if (this.#count === 0) this.#waiters = [];
  }
}
