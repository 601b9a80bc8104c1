// bench/lifecycle.ts: the lifecycle of a container through containerd's API
// v1, timed per call, against any server of it (tsrund, or containerd with
// its runc shim): Containers.Create, Tasks.Create, Tasks.Start, Tasks.Wait,
// Tasks.Delete, Containers.Delete of `/bin/true` in a prepared rootfs.
// The same client and the same spec for both, so the ratio is the servers'.
//
//   node --import=<tap's ts loader> bench/lifecycle.ts lifecycle ADDRESS ROOTFS RUNS NAME
//     -> one JSON line: {name, runs, total_ms: [...], phases: {create: [...], ...}}
//   ... image ADDRESS PARENT RUNS NAME: the same from an image, as `ctr run IMAGE`
//     and `tsrctl run IMAGE` do it: under a lease (without one, containerd's
//     collector may take the new snapshot before a container holds it),
//     Snapshots.Prepare on the image's top snapshot PARENT (its chain ID)
//     first, the mounts given to Tasks.Create, Snapshots.Remove and the
//     lease's deletion last
//   ... hold ADDRESS ROOTFS COUNT  (COUNT running `sleep` containers, 4 at a time;
//     prints "ready", waits for a line on stdin, then removes them)
import { createInterface } from 'node:readline';
import { Containers } from '../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Leases } from '../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { Tasks } from '../src/gen/containerd/services/tasks/v1/tasks_pb.js';
import { connect, type Connection } from '../src/client/index.js';
import { defaultSpec } from '../src/oci/default-spec.js';
import { packJson, SPEC_TYPE_URL } from '../src/typeurl.js';

const NS = 'bench';

function spec(rootfs: string, id: string, args: string[]) {
  const s = defaultSpec({ cgroupNamespace: false });
  s.process!.args = args;
  s.process!.terminal = false;
  s.root = { path: rootfs, readonly: false };
  s.hostname = id;
  s.linux!.cgroupsPath = `/${NS}/${id}`;
  return packJson(SPEC_TYPE_URL, s);
}

async function lifecycle(conn: Connection, rootfs: string, id: string, image = false): Promise<Record<string, number>> {
  const tasks = conn.service(Tasks);
  const snapshots = conn.service(Snapshots);
  const times: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    times[name] = now - t;
    t = now;
  };
  const begin = t;
  let mounts: Awaited<ReturnType<typeof snapshots.prepare>>['mounts'] = [];
  let lease: string | undefined;
  if (image) {
    lease = (await conn.service(Leases).create({ id: `lease-${id}`, labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3600_000).toISOString() } })).lease!.id;
    lap('lease_create');
    mounts = (await snapshots.prepare({ snapshotter: 'overlayfs', key: id, parent: rootfs }, { lease })).mounts;
    lap('snapshot_prepare');
  }
  const container = image ? { snapshotter: 'overlayfs', snapshotKey: id } : {};
  await conn.service(Containers).create({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec: spec(image ? 'rootfs' : rootfs, id, ['/bin/true']), ...container } }, { lease });
  lap('container_create');
  await tasks.create({ containerId: id, rootfs: mounts });
  lap('task_create');
  const waiting = tasks.wait({ containerId: id });
  await tasks.start({ containerId: id });
  lap('task_start');
  const exit = await waiting;
  if (exit.exitStatus !== 0) throw new Error(`${id}: exit status ${exit.exitStatus}`);
  lap('task_wait');
  await tasks.delete({ containerId: id });
  lap('task_delete');
  await conn.service(Containers).delete({ id });
  lap('container_delete');
  if (image) {
    await snapshots.remove({ snapshotter: 'overlayfs', key: id });
    lap('snapshot_remove');
    await conn.service(Leases).delete({ id: lease! });
    lap('lease_delete');
  }
  times.total = performance.now() - begin;
  return times;
}

async function main(): Promise<void> {
  const [mode, address, rootfs, countText, name = address] = process.argv.slice(2);
  if (!mode || !address || !rootfs || !countText) throw new Error('usage: lifecycle.ts lifecycle|image|hold ADDRESS ROOTFS|PARENT N [NAME]');
  const count = Number(countText);
  const conn = connect(address, { namespace: NS });
  await conn.ready();
  const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  try {
    if (mode === 'lifecycle' || mode === 'image') {
      const image = mode === 'image';
      for (let i = 0; i < 3; i++) await lifecycle(conn, rootfs, `w${tag}-${i}`, image);
      const phases: Record<string, number[]> = {};
      for (let i = 0; i < count; i++) {
        for (const [k, v] of Object.entries(await lifecycle(conn, rootfs, `l${tag}-${i}`, image))) (phases[k] ??= []).push(Math.round(v * 100) / 100);
      }
      const total = phases.total!;
      delete phases.total;
      process.stdout.write(`${JSON.stringify({ name, runs: count, total_ms: total, phases })}\n`);
    } else if (mode === 'hold') {
      const ids = Array.from({ length: count }, (_, i) => `h${tag}-${i}`);
      const tasks = conn.service(Tasks);
      const start = async (id: string) => {
        await conn.service(Containers).create({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec: spec(rootfs, id, ['/bin/sleep', '100000']) } });
        await tasks.create({ containerId: id });
        await tasks.start({ containerId: id });
      };
      for (let i = 0; i < ids.length; i += 4) await Promise.all(ids.slice(i, i + 4).map(start));
      process.stdout.write('ready\n');
      const lines = createInterface({ input: process.stdin });
      await new Promise<void>((resolve) => lines.once('line', () => resolve()));
      lines.close();
      process.stdin.destroy();
      const remove = async (id: string) => {
        await tasks.kill({ containerId: id, signal: 9 }).catch(() => undefined);
        await tasks.wait({ containerId: id }).catch(() => undefined);
        await tasks.delete({ containerId: id }).catch(() => undefined);
        await conn.service(Containers).delete({ id }).catch(() => undefined);
      };
      for (let i = 0; i < ids.length; i += 8) await Promise.all(ids.slice(i, i + 8).map(remove));
      process.stdout.write('removed\n');
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    conn.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`lifecycle.ts: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
  process.exit(1);
});
