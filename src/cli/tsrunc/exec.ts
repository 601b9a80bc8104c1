import { readFileSync } from 'node:fs';
import { execInContainer } from '../../runtime/exec.js';
import { loadRecord } from '../../runtime/state.js';
import { parseProcess, ConfigError } from '../../oci/validate.js';
import { CAPABILITIES } from '../../linux/capabilities.js';
import type { Process } from '../../oci/spec.js';
import { attach } from './attach.js';
import { withContext } from './create.js';
import type { Globals } from './main.js';

export interface ExecFlags {
  process?: string;
  tty?: boolean;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  cwd?: string;
  user?: string;
  additionalGids: string[];
  env: string[];
  cap: string[];
  /** commander's reading of --no-new-privs: false when given */
  newPrivs?: boolean;
  preserveFds: number;
  processLabel?: string;
  apparmor?: string;
  cgroup: string[];
  ignorePaused?: boolean;
}

function uint(text: string, what: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > 0xfffffffe) throw new Error(`${what}: "${text}" is not a valid id`);
  return Number(text);
}

/** The process to start: process.json, or the container's process with the flags applied (runc's rules). */
export function execProcess(base: Process, args: string[], o: ExecFlags): Process {
  if (o.process) {
    const text = readFileSync(o.process, 'utf8');
    return parseProcess(text, o.process);
  }
  if (args.length === 0) throw new Error('exec: a command to run is required (or -p process.json)');
  const p: Process = structuredClone(base);
  p.args = args;
  p.terminal = o.tty ?? false;
  if (o.cwd) p.cwd = o.cwd;
  p.env = [...(p.env ?? []), ...o.env];
  if (o.newPrivs === false) p.noNewPrivileges = true;
  if (o.user) {
    const [u, g] = o.user.split(':');
    p.user = { ...p.user, uid: uint(u!, '--user'), ...(g !== undefined ? { gid: uint(g, '--user') } : {}) };
  }
  for (const g of o.additionalGids) p.user.additionalGids = [...(p.user.additionalGids ?? []), uint(g, '--additional-gids')];
  for (const name of o.cap) {
    const cap = name.toUpperCase().startsWith('CAP_') ? name.toUpperCase() : `CAP_${name.toUpperCase()}`;
    if (!Object.hasOwn(CAPABILITIES, cap)) throw new Error(`--cap: unknown capability "${name}"`);
    const c = (p.capabilities ??= {});
    c.bounding = [...(c.bounding ?? []), cap];
    c.effective = [...(c.effective ?? []), cap];
    c.permitted = [...(c.permitted ?? []), cap];
    // Ambient needs inheritable; runc adds it only where the spec has inheritable.
    if (c.inheritable) c.ambient = [...(c.ambient ?? []), cap];
  }
  if (o.processLabel) p.selinuxLabel = o.processLabel;
  if (o.apparmor) p.apparmorProfile = o.apparmor;
  if (!p.cwd.startsWith('/')) throw new ConfigError('cwd', `must be an absolute path, got "${p.cwd}"`, '--cwd');
  return p;
}

export default async function exec(g: Globals, id: string, args: string[], o: ExecFlags): Promise<number> {
  const started = withContext(`exec ${id}`, () => {
    const rec = loadRecord(g.root, id);
    const proc = execProcess(rec.config.process!, args, o);
    if (o.cgroup.length > 1) throw new Error('--cgroup: one sub-cgroup on a cgroup v2 host');
    return execInContainer({
      root: g.root,
      id,
      process: proc,
      consoleSocket: o.consoleSocket,
      relayConsole: !o.detach,
      pidFile: o.pidFile,
      preserveFds: o.preserveFds,
      subCgroup: o.cgroup[0],
      ignorePaused: o.ignorePaused ?? false,
      watchExec: true,
      log: g.log,
    });
  });
  if (o.detach) {
    started.confirmExec?.();
    return 0;
  }
  return attach(started.pid, {
    consoleMaster: started.consoleMaster,
    forward: (sig) => {
      try {
        process.kill(started.pid, sig);
      } catch {
        /* it is exiting */
      }
    },
    release: () => started.confirmExec?.(),
  });
}
