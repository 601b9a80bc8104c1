// At most n tasks at a time (downloads, layers being written); the others
// wait their turn in the order they came.

/** A function that runs the task given to it once fewer than n of its tasks run. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      // the slot passes straight to the next waiter, or frees up
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
