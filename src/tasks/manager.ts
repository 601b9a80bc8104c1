// Tasks: containers running under their shims, as containerd's tasks service
// sees them. Each task has a directory (bundle, shim socket, exit file,
// task.json) under <state>/tasks/<namespace>/<id>, and runc-compatible
// runtime state under <state>/runtime/<namespace> (so `tsrunc --root` can
// inspect it). No Node process per container: the shim holds it, and a
// restarted daemon finds every task again from these directories.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitpidNoHang } from '../linux/libc.js';
import type { Process, Spec } from '../oci/spec.js';
import { ConfigError } from '../oci/validate.js';
import { alreadyExists, ErrdefsError, failedPrecondition, invalidArgument, notFound } from '../errdefs.js';
import { createContainer, destroyContainer, startCreated, killContainer, containerPids } from '../runtime/container.js';
import { execInContainer } from '../runtime/exec.js';
import { RuntimeError } from '../runtime/errors.js';
import { pauseContainer, resumeContainer, updateContainer, containerStats } from '../runtime/cgroups/lifecycle.js';
import type { Stats } from '../runtime/cgroups/stats.js';
import type { V1Cgroup } from '../runtime/cgroups/v1.js';
import { containerStatus, readRecord, writeFileAtomic, type ContainerRecord } from '../runtime/state.js';
import type { Logger } from '../runtime/log.js';
import { Shim, ShimError, EXIT_FILE } from './shim.js';
import { exitCode, parseExitRecord, type ShimProcess } from './shim-protocol.js';
import { openIO, type ProcessIO } from './stdio.js';
import { mountStack, unmountStack, type StackMount } from '../runtime/mount-stack.js';
import { oomKills, watchMemoryEvents } from './oom.js';

const INIT = 'init';
const LOGGER = 'logger';
const execName = (execId: string) => `exec/${execId}`;
const TASK_FILE = 'task.json';
/** containerd's exit status for a task whose shim died (128 + SIGKILL). */
export const DEAD_SHIM_STATUS = 137;

export type TaskStatus = 'created' | 'running' | 'stopped' | 'paused' | 'unknown';

export interface ExitInfo {
  status: number;
  exitedAt: Date;
}

/** A process of a task, as tasks.v1 Process describes it. */
export interface ProcessView {
  containerId: string;
  /** the exec id; "" for the init */
  id: string;
  pid: number;
  status: TaskStatus;
  io: ProcessIO;
  exit?: ExitInfo;
}

/** containerd.events payloads, by type name. */
export type TaskEvent =
  | { type: 'TaskCreate'; topic: '/tasks/create'; containerId: string; bundle: string; rootfs: StackMount[]; io: ProcessIO; pid: number }
  | { type: 'TaskStart'; topic: '/tasks/start'; containerId: string; pid: number }
  | { type: 'TaskExit'; topic: '/tasks/exit'; containerId: string; id: string; pid: number; exitStatus: number; exitedAt: Date }
  | { type: 'TaskDelete'; topic: '/tasks/delete'; containerId: string; id: string; pid: number; exitStatus: number; exitedAt: Date }
  | { type: 'TaskExecAdded'; topic: '/tasks/exec-added'; containerId: string; execId: string }
  | { type: 'TaskExecStarted'; topic: '/tasks/exec-started'; containerId: string; execId: string; pid: number }
  | { type: 'TaskPaused'; topic: '/tasks/paused'; containerId: string }
  | { type: 'TaskResumed'; topic: '/tasks/resumed'; containerId: string }
  | { type: 'TaskOOM'; topic: '/tasks/oom'; containerId: string };

export interface TaskManagerOptions {
  /** tsrund's --state (default /run/tsrund) */
  stateDir: string;
  publish(namespace: string, event: TaskEvent): void;
  log: Logger;
}

export interface CreateTaskOptions {
  namespace: string;
  id: string;
  spec: Spec;
  rootfs: StackMount[];
  io: ProcessIO;
  noPivot?: boolean;
  noNewKeyring?: boolean;
}

interface ExecRecord {
  io: ProcessIO;
  spec: Process;
  /** 0 until started */
  pid: number;
}

/** What task.json keeps: enough for a restarted daemon. */
interface TaskRecord {
  namespace: string;
  id: string;
  pid: number;
  io: ProcessIO;
  rootfs: StackMount[];
  created: string;
  execs: Record<string, ExecRecord>;
}

type Waiter = (e: ExitInfo) => void;

interface Task {
  rec: TaskRecord;
  dir: string;
  shim: Shim;
  exits: Map<string, ExitInfo>;
  waiters: Map<string, Waiter[]>;
  /** we are deleting it: the shim's going away is expected */
  closing: boolean;
  /** OOM kills already reported, and the runtime record they are read through */
  ooms?: { seen: bigint; runtime: ContainerRecord; stopWatch: () => void };
}

const key = (ns: string, id: string) => `${ns}/${id}`;

/** Any failure as an errdefs class: bad config is invalid, a refused state change a failed precondition. */
function statusOf(e: unknown): ErrdefsError {
  if (e instanceof ErrdefsError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof ConfigError) return new ErrdefsError('invalid argument', msg, { cause: e });
  if (e instanceof RuntimeError) return new ErrdefsError('failed precondition', msg, { cause: e });
  return new ErrdefsError('unknown', msg, { cause: e });
}

export class TaskManager {
  private tasks = new Map<string, Task>();
  /** events restore() found (/tasks/exit first of each), until releaseRestored() */
  private held: Array<{ namespace: string; publish: () => void }> = [];
  /** inside restore(): what is found now happened while no daemon ran */
  private restoring = false;
  constructor(private readonly o: TaskManagerOptions) {}

  private runtimeRoot(ns: string): string {
    return join(this.o.stateDir, 'runtime', ns);
  }

  private taskDir(ns: string, id: string): string {
    return join(this.o.stateDir, 'tasks', ns, id);
  }

  private get(ns: string, id: string): Task {
    const t = this.tasks.get(key(ns, id));
    if (!t) throw notFound(`no running task found: task ${id} not found`);
    return t;
  }

  private save(t: Task): void {
    writeFileAtomic(join(t.dir, TASK_FILE), JSON.stringify(t.rec), 0o600);
  }

  private runtimeRecord(t: Task): ContainerRecord | undefined {
    return readRecord(this.runtimeRoot(t.rec.namespace), t.rec.id);
  }

  has(ns: string, id: string): boolean {
    return this.tasks.has(key(ns, id));
  }

  /** tasks.v1 Create: bundle, rootfs, shim, I/O, then the init blocked on its exec fifo. */
  create(c: CreateTaskOptions): ProcessView {
    if (this.tasks.has(key(c.namespace, c.id))) throw alreadyExists(`task ${c.id}: already exists`);
    const dir = this.taskDir(c.namespace, c.id);
    mkdirSync(join(this.o.stateDir, 'tasks', c.namespace), { recursive: true, mode: 0o711 });
    try {
      mkdirSync(dir, { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(`task ${c.id}: already exists (its directory ${dir} is still there)`);
      throw e;
    }
    const undo: (() => void)[] = [() => rmSync(dir, { recursive: true, force: true })];
    const runUndo = () => {
      for (const step of undo.reverse()) {
        try {
          step();
        } catch (e) {
          this.o.log.warn(`cleanup after a failed task create ${c.namespace}/${c.id}: ${(e as Error).message}`);
        }
      }
    };
    try {
      const spec: Spec = structuredClone(c.spec);
      if (spec.process) spec.process.terminal = c.io.terminal;
      if (c.rootfs.length) {
        if (!spec.root) spec.root = { path: 'rootfs' };
        const rootfsDir = join(dir, spec.root.path.startsWith('/') ? 'rootfs' : spec.root.path);
        mountStack(c.rootfs, rootfsDir);
        undo.push(() => unmountStack(rootfsDir));
      }
      writeFileSync(join(dir, 'config.json'), JSON.stringify(spec), { mode: 0o600 });

      const shim = Shim.start({ dir, namespace: c.namespace, id: c.id });
      undo.push(() => {
        shim.shutdown(true);
      });
      const io = openIO(c.io, shim, LOGGER, { namespace: c.namespace, id: c.id });
      let created;
      try {
        created = createContainer({
          root: this.runtimeRoot(c.namespace),
          id: c.id,
          bundle: dir,
          ...(io.stdio ? { stdio: io.stdio } : {}),
          ...(io.consoleFd !== undefined ? { consoleFd: io.consoleFd } : {}),
          spawner: shim.spawner(INIT, io.roles),
          noPivot: c.noPivot ?? false,
          noNewKeyring: c.noNewKeyring ?? false,
          log: this.o.log,
        });
      } finally {
        io.close();
      }
      // Only the init's exit outlives a dead shim: the task's exit status.
      shim.watch(INIT, created.pid, join(dir, EXIT_FILE));
      const rec: TaskRecord = { namespace: c.namespace, id: c.id, pid: created.pid, io: c.io, rootfs: c.rootfs, created: new Date().toISOString(), execs: {} };
      const t: Task = { rec, dir, shim, exits: new Map(), waiters: new Map(), closing: false };
      this.save(t);
      this.tasks.set(key(c.namespace, c.id), t);
      this.attach(t);
      this.o.publish(c.namespace, { type: 'TaskCreate', topic: '/tasks/create', containerId: c.id, bundle: dir, rootfs: c.rootfs, io: c.io, pid: created.pid });
      return this.view(t, '');
    } catch (e) {
      runUndo();
      throw statusOf(e);
    }
  }

  /** Exits from the shim, and its death. */
  private attach(t: Task): void {
    const runtime = this.runtimeRecord(t);
    if (runtime) t.ooms = { seen: oomKills(runtime), runtime, stopWatch: watchMemoryEvents(runtime, () => this.checkOom(t)) };
    t.shim.subscribe(
      (p) => this.onExit(t, p),
      () => this.onShimGone(t),
    );
  }

  /** Publishes /tasks/oom when the cgroup counts another OOM kill. */
  private checkOom(t: Task): void {
    if (!t.ooms || t.closing) return;
    const n = oomKills(t.ooms.runtime);
    if (n <= t.ooms.seen) return;
    t.ooms.seen = n;
    this.o.publish(t.rec.namespace, { type: 'TaskOOM', topic: '/tasks/oom', containerId: t.rec.id });
  }

  private onExit(t: Task, p: ShimProcess): void {
    if (t.exits.has(p.name)) return; // seen already (reconnect: pushed and listed)
    this.checkOom(t); // before the exit, as containerd: the kill is why it exited
    const exit: ExitInfo = { status: exitCode(p.status), exitedAt: new Date(Number(p.exitedNs / 1_000_000n)) };
    t.exits.set(p.name, exit);
    const { namespace, id } = t.rec;
    let execId: string | undefined;
    if (p.name === INIT) execId = '';
    else if (p.name.startsWith('exec/')) execId = p.name.slice(5);
    if (!p.acked) {
      const publish = () => {
        if (execId !== undefined) {
          this.o.publish(namespace, { type: 'TaskExit', topic: '/tasks/exit', containerId: id, id: execId === '' ? id : execId, pid: p.pid, exitStatus: exit.status, exitedAt: exit.exitedAt });
        }
        // Acknowledged once published: a daemon that dies before then reports it again.
        try {
          if (this.tasks.get(key(namespace, id)) === t) t.shim.ack(p.name);
        } catch (e) {
          this.o.log.warn(`task ${namespace}/${id}: ${(e as Error).message}`);
        }
      };
      if (this.restoring) this.held.push({ namespace, publish });
      else publish();
    }
    for (const w of t.waiters.get(p.name) ?? []) w(exit);
    t.waiters.delete(p.name);
  }

  /** restore() found events that releaseRestored() has not published yet */
  get holdsRestoredEvents(): boolean {
    return this.held.length > 0;
  }

  /**
   * Publishes what restore() found (exits while the daemon was down, tasks
   * whose shim died). Called once clients have subscribed again, as
   * containerd's shims retry their publishing until containerd is back.
   */
  releaseRestored(): void {
    for (const { publish } of this.held.splice(0)) publish();
  }

  /** The namespaces of the events restore() holds (each of them starts with a /tasks/exit). */
  get heldNamespaces(): string[] {
    return [...new Set(this.held.map((h) => h.namespace))];
  }

  /** The shim died (kill -9): as containerd, the container is killed and the task reported gone. */
  private onShimGone(t: Task): void {
    if (t.closing) return;
    const { namespace, id } = t.rec;
    this.o.log.warn(`task ${namespace}/${id}: its shim died; killing the container and deleting the task`);
    t.shim.reap(2000);
    const initExit = t.exits.get(INIT) ?? { status: DEAD_SHIM_STATUS, exitedAt: new Date() };
    // Its processes became ours (tsrund is a subreaper): kill and collect
    // them before the cgroup is removed.
    const orphans = [t.rec.pid, ...Object.entries(t.rec.execs).filter(([execId, e]) => e.pid > 0 && !t.exits.has(execName(execId))).map(([, e]) => e.pid)];
    for (const pid of orphans) killAndReap(pid);
    try {
      this.teardown(t);
    } catch (e) {
      this.o.log.warn(`task ${namespace}/${id}: ${(e as Error).message}`);
    }
    if (!t.exits.has(INIT)) {
      this.o.publish(namespace, { type: 'TaskExit', topic: '/tasks/exit', containerId: id, id, pid: t.rec.pid, exitStatus: initExit.status, exitedAt: initExit.exitedAt });
    }
    this.o.publish(namespace, { type: 'TaskDelete', topic: '/tasks/delete', containerId: id, id: '', pid: t.rec.pid, exitStatus: initExit.status, exitedAt: initExit.exitedAt });
    for (const [name, ws] of t.waiters) for (const w of ws) w(t.exits.get(name) ?? initExit);
    t.waiters.clear();
  }

  /** Container, shim, rootfs and directory gone; the task forgotten. */
  private teardown(t: Task): void {
    t.closing = true;
    t.ooms?.stopWatch();
    const { namespace, id } = t.rec;
    const rec = this.runtimeRecord(t);
    try {
      if (rec) destroyContainer(this.runtimeRoot(namespace), rec, this.o.log);
    } finally {
      try {
        t.shim.shutdown(true);
      } catch (e) {
        // A dead shim cannot answer; a live one that refuses is a bug worth a line.
        if (!(e instanceof Error && /closed|ECONNREFUSED|EPIPE|did not answer|is closed/.test(e.message))) this.o.log.warn(`task ${namespace}/${id}: ${(e as Error).message}`);
        t.shim.close();
        t.shim.reap(1000);
      }
      unmountStack(join(t.dir, 'rootfs'));
      rmSync(t.dir, { recursive: true, force: true });
      this.tasks.delete(key(namespace, id));
    }
  }

  start(ns: string, id: string, execId = ''): number {
    const t = this.get(ns, id);
    if (execId === '') {
      const rec = this.runtimeRecord(t);
      if (!rec || t.exits.has(INIT)) throw failedPrecondition(`task ${id}: cannot start a task that has stopped`);
      const status = containerStatus(this.runtimeRoot(ns), rec);
      if (status !== 'created') throw failedPrecondition(`task ${id}: cannot start a task that is ${status}`);
      try {
        startCreated(this.runtimeRoot(ns), rec, this.o.log);
      } catch (e) {
        throw statusOf(e);
      }
      this.o.publish(ns, { type: 'TaskStart', topic: '/tasks/start', containerId: id, pid: rec.pid });
      return rec.pid;
    }
    const ex = t.rec.execs[execId];
    if (!ex) throw notFound(`process ${execId} does not exist in task ${id}`);
    if (ex.pid > 0) throw failedPrecondition(`process ${execId} of task ${id} has already been started`);
    const name = execName(execId);
    const io = openIO(ex.io, t.shim, `${LOGGER}/${execId}`, { namespace: ns, id });
    let pid: number;
    try {
      const execed = execInContainer({
        root: this.runtimeRoot(ns),
        id,
        process: ex.spec,
        ...(io.stdio ? { stdio: io.stdio } : {}),
        ...(io.consoleFd !== undefined ? { consoleFd: io.consoleFd } : {}),
        spawner: t.shim.spawner(name, io.roles),
        log: this.o.log,
      });
      pid = execed.pid;
      t.shim.watch(name, pid);
    } catch (e) {
      try {
        t.shim.forget(name, true);
      } catch {
        /* never spawned */
      }
      throw statusOf(e);
    } finally {
      io.close();
    }
    ex.pid = pid;
    this.save(t);
    this.o.publish(ns, { type: 'TaskExecStarted', topic: '/tasks/exec-started', containerId: id, execId, pid });
    return pid;
  }

  /** tasks.v1 Exec: records the process; Start runs it. */
  exec(ns: string, id: string, execId: string, spec: Process, io: ProcessIO): void {
    const t = this.get(ns, id);
    if (t.rec.execs[execId]) throw alreadyExists(`id ${execId}: already exists`);
    if (t.exits.has(INIT)) throw failedPrecondition(`task ${id} has stopped: cannot exec in it`);
    const proc: Process = structuredClone(spec);
    proc.terminal = io.terminal;
    t.rec.execs[execId] = { io, spec: proc, pid: 0 };
    this.save(t);
    this.o.publish(ns, { type: 'TaskExecAdded', topic: '/tasks/exec-added', containerId: id, execId });
  }

  private status(t: Task, execId: string): TaskStatus {
    if (execId !== '') {
      const ex = t.rec.execs[execId];
      if (t.exits.has(execName(execId))) return 'stopped';
      return ex && ex.pid > 0 ? 'running' : 'created';
    }
    if (t.exits.has(INIT)) return 'stopped';
    const rec = this.runtimeRecord(t);
    if (!rec) return 'stopped';
    const s = containerStatus(this.runtimeRoot(t.rec.namespace), rec);
    return s === 'creating' ? 'created' : s;
  }

  private view(t: Task, execId: string): ProcessView {
    const { id } = t.rec;
    const ex = execId === '' ? undefined : t.rec.execs[execId];
    if (execId !== '' && !ex) throw notFound(`process ${execId} does not exist in task ${id}`);
    const exit = t.exits.get(execId === '' ? INIT : execName(execId));
    return {
      containerId: id,
      id: execId,
      pid: ex ? ex.pid : t.rec.pid,
      status: this.status(t, execId),
      io: ex ? ex.io : t.rec.io,
      ...(exit ? { exit } : {}),
    };
  }

  getProcess(ns: string, id: string, execId = ''): ProcessView {
    return this.view(this.get(ns, id), execId);
  }

  list(ns: string): ProcessView[] {
    return [...this.tasks.values()].filter((t) => t.rec.namespace === ns).map((t) => this.view(t, ''));
  }

  kill(ns: string, id: string, execId: string, signal: number, all: boolean): void {
    const t = this.get(ns, id);
    const name = execId === '' ? INIT : execName(execId);
    if (execId !== '') {
      const ex = t.rec.execs[execId];
      if (!ex) throw notFound(`process ${execId} does not exist in task ${id}`);
      if (ex.pid === 0) throw failedPrecondition(`process ${execId} of task ${id} has not been started`);
    }
    if (t.exits.has(name)) throw notFound(`process already finished`);
    try {
      if (execId === '' && all) killContainer(this.runtimeRoot(ns), id, signal, true);
      else t.shim.kill(name, signal);
    } catch (e) {
      if (e instanceof ShimError && e.code === 'ESRCH') throw notFound('process already finished');
      throw statusOf(e);
    }
  }

  /** Resolves with the exit (at once if it has happened); rejects when `signal` aborts (the client went away). */
  wait(ns: string, id: string, execId = '', signal?: AbortSignal): Promise<ExitInfo> {
    const t = this.get(ns, id);
    if (execId !== '' && !t.rec.execs[execId]) throw notFound(`process ${execId} does not exist in task ${id}`);
    const name = execId === '' ? INIT : execName(execId);
    const done = t.exits.get(name);
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const list = t.waiters.get(name) ?? [];
      const onAbort = () => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        reject(new ErrdefsError('canceled', `wait for ${execId || id}`));
      };
      const waiter: Waiter = (e) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(e);
      };
      list.push(waiter);
      t.waiters.set(name, list);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  waiterCount(): number {
    let n = 0;
    for (const t of this.tasks.values()) for (const ws of t.waiters.values()) n += ws.length;
    return n;
  }

  delete(ns: string, id: string): { pid: number; exit: ExitInfo } {
    const t = this.get(ns, id);
    const status = this.status(t, '');
    if (status === 'running' || status === 'paused') throw failedPrecondition(`task ${id} must be stopped before deletion: ${status}`);
    const exit = t.exits.get(INIT) ?? { status: DEAD_SHIM_STATUS, exitedAt: new Date() };
    try {
      this.teardown(t);
    } catch (e) {
      throw statusOf(e);
    }
    this.o.publish(ns, { type: 'TaskDelete', topic: '/tasks/delete', containerId: id, id: '', pid: t.rec.pid, exitStatus: exit.status, exitedAt: exit.exitedAt });
    return { pid: t.rec.pid, exit };
  }

  deleteProcess(ns: string, id: string, execId: string): { pid: number; exit: ExitInfo } {
    const t = this.get(ns, id);
    const ex = t.rec.execs[execId];
    if (!ex) throw notFound(`process ${execId} does not exist in task ${id}`);
    const name = execName(execId);
    const exit = t.exits.get(name);
    if (ex.pid > 0 && !exit) throw failedPrecondition(`process ${execId} of task ${id} must be stopped before deletion: running`);
    if (ex.pid > 0) {
      try {
        t.shim.forget(name);
      } catch (e) {
        if (!(e instanceof ShimError && e.code === 'ENOENT')) throw statusOf(e);
      }
    }
    delete t.rec.execs[execId];
    t.exits.delete(name);
    this.save(t);
    return { pid: ex.pid, exit: exit ?? { status: 0, exitedAt: new Date(0) } };
  }

  resize(ns: string, id: string, execId: string, rows: number, cols: number): void {
    const t = this.get(ns, id);
    try {
      t.shim.resize(execId === '' ? INIT : execName(execId), rows, cols);
    } catch (e) {
      if (e instanceof ShimError && e.code === 'ENOTTY') throw failedPrecondition(`process ${execId || id} has no terminal`);
      if (e instanceof ShimError && e.code === 'ENOENT') throw notFound(`process ${execId} does not exist in task ${id}`);
      throw statusOf(e);
    }
  }

  closeStdin(ns: string, id: string, execId: string): void {
    const t = this.get(ns, id);
    try {
      t.shim.closeStdin(execId === '' ? INIT : execName(execId));
    } catch (e) {
      if (e instanceof ShimError && e.code === 'ENOENT') throw notFound(`process ${execId} does not exist in task ${id}`);
      throw statusOf(e);
    }
  }

  pause(ns: string, id: string): void {
    this.get(ns, id);
    try {
      pauseContainer(this.runtimeRoot(ns), id);
    } catch (e) {
      throw statusOf(e);
    }
    this.o.publish(ns, { type: 'TaskPaused', topic: '/tasks/paused', containerId: id });
  }

  resume(ns: string, id: string): void {
    this.get(ns, id);
    try {
      resumeContainer(this.runtimeRoot(ns), id);
    } catch (e) {
      throw statusOf(e);
    }
    this.o.publish(ns, { type: 'TaskResumed', topic: '/tasks/resumed', containerId: id });
  }

  /** Host pids of the task's processes, each with its exec id when it is an exec's. */
  pids(ns: string, id: string): { pid: number; execId?: string }[] {
    const t = this.get(ns, id);
    let pids: number[];
    try {
      pids = containerPids(this.runtimeRoot(ns), id);
    } catch (e) {
      throw statusOf(e);
    }
    const byPid = new Map(Object.entries(t.rec.execs).map(([execId, e]) => [e.pid, execId]));
    return pids.map((pid) => (byPid.has(pid) ? { pid, execId: byPid.get(pid)! } : { pid }));
  }

  /** linux.resources-shaped JSON, as runc update takes it. */
  update(ns: string, id: string, resources: unknown): void {
    this.get(ns, id);
    try {
      updateContainer(this.runtimeRoot(ns), id, resources, { file: 'resources' });
    } catch (e) {
      throw statusOf(e);
    }
  }

  /** The task's cgroup v2 directory, if it has one. */
  cgroupDir(ns: string, id: string): string | undefined {
    return this.runtimeRecord(this.get(ns, id))?.cgroupDir;
  }

  /** Its directories in the cgroup v1 hierarchies (hybrid hosts), where memory and pids are limited. */
  cgroupV1(ns: string, id: string): V1Cgroup[] {
    return this.runtimeRecord(this.get(ns, id))?.cgroupV1 ?? [];
  }

  stats(ns: string, id: string): Stats {
    this.get(ns, id);
    try {
      return containerStats(this.runtimeRoot(ns), id);
    } catch (e) {
      throw statusOf(e);
    }
  }

  /**
   * At daemon start: every task directory left by an earlier daemon. A live
   * shim is reconnected and its unreported exits published; a dead one's
   * container is cleaned up as containerd does (TaskExit, TaskDelete).
   */
  restore(): void {
    this.restoring = true;
    try {
      this.restoreTasks();
    } finally {
      this.restoring = false;
    }
  }

  private restoreTasks(): void {
    const base = join(this.o.stateDir, 'tasks');
    if (!existsSync(base)) return;
    for (const ns of readdirSync(base)) {
      for (const id of readdirSync(join(base, ns))) {
        const dir = join(base, ns, id);
        let rec: TaskRecord;
        try {
          rec = JSON.parse(readFileSync(join(dir, TASK_FILE), 'utf8')) as TaskRecord;
        } catch {
          // A create that never finished: nothing ran from it for long.
          this.o.log.warn(`removing the incomplete task directory ${dir}`);
          this.cleanDead(ns, id, dir, undefined);
          continue;
        }
        let shim: Shim;
        try {
          shim = Shim.connect(dir);
        } catch {
          this.o.log.warn(`task ${ns}/${id}: its shim is gone; cleaning up`);
          this.cleanDead(ns, id, dir, rec);
          continue;
        }
        const t: Task = { rec, dir, shim, exits: new Map(), waiters: new Map(), closing: false };
        this.tasks.set(key(ns, id), t);
        try {
          this.attach(t);
          for (const p of shim.state()) if (p.exited) this.onExit(t, p);
        } catch (e) {
          this.o.log.warn(`task ${ns}/${id}: reconnecting to its shim: ${(e as Error).message}`);
        }
      }
    }
  }

  private cleanDead(ns: string, id: string, dir: string, rec: TaskRecord | undefined): void {
    const root = this.runtimeRoot(ns);
    const runtimeRec = readRecord(root, id);
    try {
      if (runtimeRec) destroyContainer(root, runtimeRec, this.o.log);
    } catch (e) {
      this.o.log.warn(`task ${ns}/${id}: ${(e as Error).message}`);
    }
    unmountStack(join(dir, 'rootfs'));
    let exit: ExitInfo = { status: DEAD_SHIM_STATUS, exitedAt: new Date() };
    try {
      const r = parseExitRecord(readFileSync(join(dir, EXIT_FILE), 'utf8'));
      exit = { status: exitCode(r.status), exitedAt: new Date(Number(r.exitedNs / 1_000_000n)) };
    } catch (e) {
      // ENOENT: the shim died before the init did.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.o.log.warn(`task ${ns}/${id}: its exit record: ${(e as Error).message}`);
    }
    rmSync(dir, { recursive: true, force: true });
    if (rec) {
      const publish = () => {
        this.o.publish(ns, { type: 'TaskExit', topic: '/tasks/exit', containerId: id, id, pid: rec.pid, exitStatus: exit.status, exitedAt: exit.exitedAt });
        this.o.publish(ns, { type: 'TaskDelete', topic: '/tasks/delete', containerId: id, id: '', pid: rec.pid, exitStatus: exit.status, exitedAt: exit.exitedAt });
      };
      if (this.restoring) this.held.push({ namespace: ns, publish });
      else publish();
    }
  }

  /** Closes our side of every shim (daemon shutdown): the containers run on. */
  detachAll(): void {
    for (const t of this.tasks.values()) {
      t.closing = true;
      t.ooms?.stopWatch();
      t.shim.close();
    }
    this.tasks.clear();
  }
}

/** A process that became our child when its shim died: kill it and collect it (bounded). */
function killAndReap(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // gone
  }
  for (let i = 0; i < 200; i++) {
    try {
      if (waitpidNoHang(pid)) return;
    } catch {
      return; // not our child (no subreaper above it): init collects it
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}
