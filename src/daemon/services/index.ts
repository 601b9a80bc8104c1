// The services tsrund serves, in registration order. To add one: write
// src/daemon/services/<name>.ts exporting `defineService({ service, plugin,
// create(deps) })` and list it here.
import type { ServiceModule } from '../service.js';
import health from './health.js';
import version from './version.js';
import introspection from './introspection.js';
import namespaces from './namespaces.js';
import containers from './containers.js';
import events from './events.js';
import tasks from './tasks.js';
import leases from './leases.js';
import content from './content.js';
import images from './images.js';
import transfer from './transfer.js';
import snapshots from './snapshots.js';
import diff from './diff.js';

export const SERVICE_MODULES: readonly ServiceModule[] = [health, version, introspection, namespaces, containers, events, tasks, leases, content, images, transfer, snapshots, diff] as ServiceModule[];
