// Parts of the runtime spec that this version of tsrunc does not apply yet.
// Refusing them is safer than running a container without, say, its AppArmor
// profile; each refusal names the JSON path.
import { ConfigError } from '../../oci/validate.js';
import type { Spec } from '../../oci/spec.js';

export function checkSupported(spec: Spec): void {
  const unsupported = (path: string, what: string) => {
    throw new ConfigError(path, `${what}: not supported by this version of tsrunc yet`);
  };
  const linux = spec.linux ?? {};
  for (const [kind, list] of Object.entries(spec.hooks ?? {})) if ((list as unknown[])?.length) unsupported(`hooks.${kind}`, 'hooks');
  if (linux.sysctl && Object.keys(linux.sysctl).length) unsupported('linux.sysctl', 'sysctl');
  if (linux.personality) unsupported('linux.personality', 'personality');
  if (linux.intelRdt) unsupported('linux.intelRdt', 'Intel RDT');
  if (linux.mountLabel) unsupported('linux.mountLabel', 'SELinux mount labels');
  if (spec.process?.selinuxLabel) unsupported('process.selinuxLabel', 'SELinux process labels');
  if (spec.process?.apparmorProfile) unsupported('process.apparmorProfile', 'AppArmor profiles');
  if (spec.process?.oomScoreAdj !== undefined) unsupported('process.oomScoreAdj', 'oomScoreAdj');
  if (spec.process?.ioPriority) unsupported('process.ioPriority', 'ioPriority');
  if (spec.process?.scheduler) unsupported('process.scheduler', 'scheduler');
}
