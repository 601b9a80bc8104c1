// containerd.services.tasks.v1 over the task manager (src/tasks): every task
// runs under its own tsrunc-shim; events go out as containerd's Task* messages.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate, type Any } from '@bufbuild/protobuf/wkt';
import { Tasks } from '../../gen/containerd/services/tasks/v1/tasks_pb.js';
import { ProcessSchema, Status, type Process } from '../../gen/containerd/types/task/task_pb.js';
import { OptionsSchema, ProcessDetailsSchema } from '../../gen/containerd/runc/options/oci_pb.js';
import { CreateOptionsSchema, RuncOptionsSchema } from '../../gen/containerd/linux/runc/runctypes_pb.js';
import { MetricsSchema } from '../../gen/io/containerd/cgroups/v2/metrics_pb.js';
import {
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExecAddedSchema,
  TaskExecStartedSchema,
  TaskExitSchema,
  TaskOOMSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from '../../gen/containerd/events/task_pb.js';
import { TOPICS } from '../../events/topics.js';
import type { EventBus } from '../../events/bus.js';
import { parseFilters } from '../../events/filters.js';
import { invalidArgument, notImplemented } from '../../errdefs.js';
import { validateIdentifier } from '../../identifiers.js';
import { packAny, unpackAny, unpackJson, LINUX_RESOURCES_TYPE_URL, PROCESS_TYPE_URL, SPEC_TYPE_URL } from '../../typeurl.js';
import { setChildSubreaper } from '../../linux/libc.js';
import { parseProcess, ConfigError } from '../../oci/validate.js';
import type { Process as OciProcess, Spec } from '../../oci/spec.js';
import { TaskManager, type ProcessView, type TaskEvent, type TaskStatus } from '../../tasks/manager.js';
import { cgroupMetrics } from '../../tasks/metrics.js';
import { releaseOnSubscriber } from '../../events/release-gate.js';
import type { StackMount } from '../../runtime/mount-stack.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

// Exits found at restore wait for a client to subscribe again (dockerd
// reconnects within seconds and learns exits only from events), at least
// this long after the start, and go out anyway after the longer time.
const RESTORED_EVENTS_MIN_MS = 1000;
const RESTORED_EVENTS_MAX_MS = 10_000;

const STATUS: Record<TaskStatus, Status> = {
  created: Status.CREATED,
  running: Status.RUNNING,
  stopped: Status.STOPPED,
  paused: Status.PAUSED,
  unknown: Status.UNKNOWN,
};

function processMessage(v: ProcessView): Process {
  return create(ProcessSchema, {
    containerId: v.containerId,
    // containerd names the init by its container's id
    id: v.id || v.containerId,
    pid: v.pid,
    status: STATUS[v.status],
    stdin: v.io.stdin,
    stdout: v.io.stdout,
    stderr: v.io.stderr,
    terminal: v.io.terminal,
    exitStatus: v.exit?.status ?? 0,
    ...(v.exit ? { exitedAt: timestampFromDate(v.exit.exitedAt) } : {}),
  });
}

/** Task events as containerd's event messages, on its topics. */
export function publishTaskEvent(bus: EventBus, ns: string, e: TaskEvent): void {
  switch (e.type) {
    case 'TaskCreate':
      bus.publishMessage(ns, TOPICS.taskCreate, TaskCreateSchema, {
        containerId: e.containerId,
        bundle: e.bundle,
        rootfs: e.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: m.options })),
        io: { stdin: e.io.stdin, stdout: e.io.stdout, stderr: e.io.stderr, terminal: e.io.terminal },
        pid: e.pid,
      });
      return;
    case 'TaskStart':
      bus.publishMessage(ns, TOPICS.taskStart, TaskStartSchema, { containerId: e.containerId, pid: e.pid });
      return;
    case 'TaskExit':
    case 'TaskDelete': {
      const fields = { containerId: e.containerId, id: e.id, pid: e.pid, exitStatus: e.exitStatus, exitedAt: timestampFromDate(e.exitedAt) };
      if (e.type === 'TaskExit') bus.publishMessage(ns, TOPICS.taskExit, TaskExitSchema, fields);
      else bus.publishMessage(ns, TOPICS.taskDelete, TaskDeleteSchema, fields);
      return;
    }
    case 'TaskExecAdded':
      bus.publishMessage(ns, TOPICS.taskExecAdded, TaskExecAddedSchema, { containerId: e.containerId, execId: e.execId });
      return;
    case 'TaskExecStarted':
      bus.publishMessage(ns, TOPICS.taskExecStarted, TaskExecStartedSchema, { containerId: e.containerId, execId: e.execId, pid: e.pid });
      return;
    case 'TaskPaused':
      bus.publishMessage(ns, TOPICS.taskPaused, TaskPausedSchema, { containerId: e.containerId });
      return;
    case 'TaskResumed':
      bus.publishMessage(ns, TOPICS.taskResumed, TaskResumedSchema, { containerId: e.containerId });
      return;
    case 'TaskOOM':
      bus.publishMessage(ns, TOPICS.taskOOM, TaskOOMSchema, { containerId: e.containerId });
      return;
  }
}

type LaunchOptions = { noPivot: boolean; noNewKeyring: boolean };

/**
 * The launch flags in one runtime options Any: the runc shim's Options
 * (io.containerd.runc.v1/v2) or the v1 runtime's CreateOptions; its
 * RuncOptions names only a binary and a root, which tsrund, running every
 * task through its own launcher, has no use for. Other kinds are refused.
 */
function launchOptions(a: Any): LaunchOptions | undefined {
  const o = unpackAny(a, OptionsSchema) ?? unpackAny(a, CreateOptionsSchema);
  if (o) return { noPivot: o.noPivotRoot, noNewKeyring: o.noNewKeyring };
  if (unpackAny(a, RuncOptionsSchema)) return undefined;
  const known = [OptionsSchema, CreateOptionsSchema, RuncOptionsSchema].map((s) => s.typeName).join(', ');
  throw invalidArgument(`runtime options of type ${JSON.stringify(a.typeUrl)} are not supported (tsrund takes ${known})`);
}

/** The flags from the request's options or else the container's runtime options. */
function runcOptions(...candidates: (Any | { typeUrl: string; value: Uint8Array } | undefined)[]): LaunchOptions {
  for (const a of candidates) {
    if (!a || (a.typeUrl === '' && a.value.length === 0)) continue;
    const o = launchOptions(a as Any);
    if (o) return o;
  }
  return { noPivot: false, noNewKeyring: false };
}

function processSpec(any: Any | undefined): OciProcess {
  const json = unpackJson(any, PROCESS_TYPE_URL, 'exec process spec');
  try {
    return parseProcess(JSON.stringify(json), 'exec process spec');
  } catch (e) {
    throw invalidArgument(e instanceof ConfigError || e instanceof Error ? e.message : String(e));
  }
}

export default defineService({
  service: Tasks,
  plugin: { type: GRPC_PLUGIN, id: 'tasks', requires: ['io.containerd.runtime.v2', 'io.containerd.metadata.v1'] },
  create({ metadata, events, config, log, onStop }) {
    // Processes orphaned by a dead shim become ours to collect.
    setChildSubreaper();
    const tm = new TaskManager({ stateDir: config.state, publish: (ns, e) => publishTaskEvent(events, ns, e), log });
    tm.restore();
    const cancelRelease = tm.holdsRestoredEvents
      ? releaseOnSubscriber(events, () => tm.releaseRestored(), {
          minMs: RESTORED_EVENTS_MIN_MS,
          maxMs: RESTORED_EVENTS_MAX_MS,
          // someone listening to each namespace's exits (dockerd opens plugins.moby's stream and moby's separately)
          ready: () => tm.heldNamespaces.every((ns) => events.hasSubscriberFor(ns, '/tasks/exit')),
        })
      : () => {};
    onStop(() => {
      cancelRelease();
      tm.detachAll();
    });

    return {
      create(req, ctx) {
        const ns = ctx.requireNamespace();
        if (req.checkpoint && (req.checkpoint.digest || req.checkpoint.mediaType)) {
          throw notImplemented('checkpoint and restore are not supported by tsrund: CreateTaskRequest.checkpoint must be empty');
        }
        const container = metadata.containers.get(ns, req.containerId);
        const spec = unpackJson(container.spec as Any | undefined, SPEC_TYPE_URL, `container ${req.containerId}: spec`) as Spec;
        const rootfs: StackMount[] = req.rootfs.map((m) => ({ type: m.type, source: m.source, ...(m.target ? { target: m.target } : {}), options: [...m.options] }));
        const view = tm.create({
          namespace: ns,
          id: req.containerId,
          spec,
          rootfs,
          io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
          ...runcOptions(req.options, container.runtime.options),
        });
        return { containerId: req.containerId, pid: view.pid };
      },
      start(req, ctx) {
        return { pid: tm.start(ctx.requireNamespace(), req.containerId, req.execId) };
      },
      delete(req, ctx) {
        const r = tm.delete(ctx.requireNamespace(), req.containerId);
        return { id: req.containerId, pid: r.pid, exitStatus: r.exit.status, exitedAt: timestampFromDate(r.exit.exitedAt) };
      },
      deleteProcess(req, ctx) {
        if (req.execId === '') throw invalidArgument('exec id is required: use Delete for the init process');
        const r = tm.deleteProcess(ctx.requireNamespace(), req.containerId, req.execId);
        return { id: req.execId, pid: r.pid, exitStatus: r.exit.status, exitedAt: timestampFromDate(r.exit.exitedAt) };
      },
      get(req, ctx) {
        return { process: processMessage(tm.getProcess(ctx.requireNamespace(), req.containerId, req.execId)) };
      },
      list(req, ctx) {
        const filter = parseFilters(req.filter ? [req.filter] : []);
        const tasks = tm.list(ctx.requireNamespace()).filter((v) =>
          filter.match((path) => {
            const field = path.join('.');
            if (field === 'id' || field === 'container_id') return v.containerId;
            if (field === 'status') return v.status;
            return undefined;
          }),
        );
        return { tasks: tasks.map(processMessage) };
      },
      kill(req, ctx) {
        if (req.signal > 64) throw invalidArgument(`invalid signal ${req.signal}`);
        tm.kill(ctx.requireNamespace(), req.containerId, req.execId, req.signal, req.all);
        return {};
      },
      exec(req, ctx) {
        const ns = ctx.requireNamespace();
        if (req.execId === '') throw invalidArgument('exec id must not be empty');
        validateIdentifier(req.execId);
        const proc = processSpec(req.spec);
        tm.exec(ns, req.containerId, req.execId, proc, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal });
        return {};
      },
      resizePty(req, ctx) {
        tm.resize(ctx.requireNamespace(), req.containerId, req.execId, req.height, req.width);
        return {};
      },
      closeIO(req, ctx) {
        if (req.stdin) tm.closeStdin(ctx.requireNamespace(), req.containerId, req.execId);
        return {};
      },
      pause(req, ctx) {
        tm.pause(ctx.requireNamespace(), req.containerId);
        return {};
      },
      resume(req, ctx) {
        tm.resume(ctx.requireNamespace(), req.containerId);
        return {};
      },
      listPids(req, ctx) {
        return {
          processes: tm.pids(ctx.requireNamespace(), req.containerId).map((p) => ({
            pid: p.pid,
            ...(p.execId ? { info: packAny(ProcessDetailsSchema, { execId: p.execId }) } : {}),
          })),
        };
      },
      checkpoint() {
        throw notImplemented('checkpoint is not supported by tsrund (no CRIU)');
      },
      update(req, ctx) {
        const ns = ctx.requireNamespace();
        if (!req.resources) throw invalidArgument('resources must be set');
        tm.update(ns, req.containerId, unpackJson(req.resources, LINUX_RESOURCES_TYPE_URL, 'resources'));
        return {};
      },
      metrics(req, ctx) {
        const ns = ctx.requireNamespace();
        const filter = parseFilters(req.filters);
        const metrics = [];
        for (const v of tm.list(ns)) {
          if (!filter.match((path) => (path.join('.') === 'id' ? v.containerId : undefined))) continue;
          const dir = tm.cgroupDir(ns, v.containerId);
          if (!dir || v.status === 'stopped') continue;
          metrics.push({ timestamp: timestampFromDate(new Date()), id: v.containerId, data: packAny(MetricsSchema, cgroupMetrics(dir, tm.cgroupV1(ns, v.containerId))) });
        }
        return { metrics };
      },
      async wait(req, ctx) {
        const exit = await tm.wait(ctx.requireNamespace(), req.containerId, req.execId, ctx.signal);
        return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.exitedAt) };
      },
    };
  },
});

