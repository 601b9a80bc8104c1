// Parts of the runtime spec that this version of tsrunc does not apply yet.
// Refusing them is safer than running a container without them; each refusal
// names the JSON path.
import { existsSync } from 'node:fs';
import { ConfigError } from '../../oci/validate.js';
import type { Spec } from '../../oci/spec.js';

export function checkSupported(spec: Spec): void {
  const unsupported = (path: string, what: string) => {
    throw new ConfigError(path, `${what}: not supported by this version of tsrunc yet`);
  };
  const linux = spec.linux ?? {};
  if (linux.intelRdt) {
    // runc's words where the kernel has no resctrl; where it has, we do not manage it yet.
    if (!existsSync('/sys/fs/resctrl/info')) throw new ConfigError('linux.intelRdt', 'intelRdt is specified in config, but Intel RDT is not enabled');
    unsupported('linux.intelRdt', 'Intel RDT');
  }
}
