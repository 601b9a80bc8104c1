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


function messageOf(e: unknown): string {
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
      process.exitCode = 1;
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
