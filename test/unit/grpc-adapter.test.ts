// The gRPC adapter in-process: errdefs classes become containerd's status
// codes, the namespace header reaches the handler, streams end and clean up
// when the client goes away; and the event bus with its filters.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Events } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { TaskExitSchema, TaskStartSchema } from '../../src/gen/containerd/events/task_pb.js';
import { addService, toStatus, requireNamespace } from '../../src/daemon/grpc.js';
import { connect, type Connection } from '../../src/client/index.js';
import { EventBus } from '../../src/events/bus.js';
import eventsModule from '../../src/daemon/services/events.js';
import type { ServiceDeps } from '../../src/daemon/service.js';
import { alreadyExists, ErrdefsError, failedPrecondition, invalidArgument, notFound, notImplemented, unavailable } from '../../src/errdefs.js';
import { packAny } from '../../src/typeurl.js';

const dir = mkdtempSync(join(tmpdir(), 'tsrund-adapter-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('toStatus maps errdefs classes as errdefs.ToGRPC', async (t) => {
  t.same(toStatus(notFound('container "x"')), { code: grpc.status.NOT_FOUND, details: 'container "x": not found' });
  t.equal(toStatus(alreadyExists('x')).code, grpc.status.ALREADY_EXISTS);
  t.equal(toStatus(invalidArgument('x')).code, grpc.status.INVALID_ARGUMENT);
  t.equal(toStatus(failedPrecondition('x')).code, grpc.status.FAILED_PRECONDITION);
  t.equal(toStatus(unavailable('x')).code, grpc.status.UNAVAILABLE);
  t.equal(toStatus(notImplemented('x')).code, grpc.status.UNIMPLEMENTED);
  t.equal(toStatus(new ErrdefsError('canceled', 'x')).code, grpc.status.CANCELLED);
  t.equal(toStatus(new ErrdefsError('deadline exceeded', 'x')).code, grpc.status.DEADLINE_EXCEEDED);
  t.same(toStatus(new Error('boom')), { code: grpc.status.UNKNOWN, details: 'boom' });
  t.same(toStatus({ code: grpc.status.ABORTED, details: 'mapped already', message: 'x' }), { code: grpc.status.ABORTED, details: 'mapped already' });
});

t.test('requireNamespace is containerd NamespaceRequired', async (t) => {
  t.throws(() => requireNamespace(undefined), { message: 'namespace is required: failed precondition' });
  t.throws(() => requireNamespace(''), { errClass: 'failed precondition', message: /failed precondition$/ });
  t.throws(() => requireNamespace('a/b'), { errClass: 'invalid argument', message: /^namespace validation: identifier "a\/b" must match/ });
  t.equal(requireNamespace('default'), 'default');
});

async function serve(setup: (s: grpc.Server) => void): Promise<{ conn: Connection; stop: () => Promise<void> }> {
  const server = new grpc.Server();
  setup(server);
  const sock = join(dir, `s${Math.random().toString(36).slice(2)}.sock`);
  await new Promise<void>((res, rej) => server.bindAsync(`unix:${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  const conn = connect(sock, { namespace: 'adapter-ns' });
  await conn.ready();
  return {
    conn,
    stop: async () => {
      conn.close();
      await new Promise<void>((res) => server.tryShutdown(() => res()));
    },
  };
}

t.test('unary calls: status codes, messages, namespace, unimplemented', async (t) => {
  const seen: Array<string | undefined> = [];
  const { conn, stop } = await serve((s) =>
    addService(s, Containers, {
      get(req, ctx) {
        seen.push(ctx.namespace);
        const ns = ctx.requireNamespace();
        switch (req.id) {
          case 'nf':
            throw notFound(`container "nf" in namespace "${ns}"`);
          case 'exists':
            throw alreadyExists('container "exists"');
          case 'bad':
            throw invalidArgument('bad id');
          case 'crash':
            throw new Error('unexpected');
          default:
            return { container: { id: req.id, labels: { ns } } };
        }
      },
    }),
  );
  t.teardown(stop);
  const c = conn.service(Containers);
  const ok = await c.get({ id: 'web' });
  t.equal(ok.container?.id, 'web');
  t.same(ok.container?.labels, { ns: 'adapter-ns' }, 'the containerd-namespace header reaches the handler');
  const codeOf = async (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);
  t.equal(await codeOf(c.get({ id: 'nf' })), 'NOT_FOUND: container "nf" in namespace "adapter-ns": not found');
  t.equal(await codeOf(c.get({ id: 'exists' })), 'ALREADY_EXISTS: container "exists": already exists');
  t.equal(await codeOf(c.get({ id: 'bad' })), 'INVALID_ARGUMENT: bad id: invalid argument');
  t.equal(await codeOf(c.get({ id: 'crash' })), 'UNKNOWN: unexpected');
  t.equal(await codeOf(c.get({ id: 'web' }, { namespace: '' })), 'FAILED_PRECONDITION: namespace is required: failed precondition');
  t.match(await codeOf(c.list({})), /^UNIMPLEMENTED/, 'a method without a handler');
  t.same(seen.slice(-1), [undefined]);
});

t.test('server streams: Subscribe ends and unsubscribes when the client cancels', async (t) => {
  const bus = new EventBus();
  const impl = await eventsModule.create({ events: bus } as unknown as ServiceDeps);
  const { conn, stop } = await serve((s) => addService(s, Events, impl));
  t.teardown(stop);
  const ev = conn.service(Events);

  const stream = ev.subscribe({ filters: ['topic=="/tasks/exit"', 'namespace==other'] });
  const got: string[] = [];
  const done = (async () => {
    try {
      for await (const env of stream) got.push(`${env.namespace} ${env.topic}`);
    } catch (e) {
      return (e as grpc.ServiceError).code;
    }
    return 'ended';
  })();
  for (let i = 0; i < 50 && bus.subscriberCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(bus.subscriberCount, 1, 'subscribed');
  await ev.publish({ topic: '/tasks/start', event: packAny(TaskStartSchema, { containerId: 'c', pid: 1 }) });
  await ev.publish({ topic: '/tasks/exit', event: packAny(TaskExitSchema, { containerId: 'c', id: 'c', exitStatus: 3 }) });
  await ev.publish({ topic: '/tasks/start', event: packAny(TaskStartSchema, { containerId: 'c' }) }, { namespace: 'other' });
  for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(got, ['adapter-ns /tasks/exit', 'other /tasks/start'], 'filters: OR of the two');
  stream.cancel();
  t.equal(await done, grpc.status.CANCELLED);
  for (let i = 0; i < 100 && bus.subscriberCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(bus.subscriberCount, 0, 'the listener is gone once the client went away');

  const badFilter = ev.subscribe({ filters: ['topic=='] });
  const err = await (async () => {
    try {
      for await (const _ of badFilter) void _;
    } catch (e) {
      return e as grpc.ServiceError;
    }
    return undefined;
  })();
  t.equal(err?.code, grpc.status.INVALID_ARGUMENT, 'a bad filter is InvalidArgument');
  t.match(err?.details, /^failed parsing subscription filters: filters: parse error/);
  t.equal(bus.subscriberCount, 0);

  const publishNoNs = await ev.publish({ topic: '/x', event: packAny(TaskStartSchema, {}) }, { namespace: '' }).then(
    () => 0,
    (e: grpc.ServiceError) => e.code,
  );
  t.equal(publishNoNs, grpc.status.FAILED_PRECONDITION);
  const badTopic = await ev.publish({ topic: 'tasks', event: packAny(TaskStartSchema, {}) }).then(
    () => '',
    (e: grpc.ServiceError) => e.details,
  );
  t.equal(badTopic, `envelope topic "tasks": must start with '/': invalid argument`);
});

t.test('event bus: envelopes, event.<field> filters, forward, close', async (t) => {
  const bus = new EventBus();
  const got: string[] = [];
  const off = bus.subscribe(['event.container_id==c2', 'event.id==exec1,topic~=exit'], (e) => got.push(e.topic));
  const env = bus.publishMessage('bus-ns', '/tasks/start', TaskStartSchema, { containerId: 'c2', pid: 7 });
  t.equal(env.namespace, 'bus-ns');
  t.equal(env.event?.typeUrl, 'containerd.events.TaskStart', 'type URL is the bare message name');
  t.ok(env.timestamp && env.timestamp.seconds > 0n);
  bus.publishMessage('bus-ns', '/tasks/exit', TaskExitSchema, { containerId: 'c9', id: 'exec1' });
  bus.publishMessage('bus-ns', '/tasks/start', TaskStartSchema, { containerId: 'c9' });
  t.same(got, ['/tasks/start', '/tasks/exit']);
  t.throws(() => bus.publish('', '/a', env.event!), { errClass: 'failed precondition', message: /namespace is required/ });
  t.throws(() => bus.publish('ns', '/a/', env.event!), { errClass: 'invalid argument', message: /failed validation on component ""/ });
  t.throws(() => bus.forward({ ...env, timestamp: undefined }), { message: 'timestamp must be set on forwarded event: invalid argument' });
  bus.forward(env);
  t.same(got, ['/tasks/start', '/tasks/exit', '/tasks/start'], 'forwarded as is');
  off();
  t.equal(bus.subscriberCount, 0);
  let closed = 0;
  bus.subscribe([], () => {}, { onClose: () => closed++ });
  bus.close();
  t.equal(closed, 1, 'close ends subscriptions');
  t.equal(bus.subscriberCount, 0);
});
