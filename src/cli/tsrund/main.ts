// tsrund: the containerd-compatible supervisor daemon. Serves containerd's
// API v1 on a unix socket until SIGTERM or SIGINT.
import { Command, Option } from 'commander';
import { out, err } from '../output.js';
import { VERSION, COMMIT } from '../../version.js';
import { DEFAULT_CONFIG, logLevel, readConfigFile, resolveConfig, type ConfigOverrides } from '../../daemon/config.js';
import { createLogger, LOG_LEVELS } from '../../daemon/log.js';

interface Opts {
  address?: string;
  root?: string;
  state?: string;
  config?: string;
  logLevel?: string;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('tsrund')
    .description('The tsrunc supervisor: containerd API v1 on a unix socket')
    .addOption(new Option('-a, --address <path>', `unix socket to serve on (default ${DEFAULT_CONFIG.address})`))
    .addOption(new Option('--root <dir>', `persistent state directory (default ${DEFAULT_CONFIG.root})`))
    .addOption(new Option('--state <dir>', `volatile state directory (default ${DEFAULT_CONFIG.state})`))
    .option('-c, --config <file>', 'configuration file, TOML (*.toml) or JSON: root, state, grpc.address, debug.level')
    .addOption(new Option('-l, --log-level <level>', `log level (default ${DEFAULT_CONFIG.logLevel})`).choices([...LOG_LEVELS]))
    .option('-v, --version', 'print the version')
    .configureOutput({ writeOut: out, writeErr: err })
    .showHelpAfterError()
    .exitOverride();

  program.on('option:version', () => {
    out(`tsrund ${VERSION} (commit ${COMMIT})\n`);
    process.exit(0);
  });

  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? code : 1;
  }
  const o = program.opts<Opts>();
  const bootLog = createLogger('info');
  let config;
  try {
    const file: ConfigOverrides = o.config ? readConfigFile(o.config, (m) => bootLog.warn(m)) : {};
    const flags: ConfigOverrides = { address: o.address, root: o.root, state: o.state, logLevel: o.logLevel ? logLevel(o.logLevel, '--log-level') : undefined };
    config = resolveConfig(file, flags);
  } catch (e) {
    err(`tsrund: ${(e as Error).message}\n`);
    return 1;
  }

  const log = createLogger(config.logLevel);
  const t0 = performance.now();
  log.info('starting tsrund', { version: VERSION, revision: COMMIT });
  const { startDaemon } = await import('../../daemon/server.js');
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (e) {
    log.error(`tsrund: ${(e as Error).message}`);
    return 1;
  }
  log.info(`tsrund successfully booted in ${((performance.now() - t0) / 1000).toFixed(3)}s`);

  return new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      log.info('stopping', { signal: sig });
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      daemon.stop().then(
        () => {
          log.info('tsrund stopped');
          resolve(0);
        },
        (e: unknown) => {
          log.error(`stop: ${(e as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
