// releaseOnSubscriber on a real EventBus with a manual clock: the held
// events go out no sooner than MIN, at once when a subscriber comes after
// MIN, at MAX without one, exactly once, never after a cancel; and the gate
// leaves no watcher on the bus or timer behind.
import t from 'tap';
import { EventBus } from '../../src/events/bus.js';
import { releaseOnSubscriber, type SetTimer, type SubscriberSource } from '../../src/events/release-gate.js';

const MIN = 1000;
const MAX = 10_000;

/** Timers run by advance(ms), in time order. */
function manualClock() {
  let now = 0;
  const timers = new Set<{ at: number; fn: () => void }>();
  const setTimer: SetTimer = (fn, ms) => {
    const timer = { at: now + ms, fn };
    timers.add(timer);
    return () => timers.delete(timer);
  };
  const advance = (ms: number): void => {
    const end = now + ms;
    for (;;) {
      const next = [...timers].filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      timers.delete(next);
      now = next.at;
      next.fn();
    }
    now = end;
  };
  return { setTimer, advance, pending: () => timers.size, now: () => now };
}

function gate() {
  const bus = new EventBus();
  const clock = manualClock();
  const released: number[] = [];
  let watching = 0;
  // the bus, counting the gate's watchers
  const source: SubscriberSource = {
    get subscriberCount() {
      return bus.subscriberCount;
    },
    onSubscribe(fn) {
      watching++;
      const off = bus.onSubscribe(fn);
      return () => {
        watching--;
        off();
      };
    },
  };
  const cancel = releaseOnSubscriber(source, () => released.push(clock.now()), { minMs: MIN, maxMs: MAX, setTimer: clock.setTimer });
  return { bus, clock, released, cancel, watchers: () => watching };
}

t.test('a subscriber from the start: released at MIN, not before', async (t) => {
  const g = gate();
  g.bus.subscribe([], () => {});
  g.clock.advance(MIN - 1);
  t.same(g.released, [], 'held before MIN');
  g.clock.advance(1);
  t.same(g.released, [MIN]);
  g.clock.advance(MAX);
  t.same(g.released, [MIN], 'once');
  g.cancel();
  t.equal(g.clock.pending(), 0, 'no timer left');
  t.equal(g.watchers(), 0, 'no watcher left on the bus');
});

t.test('a subscriber after MIN: released as it subscribes', async (t) => {
  const g = gate();
  g.clock.advance(3000);
  t.same(g.released, []);
  let seen = 0;
  g.bus.subscribe([], () => seen++);
  t.same(g.released, [3000], 'on the subscription, not on a later tick');
  g.bus.subscribe([], () => {});
  g.clock.advance(MAX);
  t.same(g.released, [3000], 'once');
  t.equal(g.clock.pending(), 0);
  t.equal(g.watchers(), 0);
  t.equal(seen, 0, 'the gate publishes nothing itself');
});

t.test('no subscriber: released at MAX', async (t) => {
  const g = gate();
  g.clock.advance(MAX - 1);
  t.same(g.released, []);
  g.clock.advance(1);
  t.same(g.released, [MAX]);
  t.equal(g.watchers(), 0);
});

t.test('a subscriber gone before MIN does not count; the next one releases', async (t) => {
  const g = gate();
  const unsubscribe = g.bus.subscribe([], () => {});
  g.clock.advance(500);
  unsubscribe();
  g.clock.advance(MIN);
  t.same(g.released, [], 'nobody listens at MIN');
  g.bus.subscribe([], () => {});
  t.same(g.released, [1500]);
});

t.test('cancelled (the daemon stops): never released, nothing left', async (t) => {
  const g = gate();
  g.clock.advance(500);
  g.cancel();
  t.equal(g.clock.pending(), 0, 'timers cleared');
  t.equal(g.watchers(), 0, 'watcher removed');
  g.bus.subscribe([], () => {});
  g.clock.advance(MAX);
  t.same(g.released, []);
});

t.test('with the default timers: released on the subscription after MIN', async (t) => {
  const bus = new EventBus();
  const start = Date.now();
  let at = 0;
  const released = new Promise<void>((resolve) => {
    releaseOnSubscriber(bus, () => ((at = Date.now() - start), resolve()), { minMs: 50, maxMs: 5000 });
  });
  setTimeout(() => bus.subscribe([], () => {}), 120);
  await released;
  t.ok(at >= 120 && at < 1000, `released at ${at} ms, when the subscriber came`);
});
