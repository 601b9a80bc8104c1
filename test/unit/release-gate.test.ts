// releaseOnSubscriber on a real EventBus with a manual clock: the held
// events go out no sooner than MIN, SETTLE after a subscriber comes after
// MIN (so that the client's other streams exist too), at MAX without one,
// exactly once, never after a cancel; and the gate leaves no watcher on the
// bus or timer behind.
import t from 'tap';
import { EventBus } from '../../src/events/bus.js';
import { releaseOnSubscriber, type SetTimer, type SubscriberSource } from '../../src/events/release-gate.js';

const MIN = 1000;
const MAX = 10_000;
const SETTLE = 250;

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
  const cancel = releaseOnSubscriber(source, () => released.push(clock.now()), { minMs: MIN, maxMs: MAX, settleMs: SETTLE, setTimer: clock.setTimer });
  return { bus, clock, released, cancel, watchers: () => watching };
}

t.test('a subscriber from the start: released SETTLE after MIN, not before', async (t) => {
  const g = gate();
  g.bus.subscribe([], () => {});
  g.clock.advance(MIN + SETTLE - 1);
  t.same(g.released, [], 'held before MIN + SETTLE');
  g.clock.advance(1);
  t.same(g.released, [MIN + SETTLE]);
  g.clock.advance(MAX);
  t.same(g.released, [MIN + SETTLE], 'once');
  g.cancel();
  t.equal(g.clock.pending(), 0, 'no timer left');
  t.equal(g.watchers(), 0, 'no watcher left on the bus');
});

t.test('a subscriber after MIN: released SETTLE after it subscribes', async (t) => {
  const g = gate();
  g.clock.advance(3000);
  t.same(g.released, []);
  let seen = 0;
  g.bus.subscribe([], () => seen++);
  t.same(g.released, [], 'not yet: the same client may open another stream');
  g.clock.advance(100);
  g.bus.subscribe([], () => {});
  g.clock.advance(SETTLE - 100);
  t.same(g.released, [3000 + SETTLE], 'SETTLE after the first subscription, not postponed by the second');
  g.clock.advance(MAX);
  t.same(g.released, [3000 + SETTLE], 'once');
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
  g.clock.advance(SETTLE);
  t.same(g.released, [1500 + SETTLE]);
});

t.test('cancelled while settling: never released, nothing left', async (t) => {
  const g = gate();
  g.clock.advance(MIN);
  g.bus.subscribe([], () => {});
  g.clock.advance(SETTLE / 2);
  g.cancel();
  t.equal(g.clock.pending(), 0, 'the settle timer cleared too');
  g.clock.advance(MAX);
  t.same(g.released, []);
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
  // the gate's timers do not hold the process (the daemon's server does): hold it here
  const hold = setTimeout(() => {}, 5000);
  await released;
  clearTimeout(hold);
  t.ok(at >= 120 + 250 && at < 1500, `released at ${at} ms, SETTLE (250 ms) after the subscriber came`);
});

t.test("ready: a subscriber to another namespace's events does not release them", async (t) => {
  const bus = new EventBus();
  const clock = manualClock();
  const released: number[] = [];
  const ready = () => bus.hasSubscriberFor('moby', '/tasks/exit');
  releaseOnSubscriber(bus, () => released.push(clock.now()), { minMs: MIN, maxMs: MAX, settleMs: SETTLE, setTimer: clock.setTimer, ready });
  clock.advance(2000);
  // dockerd 20.10's two streams, plugins first
  bus.subscribe(['namespace==plugins.moby,topic~=|^/tasks/|'], () => {});
  clock.advance(3000);
  t.same(released, [], 'only plugins.moby listens: held');
  bus.subscribe(['namespace==moby,topic~=|^/tasks/|'], () => {});
  clock.advance(SETTLE);
  t.same(released, [5000 + SETTLE], "released once moby's exits have a listener");
});

t.test('hasSubscriberFor: by the filters on namespace and topic', async (t) => {
  const bus = new EventBus();
  t.notOk(bus.hasSubscriberFor('moby', '/tasks/exit'), 'nobody');
  const off = bus.subscribe(['namespace==moby,topic~=|^/tasks/|'], () => {});
  t.ok(bus.hasSubscriberFor('moby', '/tasks/exit'));
  t.notOk(bus.hasSubscriberFor('moby', '/images/create'), 'another topic');
  t.notOk(bus.hasSubscriberFor('default', '/tasks/exit'), 'another namespace');
  off();
  bus.subscribe([], () => {});
  t.ok(bus.hasSubscriberFor('default', '/tasks/exit'), 'no filter: everything');
});
