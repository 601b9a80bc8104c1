// tsrctl: the client of tsrund (any containerd API v1 server). One module
// per verb group, loaded only when it runs; output goes through write(2).
import { Command, Option } from 'commander';
import { out, err } from '../output.js';

export const DEFAULT_ADDRESS = '/run/tsrund/tsrund.sock';

export interface Globals {
  address: string;
  namespace: string;
}

interface GlobalOpts {
  address: string;
  namespace: string;
}

export function messageOf(e: unknown): string {
  const details = (e as { details?: unknown })?.details;
  if (typeof details === 'string' && details) return details;
  return e instanceof Error ? e.message : String(e);
}

/** Wraps a verb: lazy import, the error as the last line on stderr, the exit code. */
function verb(load: () => Promise<object>, name = 'default') {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = cmd.optsWithGlobals() as GlobalOpts;
    try {
      const action = ((await load()) as Record<string, unknown>)[name] as (g: Globals, ...rest: unknown[]) => Promise<number | void> | number | void;
      const code = await action({ address: g.address, namespace: g.namespace }, ...args.slice(0, -1));
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (e) {
      err(`tsrctl: ${messageOf(e)}\n`);
      const code = (e as { exitCode?: unknown })?.exitCode;
      process.exitCode = typeof code === 'number' ? code : 1;
    }
  };
}

const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

export async function main(argv: string[]): Promise<number> {
  const program = new Command('tsrctl')
    .description('Client of tsrund, the containerd-compatible supervisor')
    .addOption(new Option('-a, --address <path>', 'address of the daemon socket').env('TSRUND_ADDRESS').default(DEFAULT_ADDRESS))
    .addOption(new Option('-n, --namespace <name>', 'namespace to work in').env('TSRUND_NAMESPACE').default('default'))
    .configureOutput({ writeOut: out, writeErr: err })
    .enablePositionalOptions() // options after `run ID` / `exec ID` belong to the command
    .showHelpAfterError();

  program
    .command('version')
    .description('print the client and server versions')
    .addOption(formatOption())
    .action(verb(() => import('./version.js')));

  const ns = program.command('namespaces').alias('namespace').alias('ns').description('manage namespaces');
  ns.command('ls')
    .alias('list')
    .description('list namespaces')
    .addOption(formatOption())
    .option('-q, --quiet', 'print only the names')
    .action(verb(() => import('./namespaces.js'), 'list'));
  ns.command('create')
    .description('create a namespace')
    .argument('<name>')
    .argument('[labels...]', 'labels as KEY=VALUE')
    .action(verb(() => import('./namespaces.js'), 'create'));
  ns.command('label')
    .description('set labels of a namespace (KEY= removes one)')
    .argument('<name>')
    .argument('<labels...>', 'labels as KEY=VALUE')
    .action(verb(() => import('./namespaces.js'), 'label'));
  ns.command('rm')
    .alias('remove')
    .description('remove namespaces (they must be empty)')
    .argument('<names...>')
    .action(verb(() => import('./namespaces.js'), 'remove'));

  const c = program.command('containers').alias('container').alias('c').description('manage containers (records; tasks run them)');
  c.command('ls')
    .alias('list')
    .description('list containers, optionally filtered (id==web, labels.app==x, image~=busybox)')
    .argument('[filters...]')
    .addOption(formatOption())
    .option('-q, --quiet', 'print only the ids')
    .action(verb(() => import('./containers.js'), 'list'));
  c.command('info')
    .description('print a container as JSON (the spec decoded)')
    .argument('<id>')
    .option('--spec', 'print only the spec')
    .action(verb(() => import('./containers.js'), 'info'));
  c.command('rm')
    .alias('remove')
    .alias('delete')
    .description('remove containers')
    .argument('<ids...>')
    .action(verb(() => import('./containers.js'), 'remove'));

  const collect = (v: string, prev: string[]): string[] => [...prev, v];
  const tasks = program.command('tasks').alias('task').alias('t').description('manage tasks (the running side of containers)').enablePositionalOptions();
  tasks
    .command('ls')
    .alias('list')
    .description('list tasks')
    .addOption(formatOption())
    .option('-q, --quiet', 'print only the ids')
    .action(verb(() => import('./tasks.js'), 'list'));
  tasks
    .command('start')
    .description("start a created task, or a new task for a container (attached: its output, its exit status)")
    .argument('<id>')
    .option('-d, --detach', 'start it and return')
    .option('-i, --interactive', 'our stdin to the task')
    .action(verb(() => import('./tasks.js'), 'start'));
  tasks
    .command('kill')
    .description('signal a task (default SIGTERM)')
    .argument('<id>')
    .option('-s, --signal <signal>', 'signal name or number (TERM, SIGKILL, 9)', 'SIGTERM')
    .option('-a, --all', 'signal every process of the task')
    .option('--exec-id <id>', 'signal this exec process instead of the init')
    .action(verb(() => import('./tasks.js'), 'kill'));
  tasks
    .command('wait')
    .description('wait for a task (or --exec-id process) to exit; prints its status and exits with it')
    .argument('<id>')
    .option('--exec-id <id>', 'wait for this exec process')
    .addOption(formatOption())
    .action(verb(() => import('./tasks.js'), 'wait'));
  tasks
    .command('ps')
    .description("list a task's processes (host pids, exec ids)")
    .argument('<id>')
    .addOption(formatOption())
    .option('-q, --quiet', 'print only the pids')
    .action(verb(() => import('./tasks.js'), 'ps'));
  tasks
    .command('exec')
    .description('run another process in a task (attached: its output, its exit status)')
    .argument('<id>')
    .argument('<args...>', 'command and arguments')
    .option('--exec-id <id>', 'id of the new process (default: random)')
    .option('-t, --tty', 'allocate a terminal')
    .option('-i, --interactive', 'our stdin to the process')
    .option('-d, --detach', 'start it and return')
    .option('--cwd <dir>', 'working directory in the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone: our value)', collect, [])
    .option('-u, --user <user>', 'uid[:gid] or name[:group]')
    .passThroughOptions()
    .action(verb(() => import('./exec.js')));
  tasks
    .command('pause')
    .description('freeze every process of a task')
    .argument('<id>')
    .action(verb(() => import('./tasks.js'), 'pause'));
  tasks
    .command('resume')
    .description('thaw a paused task')
    .argument('<id>')
    .action(verb(() => import('./tasks.js'), 'resume'));
  tasks
    .command('rm')
    .alias('remove')
    .alias('delete')
    .description('delete stopped tasks (the containers stay)')
    .argument('<ids...>')
    .option('-f, --force', 'kill running tasks first')
    .option('--exec-id <id>', 'delete this exec process instead')
    .action(verb(() => import('./tasks.js'), 'remove'));

  const insecureOption = () => new Option('--insecure-registry <host>', 'registry host[:port] reached over plain HTTP or unverified TLS (localhost needs none)').argParser(collect).default([]);
  program
    .command('run')
    .description('run an image (pulled when missing): tsrctl run [flags] IMAGE [COMMAND [ARG...]]\nor a root directory: tsrctl run [flags] --rootfs DIR ID COMMAND [ARG...]')
    .argument('<image|id>', 'image reference, or with --rootfs the container id')
    .argument('[args...]', 'command and arguments (an image: replaces its CMD)')
    .option('--rm', 'remove the task, container and snapshot after the exit')
    .option('-d, --detach', 'start it, print its id and return')
    .option('-t, --tty', 'allocate a terminal')
    .option('-i, --interactive', 'our stdin to the container')
    .option('--name <id>', 'container id of an image run (default: 12 random hex digits)')
    .option('--rootfs <dir>', 'root filesystem directory instead of an image')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone: our value)', collect, [])
    .option('--mount <spec>', 'type=bind,source=DIR,target=DIR[,readonly] or type=tmpfs,target=DIR[,tmpfs-size=N]', collect, [])
    .option('-w, --workdir <dir>', 'working directory in the container')
    .option('--cwd <dir>', 'working directory in the container (as ctr)')
    .option('-u, --user <user>', 'uid[:gid] or name[:group] (names from the root\'s /etc/passwd)')
    .option('--entrypoint <cmd>', "replace the image's ENTRYPOINT (and drop its CMD)")
    .option('--hostname <name>', 'hostname (default: the id)')
    .option('-l, --label <KEY=VALUE>', 'container label', collect, [])
    .option('--platform <os/arch[/variant]>', "the image's manifest for this platform (pulled when missing; default: this machine's)")
    .addOption(insecureOption())
    .passThroughOptions()
    .action(verb(() => import('./run.js')));

  program
    .command('pull')
    .description('pull an image from a registry into the daemon (and unpack it)')
    .argument('<ref>', 'image reference (busybox, user/app:v1, host:port/app@sha256:...)')
    .option('-q, --quiet', 'print only the image name')
    .option('--platform <os/arch[/variant]>', 'platform to pull (default: this machine\'s)')
    .option('--no-unpack', 'fetch the content only (no snapshots)')
    .option('--snapshotter <name>', 'snapshotter to unpack into', 'overlayfs')
    .addOption(insecureOption())
    .action(verb(() => import('./pull.js')));
  program
    .command('push')
    .description('push an image from the daemon to a registry')
    .argument('<ref>', 'image name (as pulled or tagged)')
    .option('-q, --quiet', 'print only the manifest digest')
    .option('--to <ref>', 'push under another name')
    .option('--platform <os/arch[/variant]>', 'push only this platform\'s manifest of an index')
    .addOption(insecureOption())
    .action(verb(() => import('./push.js')));

  const images = program.command('images').alias('image').alias('i').description('manage images');
  images
    .command('ls')
    .alias('list')
    .description('list images, optionally filtered (name==x, labels.k==v, target.digest~=...)')
    .argument('[filters...]')
    .addOption(formatOption())
    .option('-q, --quiet', 'print only the names')
    .action(verb(() => import('./images.js'), 'list'));
  images
    .command('inspect')
    .description("print images as JSON (target, manifest, this platform's config and layers)")
    .argument('<names...>')
    .action(verb(() => import('./images.js'), 'inspect'));
  images
    .command('rm')
    .alias('remove')
    .alias('delete')
    .description('remove image names (content no longer referenced goes with them)')
    .argument('<names...>')
    .option('--async', 'leave the collection to the daemon instead of waiting for it')
    .action(verb(() => import('./images.js'), 'remove'));
  images
    .command('tag')
    .description('give an image more names')
    .argument('<source>')
    .argument('<targets...>')
    .action(verb(() => import('./images.js'), 'tag'));

  program
    .command('import')
    .alias('load')
    .description('import images from an OCI archive or a `docker save` tar (and unpack them)')
    .argument('<file>')
    .option('--name <ref>', 'name for an image the archive leaves unnamed')
    .option('--platform <os/arch[/variant]>', 'platform to unpack (default: this machine\'s)')
    .option('--no-unpack', 'content and image records only (no snapshots)')
    .option('--snapshotter <name>', 'snapshotter to unpack into', 'overlayfs')
    .option('-q, --quiet', 'print nothing')
    .action(verb(() => import('./import.js')));
  program
    .command('export')
    .alias('save')
    .description('write an image to an archive (OCI layout with a docker manifest.json: ctr import and docker load read it)')
    .argument('<ref>')
    .argument('<file>')
    .option('--platform <os/arch[/variant]>', 'only this platform\'s manifest of an index')
    .action(verb(() => import('./export.js')));

  program
    .command('events')
    .alias('event')
    .description('print events as they happen (filters: topic=="/tasks/exit", namespace==x, event.id==y)')
    .argument('[filters...]')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(verb(() => import('./events.js')));

  program.option('-v, --version', 'print the client version').on('option:version', async () => {
    const { VERSION, COMMIT } = await import('../../version.js');
    out(`tsrctl ${VERSION} (commit ${COMMIT})\n`);
    process.exit(0);
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    err(`tsrctl: ${messageOf(e)}\n`);
    process.exitCode = 1;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
