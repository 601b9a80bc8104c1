// The event exchange: publishers hand in events, each subscriber gets the
// envelopes its filters match (containerd's events/exchange). Delivery is
// synchronous into each subscriber's listener, which must not block (the
// gRPC Subscribe stream queues them); one failing listener does not stop
// the others.
import { create, type DescMessage, type MessageInitShape, type Registry } from '@bufbuild/protobuf';
import { timestampNow, type Any } from '@bufbuild/protobuf/wkt';
import { EnvelopeSchema, type Envelope } from '../gen/containerd/services/events/v1/events_pb.js';
import { failedPrecondition, invalidArgument, wrap } from '../errdefs.js';
import { validateIdentifier } from '../identifiers.js';
import { packAny } from '../typeurl.js';
import { messageFieldGetter } from './adaptor.js';
import { parseFilters, type Filter } from './filters.js';
import { eventRegistry } from './registry.js';

export type { Envelope };
export type EventListener = (envelope: Envelope) => void;

export interface SubscribeOptions {
  /** called once when the bus closes (daemon shutdown) while subscribed */
  onClose?: () => void;
}

interface Subscription {
  filter: Filter;
  listener: EventListener;
  onClose: (() => void) | undefined;
}

export class EventBus {
  private readonly subs = new Set<Subscription>();
  private readonly subscribeWatchers = new Set<() => void>();
  private closed = false;

  constructor(readonly registry: Registry = eventRegistry()) {}

  /** Wraps an event (already an Any) in an envelope of the namespace and now, and delivers it. */
  publish(namespace: string | undefined, topic: string, event: Any): Envelope {
    if (!namespace) throw failedPrecondition('failed publishing event: namespace is required');
    try {
      validateIdentifier(namespace);
    } catch (e) {
      throw wrap(e, 'failed publishing event: namespace validation');
    }
    validateTopic(topic);
    const envelope = create(EnvelopeSchema, { timestamp: timestampNow(), namespace, topic, event });
    this.dispatch(envelope);
    return envelope;
  }

  /** Publishes a message (e.g. TaskExitSchema and its fields) packed as containerd packs it. */
  publishMessage<D extends DescMessage>(namespace: string, topic: string, schema: D, event: MessageInitShape<D>): Envelope {
    return this.publish(namespace, topic, packAny(schema, event));
  }

  /** Delivers an envelope made elsewhere; it must carry a namespace, topic and time. */
  forward(envelope: Envelope): void {
    try {
      validateIdentifier(envelope.namespace);
    } catch (e) {
      throw wrap(e, 'event envelope has invalid namespace');
    }
    validateTopic(envelope.topic);
    const ts = envelope.timestamp;
    if (!ts || (ts.seconds === 0n && ts.nanos === 0)) throw invalidArgument('timestamp must be set on forwarded event');
    this.dispatch(envelope);
  }

  /**
   * Calls listener with every envelope that matches the filters (any of
   * them; none: everything) until the returned function is called. Bad
   * filters throw InvalidArgument before anything is registered.
   */
  subscribe(filters: readonly string[], listener: EventListener, opts: SubscribeOptions = {}): () => void {
    let filter: Filter;
    try {
      filter = parseFilters(filters);
    } catch (e) {
      throw wrap(e, 'failed parsing subscription filters');
    }
    const sub: Subscription = { filter, listener, onClose: opts.onClose };
    if (this.closed) {
      queueMicrotask(() => sub.onClose?.());
      return () => {};
    }
    this.subs.add(sub);
    for (const w of [...this.subscribeWatchers]) w();
    return () => {
      this.subs.delete(sub);
    };
  }

  /** Calls `fn` after each new subscription (it is registered by then) until the returned function is called. */
  onSubscribe(fn: () => void): () => void {
    const w = (): void => fn();
    this.subscribeWatchers.add(w);
    return () => {
      this.subscribeWatchers.delete(w);
    };
  }

  /** Whether a subscription now registered would receive an event of this namespace and topic (its filters on those two). */
  hasSubscriberFor(namespace: string, topic: string): boolean {
    if (this.subs.size === 0) return false;
    const get = messageFieldGetter(EnvelopeSchema, create(EnvelopeSchema, { namespace, topic }), this.registry);
    for (const s of this.subs) {
      try {
        if (s.filter.match(get)) return true;
      } catch {
        /* a filter on the event's own fields: not known yet */
      }
    }
    return false;
  }

  /** Subscriptions now registered (a Subscribe stream that ended must leave none). */
  get subscriberCount(): number {
    return this.subs.size;
  }

  /** Ends every subscription (their onClose runs); later subscriptions end at once. */
  close(): void {
    this.closed = true;
    const subs = [...this.subs];
    this.subs.clear();
    for (const s of subs) s.onClose?.();
  }

  private dispatch(envelope: Envelope): void {
    if (this.subs.size === 0) return;
    const get = messageFieldGetter(EnvelopeSchema, envelope, this.registry);
    for (const s of [...this.subs]) {
      try {
        if (s.filter.match(get)) s.listener(envelope);
      } catch {
        // a listener's failure is its own; the others still get the event
      }
    }
  }
}

/** A topic is "/" followed by identifiers joined by "/": "/tasks/exit". */
export function validateTopic(topic: string): void {
  const bad = (why: string, e?: unknown): Error =>
    e ? wrap(e, `envelope topic ${JSON.stringify(topic)}: ${why}`) : invalidArgument(`envelope topic ${JSON.stringify(topic)}: ${why}`);
  if (topic === '') throw bad('must not be empty');
  if (topic[0] !== '/') throw bad("must start with '/'");
  if (topic.length === 1) throw bad('must have at least one component');
  for (const component of topic.slice(1).split('/')) {
    try {
      validateIdentifier(component);
    } catch (e) {
      throw bad(`failed validation on component ${JSON.stringify(component)}`, e);
    }
  }
}
