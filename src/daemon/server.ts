// tsrund's bootstrap: directories, the daemon uuid, the metadata store, the
// event bus, every service module on one grpc-js server on a unix socket
// (mode 0660 in a 0711 directory), and a graceful stop (streams end, calls
// finish, the store closes, the socket goes).
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { EventBus } from '../events/bus.js';
import { openMetadata, type Metadata } from '../metadata/index.js';
import { ContentStore } from '../content/store.js';
import { GarbageCollector } from '../metadata/gc.js';
import { OverlaySnapshotter } from '../snapshots/overlay.js';
import { LayerUnpacker } from '../snapshots/unpacker.js';
import type { DaemonConfig } from './config.js';
import { addService } from './grpc.js';
import type { Logger } from './log.js';
import { type PluginInfo, type ServiceDeps, type ServiceModule } from './service.js';
import { SERVICE_MODULES } from './services/index.js';

/** containerd's defaults.DefaultMaxRecvMsgSize / DefaultMaxSendMsgSize */
const MAX_MESSAGE = 16 << 20;

/** Parts of the daemon that are not gRPC services but show as plugins. */
const CORE_PLUGINS: PluginInfo[] = [
  { type: 'io.containerd.metadata.v1', id: 'lmdb' },
  { type: 'io.containerd.event.v1', id: 'exchange' },
  { type: 'io.containerd.snapshotter.v1', id: 'overlayfs' },
  { type: 'io.containerd.differ.v1', id: 'walking' },
];

export interface Daemon {
  readonly config: DaemonConfig;
  readonly metadata: Metadata;
  readonly events: EventBus;
  readonly uuid: string;
  /** Ends streams, waits for running calls (up to timeoutMs), closes the store, removes the socket. */
  stop(timeoutMs?: number): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log: Logger, modules: readonly ServiceModule[] = SERVICE_MODULES): Promise<Daemon> {
  mkdirSync(config.root, { recursive: true, mode: 0o711 });
  mkdirSync(config.state, { recursive: true, mode: 0o711 });
  const uuid = loadUUID(config.root);
  const metadata = openMetadata(config.root);
  const events = new EventBus();
  const content = new ContentStore(join(config.root, 'content'), metadata);
  const overlay = OverlaySnapshotter.open(config.root, metadata);
  const snapshotters = new Map<string, OverlaySnapshotter>([[overlay.name, overlay]]);
  const gc = new GarbageCollector({ metadata, content, snapshotters: () => snapshotters, log });
  const stopping = new AbortController();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE, 'grpc.max_send_message_length': MAX_MESSAGE });

  const stopHooks: Array<() => void | Promise<void>> = [() => gc.stop()];
  try {
    const served: string[] = [];
    const plugins: PluginInfo[] = [...CORE_PLUGINS];
    const deps: ServiceDeps = {
      config,
      log,
      metadata,
      events,
      content,
      gc,
      snapshotters,
      unpacker: (name) => {
        const sn = snapshotters.get(name);
        return sn ? new LayerUnpacker(sn) : undefined;
      },
      uuid,
      plugins: () => plugins.map((p) => ({ ...p })),
      serviceNames: () => [...served],
      onStop: (fn) => void stopHooks.push(fn),
    };
    for (const m of modules) {
      const impl = await m.create(deps);
      addService(server, m.service, impl, {
        signal: stopping.signal,
        onError: (path, err, status) => {
          const level = status.code === grpc.status.UNKNOWN ? 'error' : 'debug';
          log[level]('call failed', { method: path, code: grpc.status[status.code], error: status.details });
          if (level === 'error' && err instanceof Error && err.stack) log.debug(err.stack);
        },
      });
      served.push(m.service.typeName);
      plugins.push(m.plugin);
      log.debug('loading plugin', { type: m.plugin.type, id: m.plugin.id });
    }
    // containerd collects soon after it starts (what expired while it was
    // down, what a crash left); here before serving, so that no client's
    // fresh, not yet referenced content can be caught by it
    await gc.collect().catch((e: unknown) => log.warn('garbage collection at startup failed', { error: (e as Error).message }));
    await listen(server, config.address);
  } catch (e) {
    server.forceShutdown();
    for (const fn of stopHooks.reverse()) await Promise.resolve().then(fn).catch(() => {});
    await metadata.close();
    throw e;
  }
  log.info('serving...', { address: config.address });

  let stopped: Promise<void> | undefined;
  const stop = (timeoutMs = 5000): Promise<void> =>
    (stopped ??= (async () => {
      stopping.abort();
      events.close();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      for (const fn of stopHooks.reverse()) {
        try {
          await fn();
        } catch (e) {
          log.error(`stop: ${(e as Error).message}`);
        }
      }
      await metadata.close();
      try {
        unlinkSync(config.address);
      } catch {
        /* already gone */
      }
    })());

  return { config, metadata, events, uuid, stop };
}

/**
 * Binds the unix socket: refuses when a daemon already answers on it,
 * removes a stale one, creates it 0600 (umask) and opens it to 0660.
 */
async function listen(server: grpc.Server, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o711 });
  let st;
  try {
    st = lstatSync(path);
  } catch {
    /* nothing there */
  }
  if (st) {
    if (!st.isSocket()) throw new Error(`${path}: exists and is not a socket; not replacing it`);
    if (await answers(path)) throw new Error(`${path}: another daemon is listening on it`);
    unlinkSync(path);
  }
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(new Error(`listen on ${path}: ${e.message}`)) : resolve())),
    );
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o660);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The daemon's uuid, made once and kept in <root>/uuid (written atomically). */
export function loadUUID(root: string): string {
  const file = join(root, 'uuid');
  try {
    const u = readFileSync(file, 'utf8').trim();
    if (UUID_RE.test(u)) return u;
    throw new Error(`${file}: not a uuid: ${JSON.stringify(u.slice(0, 40))}`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const u = randomUUID();
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, u);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dfd = openSync(root, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return u;
}
