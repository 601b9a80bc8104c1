// tsrund as a process: every method of Health, Version, Introspection,
// Namespaces, Containers and Events through the TS client, with the status
// codes containerd answers for bad input; the socket's mode; a graceful stop
// that ends open streams; the uuid and records kept across a restart. Needs
// no root (temp socket and directories). Ids here start with "dt-".
import t from 'tap';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { AnySchema, timestampNow } from '@bufbuild/protobuf/wkt';
import { Version } from '../../src/gen/containerd/services/version/v1/version_pb.js';
import { Introspection } from '../../src/gen/containerd/services/introspection/v1/introspection_pb.js';
import { Namespaces } from '../../src/gen/containerd/services/namespaces/v1/namespace_pb.js';
import { Containers, ContainerSchema } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Events, type Envelope } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { Health, HealthCheckResponse_ServingStatus } from '../../src/gen/grpc/health/v1/health_pb.js';
import { ContainerCreateSchema, ContainerDeleteSchema, ContainerUpdateSchema } from '../../src/gen/containerd/events/container_pb.js';
import { NamespaceCreateSchema, NamespaceDeleteSchema, NamespaceUpdateSchema } from '../../src/gen/containerd/events/namespace_pb.js';
import { TaskOOMSchema } from '../../src/gen/containerd/events/task_pb.js';
import { OptionsSchema } from '../../src/gen/containerd/runc/options/oci_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { packAny, packJson, SPEC_TYPE_URL, unpackAny } from '../../src/typeurl.js';
import { REPO } from '../helpers/cli.js';
import { startTsrund, type RunningDaemon } from '../helpers/daemon.js';

const NS = 'dt-ns';
const SPEC = { ociVersion: '1.1.0', process: { args: ['sh'], cwd: '/' }, root: { path: 'rootfs' } };

type Code = keyof typeof grpc.status;
/** The status name and message of a call: "OK" or "NOT_FOUND: ...". */
async function status(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );
}
async function code(p: Promise<unknown>): Promise<Code | 'OK'> {
  return (await status(p)).split(':')[0] as Code | 'OK';
}

function container(id: string, extra: Omit<MessageInitShape<typeof ContainerSchema>, 'id' | '$typeName'> = {}): MessageInitShape<typeof ContainerSchema> {
  return { id, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, SPEC), ...extra };
}

let d: RunningDaemon;
let conn: Connection;

t.before(async () => {
  d = await startTsrund();
  conn = connect(d.address, { namespace: NS });
  await conn.ready();
});
t.teardown(async () => {
  conn?.close();
  await d?.stop();
});

t.test('socket and directories', async (t) => {
  t.equal(statSync(d.address).mode & 0o777, 0o660, 'socket 0660');
  t.ok(statSync(d.address).isSocket());
  t.equal(statSync(d.root).mode & 0o777, 0o711, '--root 0711');
  t.equal(statSync(d.state).mode & 0o777, 0o711, '--state 0711');
  t.ok(existsSync(join(d.root, 'meta.lmdb')), 'metadata in <root>/meta.lmdb');
});

t.test('Version', async (t) => {
  const v = await conn.service(Version).version();
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  t.equal(v.version, pkg.version);
  t.ok(v.revision.length > 0);
});

t.test('Introspection', async (t) => {
  const intro = conn.service(Introspection);
  const s = await intro.server();
  t.match(s.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.equal(readFileSync(join(d.root, 'uuid'), 'utf8'), s.uuid, 'kept under --root');
  t.equal(Number(s.pid), d.child.pid);
  t.ok(s.pidns > 0n, 'pid namespace inode');
  const all = await intro.plugins({});
  const ids = all.plugins.map((p) => `${p.type} ${p.id}`);
  for (const id of ['containers', 'namespaces', 'events', 'version', 'introspection', 'healthcheck', 'tasks', 'leases', 'content', 'images', 'snapshots', 'diff']) t.ok(ids.includes(`io.containerd.grpc.v1 ${id}`), id);
  t.notOk(ids.includes('io.containerd.grpc.v1 cri'), 'no CRI service');
  t.ok(ids.includes('io.containerd.metadata.v1 lmdb'));
  const one = await intro.plugins({ filters: ['type==io.containerd.grpc.v1,id==containers'] });
  t.same(
    one.plugins.map((p) => p.id),
    ['containers'],
  );
  const grpcOnly = await intro.plugins({ filters: ['type=="io.containerd.grpc.v1"'] });
  t.ok(grpcOnly.plugins.every((p) => p.type === 'io.containerd.grpc.v1'));
  t.equal(await code(intro.plugins({ filters: ['id=='] })), 'INVALID_ARGUMENT');
});

t.test('Health', async (t) => {
  const h = conn.service(Health);
  t.equal((await h.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
  t.equal((await h.check({ service: 'containerd.services.containers.v1.Containers' })).status, HealthCheckResponse_ServingStatus.SERVING);
  t.equal(await code(h.check({ service: 'no.such.Service' })), 'NOT_FOUND');
  const w = h.watch({});
  for await (const r of w) {
    t.equal(r.status, HealthCheckResponse_ServingStatus.SERVING, 'Watch sends the status');
    w.cancel();
    break;
  }
});

t.test('Namespaces', async (t) => {
  const ns = conn.service(Namespaces);
  const unknown = await ns.get({ name: 'dt-never' });
  t.same([unknown.namespace?.name, unknown.namespace?.labels], ['dt-never', {}], 'Get of a namespace never created answers with no labels (as containerd)');
  t.equal(await code(ns.get({ name: 'bad/name' })), 'INVALID_ARGUMENT');

  const created = await ns.create({ namespace: { name: 'dt-a', labels: { team: 'x' } } });
  t.same(created.namespace?.labels, { team: 'x' });
  t.equal(await status(ns.create({ namespace: { name: 'dt-a' } })), 'ALREADY_EXISTS: namespace "dt-a": already exists');
  t.equal(await code(ns.create({ namespace: { name: '' } })), 'INVALID_ARGUMENT');
  t.equal(await code(ns.create({})), 'INVALID_ARGUMENT');
  t.same((await ns.get({ name: 'dt-a' })).namespace?.labels, { team: 'x' });

  const upd = await ns.update({ namespace: { name: 'dt-a', labels: { env: 'prod' } }, updateMask: { paths: ['labels.env'] } });
  t.same(upd.namespace?.labels, { team: 'x', env: 'prod' }, 'labels.<key> mask');
  const repl = await ns.update({ namespace: { name: 'dt-a', labels: { only: '1' } } });
  t.same(repl.namespace?.labels, { only: '1' }, 'no mask replaces the labels');
  t.equal(await code(ns.update({ namespace: { name: 'dt-a' }, updateMask: { paths: ['name'] } })), 'INVALID_ARGUMENT');

  const list = await ns.list({});
  t.ok(list.namespaces.some((n) => n.name === 'dt-a' && n.labels['only'] === '1'));
  t.same(
    (await ns.list({ filter: 'labels.only==1' })).namespaces.map((n) => n.name),
    ['dt-a'],
  );

  await conn.service(Containers).create({ container: container('dt-busy') }, { namespace: 'dt-a' });
  t.equal(
    await status(ns.delete({ name: 'dt-a' })),
    'FAILED_PRECONDITION: namespace "dt-a" must be empty, but it still has containers: failed precondition',
  );
  await conn.service(Containers).delete({ id: 'dt-busy' }, { namespace: 'dt-a' });
  t.equal(await code(ns.delete({ name: 'dt-a' })), 'OK');
  t.equal(await status(ns.delete({ name: 'dt-a' })), 'NOT_FOUND: namespace "dt-a": not found');
});

t.test('Containers', async (t) => {
  const cs = conn.service(Containers);
  const noNs = { namespace: '' };
  t.equal(await status(cs.get({ id: 'x' }, noNs)), 'FAILED_PRECONDITION: namespace is required: failed precondition', 'missing namespace header');
  t.equal(await code(cs.create({ container: container('dt-x') }, noNs)), 'FAILED_PRECONDITION');
  t.equal(await code(cs.list({}, noNs)), 'FAILED_PRECONDITION');
  t.equal(await code(cs.get({ id: 'x' }, { namespace: 'bad/ns' })), 'INVALID_ARGUMENT');

  const options = packAny(OptionsSchema, { binaryName: 'tsrunc', root: '/run/tsrunc' });
  const ext = create(AnySchema, { typeUrl: 'example.com/Ext', value: new Uint8Array([7, 8]) });
  const r = await cs.create({
    container: container('dt-web', {
      labels: { app: 'web', tier: 'front' },
      image: 'docker.io/library/busybox:latest',
      runtime: { name: 'io.containerd.runc.v2', options },
      snapshotter: 'overlayfs',
      snapshotKey: 'dt-web-snap',
      extensions: { 'dt/ext': ext },
    }),
  });
  const c = r.container!;
  t.equal(c.id, 'dt-web');
  t.ok(c.createdAt && c.createdAt.seconds > 0n, 'created_at set');
  t.same(c.updatedAt, c.createdAt, 'updated_at = created_at at create');
  t.equal(unpackAny(c.runtime!.options!, OptionsSchema)?.binaryName, 'tsrunc', 'runtime options round-trip');
  t.same([...c.extensions['dt/ext']!.value], [7, 8], 'extensions round-trip');
  t.same(JSON.parse(Buffer.from(c.spec!.value).toString()), SPEC, 'spec round-trips');

  t.equal(await status(cs.create({ container: container('dt-web') })), 'ALREADY_EXISTS: container "dt-web": already exists', 'created twice');
  t.equal(await status(cs.get({ id: 'dt-nope' })), `NOT_FOUND: container "dt-nope" in namespace "${NS}": not found`, 'unknown container');
  t.equal(await code(cs.create({ container: container('dt/bad') })), 'INVALID_ARGUMENT', 'bad id');
  t.equal(await code(cs.create({})), 'INVALID_ARGUMENT', 'no container');
  t.equal(await code(cs.create({ container: { id: 'dt-nort', spec: packJson(SPEC_TYPE_URL, SPEC) } })), 'INVALID_ARGUMENT', 'no runtime');
  t.match(await status(cs.create({ container: { id: 'dt-nospec', runtime: { name: 'r' } } })), /INVALID_ARGUMENT: create container failed validation: container.Spec must be set/);
  t.match(
    await status(cs.create({ container: container('dt-url', { spec: packJson('types.containerd.io/opencontainers/runtime-spec/1/Process', SPEC) }) })),
    /^INVALID_ARGUMENT: .*container.Spec: type URL "types.containerd.io\/opencontainers\/runtime-spec\/1\/Process" is not/,
    'wrong type URL',
  );
  t.match(
    await status(cs.create({ container: container('dt-json', { spec: create(AnySchema, { typeUrl: SPEC_TYPE_URL, value: Buffer.from('{"ociVersion": ') }) }) })),
    /^INVALID_ARGUMENT: .*container.Spec: value is not valid JSON/,
    'spec JSON invalid',
  );
  t.match(
    await status(cs.create({ container: container('dt-any', { spec: create(AnySchema, { typeUrl: '', value: new Uint8Array([0xff, 0x00, 0x13]) }) }) })),
    /^INVALID_ARGUMENT: .*container.Spec: type URL "" is not/,
    'malformed Any (no type URL, binary value)',
  );
  t.match(
    await status(cs.create({ container: container('dt-any2', { spec: create(AnySchema, { typeUrl: SPEC_TYPE_URL, value: new Uint8Array([0xff, 0xfe]) }) }) })),
    /^INVALID_ARGUMENT: .*container.Spec: value is not valid JSON/,
    'malformed Any (not UTF-8)',
  );
  t.equal(await code(cs.create({ container: container('dt-sk', { snapshotKey: 'k' }) })), 'INVALID_ARGUMENT', 'snapshot key without snapshotter');
  t.equal(await code(cs.get({ id: 'dt-url' })), 'NOT_FOUND', 'nothing was left of refused creates');

  await cs.create({ container: container('dt-db', { labels: { app: 'db' }, image: 'postgres' }) });
  t.same(
    (await cs.list({})).containers.map((x) => x.id),
    ['dt-db', 'dt-web'],
  );
  t.same(
    (await cs.list({ filters: ['labels.app==web'] })).containers.map((x) => x.id),
    ['dt-web'],
  );
  t.same(
    (await cs.list({ filters: ['image~=^post', 'labels.tier==front'] })).containers.map((x) => x.id),
    ['dt-db', 'dt-web'],
    'filters are OR',
  );
  t.same(
    (await cs.list({ filters: ['runtime.name=="io.containerd.runc.v2",id!=dt-web'] })).containers.map((x) => x.id),
    ['dt-db'],
  );
  t.equal(await code(cs.list({ filters: ['labels.'] })), 'INVALID_ARGUMENT');
  const streamed: string[] = [];
  for await (const m of cs.listStream({ filters: ['id~=^dt-'] })) streamed.push(m.container!.id);
  t.same(streamed, ['dt-db', 'dt-web'], 'ListStream sends one per container');
  t.same((await cs.list({}, { namespace: 'dt-elsewhere' })).containers, [], 'per namespace');

  // Update
  const u = await cs.update({ container: { id: 'dt-web', labels: { app: 'web2', gone: '' } }, updateMask: { paths: ['labels.app', 'labels.tier'] } });
  t.same(u.container?.labels, { app: 'web2' }, 'labels.<key>: set one, drop one not given');
  t.ok(u.container!.updatedAt!.seconds >= c.createdAt!.seconds);
  t.same(u.container?.createdAt, c.createdAt, 'created_at kept');
  t.equal((await cs.update({ container: { id: 'dt-web', image: 'alpine' }, updateMask: { paths: ['image'] } })).container?.image, 'alpine');
  t.equal((await cs.update({ container: { id: 'dt-web', snapshotKey: 'k2' }, updateMask: { paths: ['snapshotkey'] } })).container?.snapshotKey, 'k2');
  t.same(
    Object.keys((await cs.update({ container: { id: 'dt-web' }, updateMask: { paths: ['extensions.dt/ext'] } })).container!.extensions),
    [],
    'extensions.<key> removes an absent one',
  );
  const spec2 = { ...SPEC, hostname: 'h2' };
  const withSpec = await cs.update({ container: { id: 'dt-web', spec: packJson(SPEC_TYPE_URL, spec2) }, updateMask: { paths: ['spec'] } });
  t.same(JSON.parse(Buffer.from(withSpec.container!.spec!.value).toString()), spec2);
  t.equal(await code(cs.update({ container: { id: 'dt-web', spec: packJson('x/y', {}) }, updateMask: { paths: ['spec'] } })), 'INVALID_ARGUMENT');
  t.equal(await status(cs.update({ container: { id: 'dt-web' }, updateMask: { paths: ['runtime'] } })), 'INVALID_ARGUMENT: cannot update "runtime" field on "dt-web": invalid argument');
  t.equal(
    await status(cs.update({ container: container('dt-web', { snapshotter: 'native' }) })),
    'INVALID_ARGUMENT: container.Snapshotter field is immutable: invalid argument',
    'no mask: snapshotter is immutable',
  );
  t.equal(await code(cs.update({ container: { id: 'dt-ghost' }, updateMask: { paths: ['image'] } })), 'NOT_FOUND');
  t.equal(await code(cs.update({ container: {}, updateMask: { paths: ['image'] } })), 'INVALID_ARGUMENT');

  // Delete
  t.equal(await code(cs.delete({ id: 'dt-db' })), 'OK');
  t.equal(await status(cs.delete({ id: 'dt-db' })), `NOT_FOUND: container "dt-db" in namespace "${NS}": not found`);
  t.equal(await code(cs.get({ id: 'dt-db' })), 'NOT_FOUND');
});

/** Subscribes and collects envelopes until cancelled. */
function collect(filters: string[] = []): { got: Envelope[]; cancel(): void; ended: Promise<string> } {
  const stream = conn.service(Events).subscribe({ filters }, { namespace: '' });
  const got: Envelope[] = [];
  const ended = (async () => {
    try {
      for await (const env of stream) got.push(env);
      return 'OK';
    } catch (e) {
      return grpc.status[(e as grpc.ServiceError).code] ?? 'error';
    }
  })();
  return { got, cancel: () => stream.cancel(), ended };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('Events: the services publish; Publish, Forward, Subscribe filters', async (t) => {
  const all = collect();
  const onlyMine = collect(['namespace==dt-ev,topic~="^/containers/"']);
  const exits = collect(['topic=="/tasks/oom",event.container_id==dt-c9']);
  // a Subscribe is registered when its first event can reach it; give it a moment
  await new Promise((r) => setTimeout(r, 200));

  const cs = conn.service(Containers);
  const ns = conn.service(Namespaces);
  await ns.create({ namespace: { name: 'dt-ev', labels: { a: '1' } } }, { namespace: 'dt-ev' });
  await cs.create({ container: container('dt-evc', { image: 'img' }) }, { namespace: 'dt-ev' });
  await cs.update({ container: { id: 'dt-evc', labels: { k: 'v' } }, updateMask: { paths: ['labels.k'] } }, { namespace: 'dt-ev' });
  await cs.delete({ id: 'dt-evc' }, { namespace: 'dt-ev' });
  await ns.update({ namespace: { name: 'dt-ev', labels: { b: '2' } } }, { namespace: 'dt-ev' });
  await ns.delete({ name: 'dt-ev' });
  const events = conn.service(Events);
  await events.publish({ topic: '/tasks/oom', event: packAny(TaskOOMSchema, { containerId: 'dt-c9' }) });
  await events.publish({ topic: '/tasks/oom', event: packAny(TaskOOMSchema, { containerId: 'dt-c8' }) });
  const fwd = { timestamp: timestampNow(), namespace: 'dt-fwd', topic: '/tasks/oom', event: packAny(TaskOOMSchema, { containerId: 'dt-c9' }) };
  await events.forward({ envelope: fwd });

  await until(() => all.got.length >= 9, 'all events');
  const seen = all.got.map((e) => `${e.namespace} ${e.topic} ${e.event?.typeUrl}`);
  t.same(seen, [
    'dt-ev /namespaces/create containerd.events.NamespaceCreate',
    'dt-ev /containers/create containerd.events.ContainerCreate',
    'dt-ev /containers/update containerd.events.ContainerUpdate',
    'dt-ev /containers/delete containerd.events.ContainerDelete',
    'dt-ev /namespaces/update containerd.events.NamespaceUpdate',
    'dt-ev /namespaces/delete containerd.events.NamespaceDelete',
    `${NS} /tasks/oom containerd.events.TaskOOM`,
    `${NS} /tasks/oom containerd.events.TaskOOM`,
    'dt-fwd /tasks/oom containerd.events.TaskOOM',
  ]);
  t.ok(all.got.every((e) => e.timestamp && e.timestamp.seconds > 0n), 'envelopes carry a timestamp');
  const [nsCreate, cCreate, cUpdate, cDelete, nsUpdate, nsDelete] = all.got;
  t.same(unpackAny(nsCreate!.event!, NamespaceCreateSchema)?.labels, { a: '1' });
  const cc = unpackAny(cCreate!.event!, ContainerCreateSchema)!;
  t.same([cc.id, cc.image, cc.runtime?.name], ['dt-evc', 'img', 'io.containerd.runc.v2']);
  t.same(unpackAny(cUpdate!.event!, ContainerUpdateSchema)?.labels, { k: 'v' });
  t.equal(unpackAny(cDelete!.event!, ContainerDeleteSchema)?.id, 'dt-evc');
  t.same(unpackAny(nsUpdate!.event!, NamespaceUpdateSchema)?.labels, { b: '2' });
  t.equal(unpackAny(nsDelete!.event!, NamespaceDeleteSchema)?.name, 'dt-ev');
  t.same(
    all.got[8]!.timestamp,
    fwd.timestamp,
    'Forward keeps the envelope as it came',
  );

  await until(() => onlyMine.got.length >= 3 && exits.got.length >= 2, 'filtered events');
  t.same(
    onlyMine.got.map((e) => e.topic),
    ['/containers/create', '/containers/update', '/containers/delete'],
    'namespace and topic regexp',
  );
  t.same(
    exits.got.map((e) => e.namespace),
    [NS, 'dt-fwd'],
    'event.<field> looks inside the Any',
  );

  t.equal(await code(events.publish({ topic: '/tasks/oom', event: packAny(TaskOOMSchema, {}) }, { namespace: '' })), 'FAILED_PRECONDITION', 'Publish needs a namespace');
  t.equal(await code(events.publish({ topic: 'no-slash', event: packAny(TaskOOMSchema, {}) })), 'INVALID_ARGUMENT');
  t.equal(await code(events.publish({ topic: '/x' })), 'INVALID_ARGUMENT', 'Publish without an event');
  t.equal(await code(events.forward({ envelope: { ...fwd, timestamp: undefined } })), 'INVALID_ARGUMENT', 'Forward needs a timestamp');
  t.equal(await code(events.forward({ envelope: { ...fwd, namespace: '' } })), 'INVALID_ARGUMENT', 'Forward needs a namespace');
  const bad = collect(['topic==']);
  t.equal(await bad.ended, 'INVALID_ARGUMENT', 'a bad filter');

  for (const s of [all, onlyMine, exits]) s.cancel();
  t.same(await Promise.all([all.ended, onlyMine.ended, exits.ended]), ['CANCELLED', 'CANCELLED', 'CANCELLED']);
});

t.test('a request that does not decode, a method not served', async (t) => {
  const raw = new grpc.Client(`unix:${d.address}`, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  const call = (path: string, bytes: Buffer) =>
    new Promise<string>((resolve) =>
      raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, new grpc.Metadata(), {}, (e) => resolve(e ? grpc.status[e.code]! : 'OK')),
    );
  t.equal(await call('/containerd.services.containers.v1.Containers/Get', Buffer.from([0x0a, 0xff])), 'INTERNAL', 'truncated protobuf');
  t.equal(await call('/runtime.v1alpha2.RuntimeService/Version', Buffer.from(toBinary(AnySchema, create(AnySchema)))), 'UNIMPLEMENTED', 'a service not served (CRI)');
});

t.test('graceful stop ends streams; a restart keeps the uuid and the records', async (t) => {
  const before = await conn.service(Introspection).server();
  await conn.service(Containers).create({ container: container('dt-kept', { labels: { k: 'v' } }) });
  const sub = collect();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await d.stop(), 0, 'SIGTERM: exit 0');
  t.equal(await sub.ended, 'OK', 'an open Subscribe ends with OK');
  t.notOk(existsSync(d.address), 'socket removed');
  t.match(d.log(), /msg="tsrund stopped"/);

  conn.close();
  d = await startTsrund({ dir: dirname(d.address) });
  conn = connect(d.address, { namespace: NS });
  await conn.ready();
  t.equal((await conn.service(Introspection).server()).uuid, before.uuid, 'same uuid');
  t.same((await conn.service(Containers).get({ id: 'dt-kept' })).container?.labels, { k: 'v' }, 'same records');
});

t.test('a second daemon on the same socket is refused', async (t) => {
  const second = startTsrund({ dir: dirname(d.address) });
  await t.rejects(second, /another daemon is listening on it/);
  t.equal(await code(conn.service(Version).version()), 'OK', 'the first one still serves');
});

