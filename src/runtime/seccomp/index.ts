// linux.seccomp: checked and compiled to BPF in the parent, installed by the
// child with the SECCOMP op; with SCMP_ACT_NOTIFY the listener fd comes back
// to the parent, which forwards it to linux.seccomp.listenerPath.
import { closeSync } from 'node:fs';
import type { Spec, State } from '../../oci/spec.js';
import { OCI_SPEC_VERSION } from '../../oci/spec.js';
import { sendFd, unixConnect } from '../../linux/native.js';
import { RuntimeError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { op, type PlanOpOf } from '../plan/ops.js';
import { validateSeccomp } from './profile.js';
import { compileProfile } from './compile.js';

export { validateSeccomp, type Profile } from './profile.js';
export { compileProfile, type Compiled } from './compile.js';

/**
 * The SECCOMP op for a spec, or undefined without linux.seccomp. Throws a
 * ConfigError naming the JSON path for a bad profile.
 */
export function planSeccomp(spec: Spec, log: Logger = silentLogger): PlanOpOf<'SECCOMP'> | undefined {
  const profile = validateSeccomp(spec.linux?.seccomp);
  if (!profile) {
    if (spec.linux?.seccomp) log.debug('seccomp: no defaultAction and no syscalls, no filter (as runc)');
    return undefined;
  }
  const { flags, filter } = compileProfile(profile, log);
  const what = [`${filter.length} instructions`, ...(flags ? [`flags 0x${flags.toString(16)}`] : [])].join(', ');
  return op('SECCOMP', { flags, filter }, `install the seccomp filter (${what})`);
}

/** The spec's "container process state", sent to a seccomp agent with the notify fd. */
export interface ContainerProcessState {
  ociVersion: string;
  fds: string[];
  pid: number;
  metadata?: string;
  state: Pick<State, 'ociVersion' | 'id' | 'status' | 'pid' | 'bundle' | 'annotations'>;
}

/**
 * Connects to the agent's socket, sends the JSON with the fd (SCM_RIGHTS) in
 * one message, and closes: one state per connection, as the spec asks.
 */
export function sendToListener(listenerPath: string, notifyFd: number, state: ContainerProcessState): void {
  // As given, as runc dials it: a relative path is relative to our cwd.
  const path = listenerPath;
  let sock: number;
  try {
    sock = unixConnect(path);
  } catch (e) {
    throw new RuntimeError(`seccomp: cannot reach the agent at linux.seccomp.listenerPath ${path}`, e);
  }
  try {
    sendFd(sock, notifyFd, Buffer.from(JSON.stringify(state)));
  } catch (e) {
    throw new RuntimeError(`seccomp: cannot send the notify fd to ${path}`, e);
  } finally {
    closeSync(sock);
  }
}

/**
 * The launch `fd` hook's work for a seccomp notify fd: the process state of
 * the container being created, to linux.seccomp.listenerPath. The caller
 * still owns (and closes) notifyFd.
 */
export function notifySeccompListener(spec: Spec, notifyFd: number, state: State): void {
  const seccomp = spec.linux?.seccomp as { listenerPath?: string; listenerMetadata?: string } | undefined;
  // validateSeccomp refused NOTIFY without a listenerPath before the launch.
  if (!seccomp?.listenerPath) throw new RuntimeError('seccomp: a notify fd arrived but linux.seccomp.listenerPath is not set');
  const { ociVersion, id, pid, bundle, annotations } = state;
  sendToListener(seccomp.listenerPath, notifyFd, {
    ociVersion: OCI_SPEC_VERSION,
    fds: ['seccompFd'],
    pid,
    ...(seccomp.listenerMetadata !== undefined ? { metadata: seccomp.listenerMetadata } : {}),
    state: { ociVersion, id, status: 'creating', pid, bundle, ...(annotations ? { annotations } : {}) },
  });
}
