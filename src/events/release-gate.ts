// When to publish events that were held back for a subscriber: exits found
// at restore are useless to a client that is not listening yet (dockerd
// reconnects within seconds and learns exits only from events), but must
// not wait forever for one that never comes.

/** What the gate watches: the event bus. */
export interface SubscriberSource {
  readonly subscriberCount: number;
  onSubscribe(fn: () => void): () => void;
}

/** Runs fn after ms; returns its cancel. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

export interface ReleaseGateOptions {
  /** no release before this long after the call */
  minMs: number;
  /** release by then, with or without a subscriber */
  maxMs: number;
  setTimer?: SetTimer;
}

// a pending release must not keep the daemon's process alive
const unrefTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/**
 * Calls `release` once: at `minMs` if the source has a subscriber then, else
 * on the first subscription after that, at `maxMs` at the latest. Returns a
 * cancel, after which it is never called.
 */
export function releaseOnSubscriber(source: SubscriberSource, release: () => void, o: ReleaseGateOptions): () => void {
  const setTimer = o.setTimer ?? unrefTimer;
  let minPassed = false;
  let done = false;
  const stop = (): void => {
    if (done) return;
    done = true;
    stopWatching();
    cancelMin();
    cancelMax();
  };
  const fire = (): void => {
    if (done) return;
    stop();
    release();
  };
  const stopWatching = source.onSubscribe(() => {
    if (minPassed) fire();
  });
  const cancelMin = setTimer(() => {
    minPassed = true;
    if (source.subscriberCount > 0) fire();
  }, o.minMs);
  const cancelMax = setTimer(fire, o.maxMs);
  return stop;
}
