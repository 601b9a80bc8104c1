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
  /**
   * how long after the subscription that allows it: a client opens its
   * streams one after another (dockerd: namespace plugins.moby, then moby),
   * and an event published before its own stream exists is lost to it
   */
  settleMs?: number;
  /** whether the subscribers now registered are the ones the events are for (default: any subscriber) */
  ready?: () => boolean;
  setTimer?: SetTimer;
}

// a pending release must not keep the daemon's process alive
const unrefTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

const SETTLE_MS = 250;

/**
 * Calls `release` once: `settleMs` after `minMs` if the source's
 * subscribers are ready then (o.ready; default: there is one), else
 * `settleMs` after the first subscription after that which makes them
 * ready, at `maxMs` at the latest. Returns a cancel, after which it is
 * never called.
 */
export function releaseOnSubscriber(source: SubscriberSource, release: () => void, o: ReleaseGateOptions): () => void {
  const setTimer = o.setTimer ?? unrefTimer;
  const settleMs = o.settleMs ?? SETTLE_MS;
  const ready = o.ready ?? ((): boolean => source.subscriberCount > 0);
  let minPassed = false;
  let done = false;
  let cancelSettle: (() => void) | undefined;
  const stop = (): void => {
    if (done) return;
    done = true;
    stopWatching();
    cancelMin();
    cancelMax();
    cancelSettle?.();
  };
  const fire = (): void => {
    if (done) return;
    stop();
    release();
  };
  const fireSoon = (): void => {
    if (!done && !cancelSettle) cancelSettle = setTimer(fire, settleMs);
  };
  const stopWatching = source.onSubscribe(() => {
    if (minPassed && ready()) fireSoon();
  });
  const cancelMin = setTimer(() => {
    minPassed = true;
    if (ready()) fireSoon();
  }, o.minMs);
  const cancelMax = setTimer(fire, o.maxMs);
  return stop;
}
