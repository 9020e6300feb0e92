/**
 * A one-shot wake-up list: consumers await `changed()` (one promise each) or register a callback
 * with `onNextChange()` (no allocation: a relay's long-lived senders reuse one bound callback);
 * producers call `notify()` after every state change. Nothing is retained once notified.
 */
export class ChangeNotifier {
  #waiters: Array<() => void> = [];
  /** The emptied array of the previous notify, reused so a busy notifier does not allocate. */
  #spare: Array<() => void> | undefined = [];

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
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    // Waiters registered while waking go to another array and wait for the next notify (a
    // nested notify, with the spare in use, gets a fresh one).
    this.#waiters = this.#spare ?? [];
    this.#spare = undefined;
    for (let i = 0; i < waiters.length; i++) waiters[i]!();
    waiters.length = 0;
    this.#spare = waiters;
  }
}
