// tsrctl tasks exec: another process in a running task (Tasks.Exec, Start,
// Wait, DeleteProcess), its spec the container's process with the flags
// applied, attached unless -d. Exits with the process's status.
import { randomBytes } from 'node:crypto';
import { Containers } from '../../gen/containerd/services/containers/v1/containers_pb.js';
import { Tasks } from '../../gen/containerd/services/tasks/v1/tasks_pb.js';
import { Status } from '../../gen/containerd/types/task/task_pb.js';
import { statusName } from '../../client/index.js';
import { validateIdentifier } from '../../identifiers.js';
import type { Process, Spec } from '../../oci/spec.js';
import { packJson, unpackJson, PROCESS_TYPE_URL, SPEC_TYPE_URL } from '../../typeurl.js';
import { commandFailure, runProcess, type AttachFlags } from './attach.js';
import { withConn } from './common.js';
import { mergeEnv, parseEnv, resolveUser } from './process-spec.js';
import type { Globals } from './main.js';

export interface ExecFlags extends AttachFlags {
  execId?: string;
  cwd?: string;
  env: string[];
  user?: string;
}

/** The container's process with exec's flags applied (ctr: args, terminal, cwd; docker: env, user). */
export function execProcess(spec: Spec, args: string[], o: ExecFlags): Process {
  const base = spec.process;
  if (!base) throw new Error('the container spec has no process to start from');
  const proc: Process = structuredClone(base);
  proc.args = args;
  proc.terminal = Boolean(o.tty);
  if (o.cwd !== undefined) {
    if (!o.cwd.startsWith('/')) throw new Error(`--cwd ${JSON.stringify(o.cwd)}: must be an absolute path`);
    proc.cwd = o.cwd;
  }
  let env = proc.env ?? [];
  if (o.user !== undefined) {
    const root = spec.root?.path;
    const r = resolveUser(o.user, root?.startsWith('/') ? root : undefined);
    proc.user = r.user;
    if (r.home) env = mergeEnv(env, [`HOME=${r.home}`]);
  }
  if (o.tty) env = mergeEnv(env, ['TERM=xterm']);
  proc.env = mergeEnv(env, parseEnv(o.env));
  return proc;
}

export default async function exec(g: Globals, id: string, args: string[], o: ExecFlags): Promise<number> {
  const execId = o.execId ?? randomBytes(6).toString('hex');
  try {
    validateIdentifier(execId);
  } catch (e) {
    throw new Error(`--exec-id: ${(e as Error).message}`);
  }
  if (!args.length) throw new Error(`exec ${id}: no command given (tsrctl tasks exec [flags] ID COMMAND [ARG...])`);
  return withConn(g, async (conn) => {
    const tasks = conn.service(Tasks);
    await tasks.get({ containerId: id }); // an unknown task: its NotFound, before anything else
    const { container } = await conn.service(Containers).get({ id });
    const proc = execProcess(unpackJson(container?.spec, SPEC_TYPE_URL, `container ${id}: spec`) as Spec, args, o);
    const ref = { containerId: id, execId };
    let added = false;
    let code: number;
    try {
      code = await runProcess(conn, ref, o, async (io) => {
        try {
          await tasks.exec({ ...ref, ...io, spec: packJson(PROCESS_TYPE_URL, proc) });
        } catch (e) {
          if (statusName(e) === 'ALREADY_EXISTS') {
            throw new Error(`exec id ${JSON.stringify(execId)} is already in use in task ${id} (tsrctl tasks rm --exec-id ${execId} ${id} removes the old process)`);
          }
          throw e;
        }
        added = true;
      });
    } catch (e) {
      if (added) {
        const p = await tasks.get(ref).catch(() => undefined);
        if (p?.process?.status === Status.RUNNING) {
          await tasks.kill({ ...ref, signal: 9 }).catch(() => {});
          await tasks.wait(ref, { deadline: 5000 }).catch(() => {});
        }
        await tasks.deleteProcess(ref).catch(() => {});
      }
      commandFailure(e);
    }
    if (!o.detach) await tasks.deleteProcess(ref);
    return code;
  });
}
