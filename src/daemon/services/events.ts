// containerd.services.events.v1 over the event bus. Subscribe is a server
// stream that lasts until the client goes away (its subscription is removed
// then) or the daemon stops (the stream ends with OK).
import { Events } from '../../gen/containerd/services/events/v1/events_pb.js';
import { invalidArgument } from '../../errdefs.js';
import type { Envelope } from '../../events/bus.js';
import { AsyncQueue } from '../queue.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

export default defineService({
  service: Events,
  plugin: { type: GRPC_PLUGIN, id: 'events', requires: ['io.containerd.event.v1'] },
  create({ events }) {
    return {
      publish(req, ctx) {
        const ns = ctx.requireNamespace();
        if (!req.event) throw invalidArgument('event must be set');
        events.publish(ns, req.topic, req.event);
        return {};
      },
      forward(req) {
        if (!req.envelope) throw invalidArgument('envelope must be set');
        events.forward(req.envelope);
        return {};
      },
      async *subscribe(req, ctx) {
        const queue = new AsyncQueue<Envelope>(ctx.signal);
        const unsubscribe = events.subscribe(req.filters, (env) => queue.push(env), { onClose: () => queue.end() });
        try {
          yield* queue;
        } finally {
          unsubscribe();
        }
      },
    };
  },
});
