// tsrctl tasks ls | start | kill | wait | ps | pause | resume | rm (exec is
// in exec.ts), with ctr's semantics: a task is the running side of a
// container; `start` makes one for a container and runs it attached.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Containers } from '../../gen/containerd/services/containers/v1/containers_pb.js';
import { Tasks, type DeleteResponse } from '../../gen/containerd/services/tasks/v1/tasks_pb.js';
import { Status, type Process } from '../../gen/containerd/types/task/task_pb.js';
import { ProcessDetailsSchema } from '../../gen/containerd/runc/options/oci_pb.js';
import type { Connection } from '../../client/index.js';
import { statusName } from '../../client/index.js';
import { parseSignal } from '../../linux/signals.js';
import { unpackAny, unpackJson, SPEC_TYPE_URL } from '../../typeurl.js';
import type { Spec } from '../../oci/spec.js';
import { out, err } from '../output.js';
import { runProcess } from './attach.js';
import { table, withConn } from './common.js';
import { messageOf, type Globals } from './main.js';

type Format = { format: 'table' | 'json'; quiet?: boolean };

/** "running", as ctr prints it in capitals in tables. */
export const statusText = (s: Status): string => (Status[s] ?? 'UNKNOWN').toLowerCase();

/** `kill -s` as ctr and kill(1) take it: TERM, SIGTERM, sigterm, 15. */
export function signalNumber(text: string): number {
  const n = parseSignal(text);
  if (n === undefined) throw new Error(`unknown signal ${JSON.stringify(text)} (a name such as TERM, SIGKILL, or a number from 1 to 64)`);
  return n;
}

function taskJson(p: Process): Record<string, unknown> {
  return {
    id: p.containerId,
    pid: p.pid,
    status: statusText(p.status),
    exit_status: p.exitStatus,
    exited_at: p.exitedAt && p.status === Status.STOPPED ? timestampDate(p.exitedAt).toISOString() : null,
  };
}

export async function list(g: Globals, o: Format): Promise<void> {
  const { tasks } = await withConn(g, (conn) => conn.service(Tasks).list({}));
  if (o.quiet) return out(tasks.map((t) => `${t.containerId}\n`).join(''));
  if (o.format === 'json') return out(`${JSON.stringify(tasks.map(taskJson), null, 2)}\n`);
  out(table([['TASK', 'PID', 'STATUS'], ...tasks.map((t) => [t.containerId, String(t.pid), Status[t.status] ?? 'UNKNOWN'])]));
}

/**
 * Kills (SIGKILL, every process) a task that is not stopped, waits for its
 * exit, and deletes it. A paused task is resumed after the kill so that its
 * processes can die (a v1 freezer holds even SIGKILL).
 */
export async function deleteTask(conn: Connection, id: string, force: boolean): Promise<DeleteResponse> {
  const tasks = conn.service(Tasks);
  if (force) {
    const { process } = await tasks.get({ containerId: id });
    if (process && process.status !== Status.STOPPED) {
      await tasks.kill({ containerId: id, signal: 9, all: true }).catch((e: unknown) => {
        if (statusName(e) !== 'NOT_FOUND') throw e;
      });
      if (process.status === Status.PAUSED) await tasks.resume({ containerId: id }).catch(() => {});
      await tasks.wait({ containerId: id }, { deadline: 10_000 });
    }
  }
  try {
    return await tasks.delete({ containerId: id });
  } catch (e) {
    if (statusName(e) === 'FAILED_PRECONDITION' && !force) {
      throw Object.assign(new Error(`${messageOf(e)} (tsrctl tasks rm -f ${id} kills it first)`), { cause: e });
    }
    throw e;
  }
}

export async function remove(g: Globals, ids: string[], o: { force?: boolean; execId?: string }): Promise<number> {
  let failed = 0;
  await withConn(g, async (conn) => {
    for (const id of ids) {
      try {
        if (o.execId) {
          if (o.force) {
            await conn
              .service(Tasks)
              .kill({ containerId: id, execId: o.execId, signal: 9 })
              .catch(() => {});
            await conn.service(Tasks).wait({ containerId: id, execId: o.execId }, { deadline: 10_000 });
          }
          await conn.service(Tasks).deleteProcess({ containerId: id, execId: o.execId });
        } else {
          await deleteTask(conn, id, Boolean(o.force));
        }
      } catch (e) {
        failed++;
        err(`tsrctl: ${messageOf(e)}\n`);
      }
    }
  });
  return failed ? 1 : 0;
}

/**
 * A created task is started; a container without a task gets one with our
 * stdio (its spec says whether it has a terminal), runs attached unless -d,
 * and is deleted after its exit. Exits with its status.
 */
export async function start(g: Globals, id: string, o: { detach?: boolean; interactive?: boolean }): Promise<number> {
  return withConn(g, async (conn) => {
    const tasks = conn.service(Tasks);
    let existing: Process | undefined;
    try {
      existing = (await tasks.get({ containerId: id })).process;
    } catch (e) {
      if (statusName(e) !== 'NOT_FOUND') throw e;
    }
    if (existing) {
      if (existing.status !== Status.CREATED) {
        const hint = existing.status === Status.STOPPED ? `: remove it first (tsrctl tasks rm ${id})` : '';
        throw new Error(`task ${id} is ${statusText(existing.status)}, not created${hint}`);
      }
      await tasks.start({ containerId: id });
      return 0;
    }
    const { container } = await conn.service(Containers).get({ id });
    if (container?.snapshotKey) throw new Error(`container ${id} has a snapshot for its rootfs (${container.snapshotKey}): not supported yet by tasks start`);
    const spec = unpackJson(container?.spec, SPEC_TYPE_URL, `container ${id}: spec`) as Spec;
    const ref = { containerId: id, execId: '' };
    let code: number;
    try {
      code = await runProcess(conn, ref, { tty: Boolean(spec.process?.terminal), interactive: o.interactive, detach: o.detach }, async (io) => {
        await tasks.create({ containerId: id, ...io });
      });
    } catch (e) {
      await deleteTask(conn, id, true).catch(() => {});
      throw e;
    }
    if (!o.detach) await deleteTask(conn, id, false);
    return code;
  });
}

export async function kill(g: Globals, id: string, o: { signal: string; all?: boolean; execId?: string }): Promise<void> {
  const signal = signalNumber(o.signal);
  if (o.all && o.execId) throw new Error('kill: --all and --exec-id cannot be used together (--all signals every process of the task)');
  await withConn(g, (conn) => conn.service(Tasks).kill({ containerId: id, execId: o.execId ?? '', signal, all: Boolean(o.all) }));
}

export async function wait(g: Globals, id: string, o: { execId?: string; format: 'table' | 'json' }): Promise<number> {
  const r = await withConn(g, (conn) => conn.service(Tasks).wait({ containerId: id, execId: o.execId ?? '' }));
  if (o.format === 'json') out(`${JSON.stringify({ exit_status: r.exitStatus, exited_at: r.exitedAt ? timestampDate(r.exitedAt).toISOString() : null })}\n`);
  else out(`${r.exitStatus}\n`);
  return r.exitStatus;
}

export async function ps(g: Globals, id: string, o: Format): Promise<void> {
  const { processes } = await withConn(g, (conn) => conn.service(Tasks).listPids({ containerId: id }));
  const rows = processes.map((p) => ({ pid: p.pid, exec_id: (p.info && unpackAny(p.info, ProcessDetailsSchema)?.execId) || null }));
  if (o.quiet) return out(rows.map((r) => `${r.pid}\n`).join(''));
  if (o.format === 'json') return out(`${JSON.stringify(rows, null, 2)}\n`);
  out(table([['PID', 'EXEC ID'], ...rows.map((r) => [String(r.pid), r.exec_id ?? '-'])]));
}

export async function pause(g: Globals, id: string): Promise<void> {
  await withConn(g, (conn) => conn.service(Tasks).pause({ containerId: id }));
}

export async function resume(g: Globals, id: string): Promise<void> {
  await withConn(g, (conn) => conn.service(Tasks).resume({ containerId: id }));
}
