// The contract of a service module (src/daemon/services/<name>.ts): which
// gRPC service it serves, the plugin it shows in Introspection.Plugins, and
// a factory that gets the daemon's shared parts and returns the handlers.
import type { DescService } from '@bufbuild/protobuf';
import type { Metadata } from '../metadata/index.js';
import type { EventBus } from '../events/bus.js';
import type { ContentStore } from '../content/store.js';
import type { GarbageCollector } from '../metadata/gc.js';
import type { OverlaySnapshotter } from '../snapshots/overlay.js';
import type { LayerUnpacker } from '../snapshots/unpacker.js';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log.js';
import type { ServiceImpl } from './grpc.js';

/** A plugin as Introspection.Plugins lists it (containerd's plugin types). */
export interface PluginInfo {
  /** e.g. "io.containerd.grpc.v1" */
  type: string;
  /** e.g. "containers" */
  id: string;
  requires?: string[];
  exports?: Record<string, string>;
  capabilities?: string[];
}

/** What every service gets from the daemon. */
export interface ServiceDeps {
  readonly config: DaemonConfig;
  readonly log: Logger;
  /** namespaces, containers (and later images, leases, ...) */
  readonly metadata: Metadata;
  /** publish events here; Events.Subscribe reads from it */
  readonly events: EventBus;
  /** blobs by digest under <root>/content, namespaced records in metadata */
  readonly content: ContentStore;
  /** the garbage collector: collect() (sync deletes), schedule() (others) */
  readonly gc: GarbageCollector;
  /** the snapshotters by name (containerd's "overlayfs") */
  readonly snapshotters: ReadonlyMap<string, OverlaySnapshotter>;
  /** unpacks layer blobs into committed snapshots of the named snapshotter; undefined for an unknown name */
  unpacker(snapshotter: string): LayerUnpacker | undefined;
  /** the daemon's uuid (stable under the same --root) */
  readonly uuid: string;
  /** every plugin the daemon provides (services and internal parts) */
  plugins(): PluginInfo[];
  /** gRPC service names served, for health checks */
  serviceNames(): string[];
  /** fn runs at shutdown, after streams ended and calls finished, before the store closes (last registered, first run) */
  onStop(fn: () => void | Promise<void>): void;
}

export interface ServiceModule<S extends DescService = DescService> {
  readonly service: S;
  readonly plugin: PluginInfo;
  create(deps: ServiceDeps): ServiceImpl<S> | Promise<ServiceImpl<S>>;
}

/** Declares a service module (keeps the handler types tied to the service). */
export function defineService<S extends DescService>(m: ServiceModule<S>): ServiceModule<S> {
  return m;
}

export const GRPC_PLUGIN = 'io.containerd.grpc.v1';
