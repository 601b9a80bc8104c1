// An unbounded async queue for server streams fed by callbacks (event
// subscriptions): push() from the callback, iterate in the handler. It ends
// when end() is called or the signal aborts, so the handler's finally
// blocks (unsubscribe) run as soon as the client goes away.
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: (() => void) | undefined;
  private ended = false;
  private error: unknown;

  constructor(signal?: AbortSignal) {
    if (signal?.aborted) this.ended = true;
    signal?.addEventListener('abort', () => this.end(), { once: true });
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(err: unknown): void {
    this.error = err;
    this.end();
  }

  get length(): number {
    return this.items.length;
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length) {
        yield this.items.shift()!;
        continue;
      }
      if (this.ended) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}
