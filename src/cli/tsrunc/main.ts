// tsrunc: an OCI runtime with runc's command line. Each verb lives in its own
// module, loaded only when that verb runs.
import { Command, Option } from 'commander';
import { goStyleLongFlags } from '../argv.js';
import { out, err } from '../output.js';
import { CliLogger, type LogFormat } from '../logging.js';
import { VERSION, COMMIT } from '../../version.js';
import { OCI_SPEC_VERSION } from '../../oci/spec.js';
import { DEFAULT_ROOT } from '../../runtime/state.js';

export interface Globals {
  root: string;
  log: CliLogger;
}

interface GlobalOpts {
  root: string;
  log?: string;
  logFormat: LogFormat;
  debug?: boolean;
  systemdCgroup?: boolean;
}

const LONG_FLAGS = new Set([
  'root', 'log', 'log-format', 'debug', 'systemd-cgroup', 'rootless', 'criu', 'version', 'help',
  'bundle', 'console-socket', 'pid-file', 'no-pivot', 'no-new-keyring', 'preserve-fds', 'detach', 'keep',
  'no-subreaper', 'all', 'force', 'format', 'quiet',
  'stats', 'interval', 'resources', 'blkio-weight', 'cpu-period', 'cpu-quota', 'cpu-burst', 'cpu-share', 'cpu-shares', 'cpu-rt-period',
  'cpu-rt-runtime', 'cpuset-cpus', 'cpuset-mems', 'cpu-idle', 'kernel-memory', 'kernel-memory-tcp', 'memory', 'memory-reservation',
  'memory-swap', 'pids-limit', 'l3-cache-schema', 'mem-bw-schema',
  'process', 'tty', 'cwd', 'user', 'additional-gids', 'env', 'cap', 'no-new-privs', 'process-label', 'apparmor', 'cgroup', 'ignore-paused',
]);

let logger: CliLogger | undefined;

function globals(cmd: Command): Globals {
  const g = cmd.optsWithGlobals() as GlobalOpts;
  logger = new CliLogger(g.log, g.logFormat, g.debug ?? false, 'tsrunc');
  if (g.systemdCgroup) throw new Error('--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs paths');
  return { root: g.root, log: logger };
}

type Action = (g: Globals, ...args: never[]) => Promise<number | void> | number | void;

/** Wraps a verb: lazy import, errors to the log and stderr, the exit code. */
function verb(load: () => Promise<{ default: Action }>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    try {
      const g = globals(cmd);
      g.log.debug(`${cmd.name()}: arguments parsed`);
      const action = (await load()).default as (g: Globals, ...rest: unknown[]) => Promise<number | void> | number | void;
      const code = await action(g, ...args.slice(0, -1));
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (e) {
      (logger ?? new CliLogger(undefined, 'text', false, 'tsrunc')).error(messageOf(e));
      process.exitCode = 1;
    }
  };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const createFlags = (c: Command) =>
  c
    .option('-b, --bundle <dir>', 'path to the bundle directory (holding config.json)', '.')
    .option('--console-socket <path>', 'unix socket that receives the pty master when process.terminal is true')
    .option('--pid-file <path>', 'write the pid of the container init to this file')
    .option('--no-pivot', 'use MS_MOVE and chroot instead of pivot_root (for ramdisk roots)')
    .option('--no-new-keyring', 'keep the session keyring of the caller')
    .addOption(new Option('--preserve-fds <n>', 'pass N extra fds (3 ... 3+N-1) to the container').default(0).argParser(nonNegative));

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function nonNegative(v: string): number {
  if (!/^[0-9]+$/.test(v)) throw new Error(`--preserve-fds: "${v}" is not a non-negative integer`);
  return Number(v);
}

/** Runs a command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (process.env['TSRUNC_BUILD_CODE_CACHE']) {
    (await import('./warmup.js')).warmup();
    return 0;
  }
  const program = new Command('tsrunc')
    .description('An OCI container runtime (a drop-in for runc), in TypeScript')
    .addOption(new Option('--root <dir>', 'directory for container state').default(DEFAULT_ROOT))
    .option('--log <file>', 'write log lines to this file (as well as errors to stderr)')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'))
    .option('--debug', 'log every step, including the launch plan')
    .option('--systemd-cgroup', 'use the systemd cgroup driver (not supported)')
    .option('--rootless <mode>', 'accepted for runc compatibility: true, false or auto')
    .option('--criu <path>', 'accepted for runc compatibility (checkpointing is not supported)')
    .option('-v, --version', 'print the version')
    .configureOutput({ writeOut: out, writeErr: err })
    .showHelpAfterError()
    .enablePositionalOptions();

  program.on('option:version', () => {
    out(`tsrunc version ${VERSION}\ncommit: ${COMMIT}\nspec: ${OCI_SPEC_VERSION}\n`);
    process.exit(0);
  });

  createFlags(program.command('create').description('create a container; its init waits until `start`').argument('<container-id>'))
    .action(verb(() => import('./create.js')));
  program.command('start').description('run the process of a created container').argument('<container-id>').action(verb(() => import('./start.js')));
  createFlags(
    program
      .command('run')
      .description('create and start a container, wait for it, and exit with its status')
      .argument('<container-id>', 'the container id, or a bundle directory (DIR/) whose name becomes the id'),
  )
    .option('-d, --detach', 'return after start, leaving the container running')
    .option('--keep', 'do not delete the container after it exits')
    .option('--no-subreaper', 'accepted for runc compatibility')
    .action(verb(() => import('./run.js')));
  program
    .command('exec')
    .description('run a new process in a running container')
    .argument('<container-id>')
    .argument('[command...]', 'the command and its arguments (or -p process.json)')
    .option('-p, --process <file>', 'a process.json: the runtime-spec process to run')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--console-socket <path>', 'unix socket that receives the pty master')
    .option('-d, --detach', 'return once the process has started')
    .option('--pid-file <path>', 'write the pid of the process to this file')
    .option('--cwd <dir>', 'working directory in the container')
    .option('-u, --user <uid[:gid]>', 'user (and group) to run as')
    .option('-g, --additional-gids <gid>', 'an additional group (repeatable)', collect, [])
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('-c, --cap <cap>', 'add a capability (repeatable)', collect, [])
    .option('--no-new-privs', 'set no_new_privs for the process')
    .addOption(new Option('--preserve-fds <n>', 'pass N extra fds (3 ... 3+N-1) to the process').default(0).argParser(nonNegative))
    .option('--process-label <label>', 'SELinux label of the process')
    .option('--apparmor <profile>', 'AppArmor profile of the process')
    .option('--cgroup <[controller:]path>', 'run in this existing sub-cgroup of the container (repeatable)', collect, [])
    .option('--ignore-paused', 'exec even if the container is paused')
    .passThroughOptions()
    .action(verb(() => import('./exec.js')));
  program
    .command('ps')
    .description("list the container's processes (host pids)")
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .argument('<container-id>')
    .argument('[ps-args...]', 'arguments for ps(1) (default -ef)')
    .passThroughOptions()
    .action(verb(() => import('./ps.js')));
  program.command('state').description('print the OCI state of a container as JSON').argument('<container-id>').action(verb(() => import('./state.js')));
  program
    .command('kill')
    .description('send a signal (default SIGTERM) to the container init')
    .argument('<container-id>')
    .argument('[signal]', 'name (KILL, SIGKILL) or number', 'SIGTERM')
    .option('-a, --all', 'signal every process in the container')
    .action(verb(() => import('./kill.js')));
  program
    .command('delete')
    .description('delete a stopped container (with -f: kill it first)')
    .argument('<container-id>')
    .option('-f, --force', 'kill a running container before deleting it')
    .action(verb(() => import('./delete.js')));
  program
    .command('list')
    .alias('ls')
    .description('list containers')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'print only the container ids')
    .action(verb(() => import('./list.js')));
  program.command('pause').description('freeze every process of the container').argument('<container-id>').action(verb(() => import('./pause.js')));
  program.command('resume').description('thaw a paused container').argument('<container-id>').action(verb(() => import('./resume.js')));
  program
    .command('events')
    .description('print stats and OOM events of a container as JSON lines (with --stats: the stats once)')
    .argument('<container-id>')
    .option('--stats', 'print the stats once and exit')
    .option('--interval <duration>', 'time between stats', '5s')
    .action(verb(() => import('./events.js')));
  const size = '(bytes, or 512m, 1g; -1 for no limit)';
  program
    .command('update')
    .description("change a running container's resource limits")
    .argument('<container-id>')
    .option('-r, --resources <file>', 'linux.resources JSON from FILE, or - for stdin (the other flags are then ignored)')
    .option('--memory <size>', `memory limit ${size}`)
    .option('--memory-reservation <size>', `memory soft limit ${size}`)
    .option('--memory-swap <size>', `memory + swap limit ${size}`)
    .addOption(new Option('--kernel-memory <size>').hideHelp())
    .addOption(new Option('--kernel-memory-tcp <size>').hideHelp())
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--cpu-share <n>', 'CPU shares (relative weight)')
    .addOption(new Option('--cpu-shares <n>').hideHelp())
    .option('--cpu-quota <usecs>', 'CPU time per period (-1: no limit)')
    .option('--cpu-period <usecs>', 'CPU CFS period')
    .option('--cpu-burst <usecs>', 'CPU time a period may borrow from idle ones')
    .option('--cpu-rt-period <usecs>', 'realtime period (cgroup v1 only)')
    .option('--cpu-rt-runtime <usecs>', 'realtime runtime (cgroup v1 only)')
    .option('--cpuset-cpus <list>', 'CPUs to use, e.g. 0-2,4')
    .option('--cpuset-mems <list>', 'memory nodes to use')
    .option('--cpu-idle <0|1>', 'SCHED_IDLE for the cgroup')
    .option('--blkio-weight <n>', 'block IO weight, 10 to 1000')
    .option('--l3-cache-schema <schema>', 'Intel RDT L3 cache schema (not supported)')
    .option('--mem-bw-schema <schema>', 'Intel RDT memory bandwidth schema (not supported)')
    .action(verb(() => import('./update.js')));
  program
    .command('features')
    .description('print what this runtime supports, and what this host allows, as the runtime-spec features JSON')
    .action(verb(() => import('./features.js')));
  program
    .command('spec')
    .description('write a default config.json into the bundle directory')
    .option('-b, --bundle <dir>', 'bundle directory', '.')
    .option('--rootless', 'a config for running without root')
    .action(verb(() => import('./spec.js')));

  try {
    await program.parseAsync(goStyleLongFlags(argv, LONG_FLAGS), { from: 'user' });
  } catch (e) {
    err(`tsrunc: ${messageOf(e)}\n`);
    process.exitCode = 1;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
