// The container operations that act on its cgroup: pause, resume, update,
// stats and the events stream (stats every interval, OOM kills as they
// happen). No CLI code here; tsrund's Tasks service uses the same calls.
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../linux/proc.js';
import { RuntimeError } from '../errors.js';
import { containerStatus, loadRecord, lockContainer, stateDir, writeRecord, type ContainerRecord } from '../state.js';
import { cgroupEvent, setFrozen } from './freezer.js';
import { applyResources, planResources } from './resources.js';
import { mergeUpdate } from './update.js';
import { applyV1Resources, withoutV1 } from './v1.js';
import { oomKillCount, readStats, type Stats } from './stats.js';

function cgroupOf(rec: ContainerRecord, what: string): string {
  if (!rec.cgroupDir) throw new RuntimeError(`cannot ${what} container ${rec.id}: it has no cgroup (this host has no cgroup2 mount)`);
  return rec.cgroupDir;
}

/** Freezes every process of a running or created container (status `paused`). */
export function pauseContainer(root: string, id: string): void {
  const rec = loadRecord(root, id);
  const unlock = lockContainer(root, id);
  try {
    const status = containerStatus(root, rec);
    if (status !== 'running' && status !== 'created') throw new RuntimeError(`container ${id} is ${status}: only a running or created container can be paused`);
    setFrozen(cgroupOf(rec, 'pause'), true);
  } finally {
    unlock();
  }
}

export function resumeContainer(root: string, id: string): void {
  const rec = loadRecord(root, id);
  const unlock = lockContainer(root, id);
  try {
    const status = containerStatus(root, rec);
    if (status !== 'paused') throw new RuntimeError(`container ${id} is not paused (it is ${status})`);
    setFrozen(cgroupOf(rec, 'resume'), false);
  } finally {
    unlock();
  }
}

export interface UpdateOptions {
  /** names the request's source in errors ("resources.json", "stdin", "update") */
  file?: string;
  log?: (msg: string) => void;
}

/**
 * Applies a linux.resources-shaped request (runc update's JSON) to a running
 * container and records the result in its state. Device rules are left as
 * they are, as runc leaves them.
 */
export function updateContainer(root: string, id: string, request: unknown, o: UpdateOptions = {}): void {
  const rec = loadRecord(root, id);
  const unlock = lockContainer(root, id);
  try {
    const status = containerStatus(root, rec);
    if (status === 'stopped') throw new RuntimeError(`container ${id} is not running`);
    const file = o.file ?? 'update';
    planResources(request, { file, base: '' }); // the request itself first: its errors name its own fields
    const { write, store } = mergeUpdate(rec.config.linux?.resources, request);
    const plan = planResources(write, { file, base: '' });
    // hybrid hosts: the v1 controllers' part goes to the v1 directories made at create
    const v1 = rec.cgroupV1 ?? [];
    applyResources(cgroupOf(rec, 'update'), withoutV1(plan, v1.flatMap((c) => c.controllers)), { file, ...(o.log ? { log: o.log } : {}) });
    applyV1Resources(v1, write, '', file);
    rec.config.linux = { ...(rec.config.linux ?? {}), resources: store };
    writeRecord(stateDir(root, id), rec);
  } finally {
    unlock();
  }
}

/** The container's statistics (`events --stats`), as runc reports them. */
export function containerStats(root: string, id: string): Stats {
  const rec = loadRecord(root, id);
  if (containerStatus(root, rec) === 'stopped') throw new RuntimeError(`container with id ${id} is not running`);
  return readStats(cgroupOf(rec, 'read the stats of'));
}

export type ContainerEvent = { type: 'stats'; id: string; data: Stats } | { type: 'oom'; id: string };

export interface EventsOptions {
  /** stats every this many ms */
  intervalMs: number;
  onEvent: (e: ContainerEvent) => void;
  onError?: (e: Error) => void;
  /** stop early */
  signal?: AbortSignal;
}

/**
 * runc's `events`: a stats event every interval and an oom event whenever
 * memory.events counts another OOM kill; resolves when the container has no
 * process left.
 */
export async function watchEvents(root: string, id: string, o: EventsOptions): Promise<void> {
  const rec = loadRecord(root, id);
  if (containerStatus(root, rec) === 'stopped') throw new RuntimeError(`container with id ${id} is not running`);
  const dir = cgroupOf(rec, 'watch the events of');
  let ooms = oomKillCount(dir) ?? 0n;
  // Done when no process is left (children may outlive an init without a pid namespace), as runc.
  const gone = () => {
    if (!existsSync(dir)) return true;
    const populated = cgroupEvent(dir, 'populated');
    return populated === undefined ? !processAlive(rec.pid, rec.pidStartTime) : populated === '0';
  };

  await new Promise<void>((resolve) => {
    const watchers: FSWatcher[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(statsTimer);
      clearInterval(pollTimer);
      for (const w of watchers) w.close();
      resolve();
    };
    const check = () => {
      if (done) return;
      try {
        const n = oomKillCount(dir);
        if (n !== undefined && n > ooms) {
          ooms = n;
          o.onEvent({ type: 'oom', id });
        }
      } catch (e) {
        o.onError?.(e as Error);
      }
      if (gone()) finish();
    };
    const statsTimer = setInterval(() => {
      try {
        o.onEvent({ type: 'stats', id, data: readStats(dir) });
      } catch (e) {
        if (gone()) finish();
        else o.onError?.(e as Error);
      }
    }, o.intervalMs);
    // inotify on the event files (the kernel notifies on change), and a slow poll behind it
    for (const f of ['memory.events', 'cgroup.events']) {
      try {
        const w = watch(join(dir, f), { persistent: true }, check);
        w.on('error', () => w.close());
        watchers.push(w);
      } catch {
        /* no such file (no memory controller): the poll covers it */
      }
    }
    const pollTimer = setInterval(check, 1000);
    o.signal?.addEventListener('abort', finish, { once: true });
    check();
  });
}
