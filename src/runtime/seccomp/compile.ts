// A checked profile -> the BPF program and seccomp(2) flags, with libseccomp,
// following runc's rules: the native architecture is always in the filter,
// unknown syscall names are skipped, a rule with the default action is
// dropped, conditions on the same argument become separate rules (OR), and
// a deny-by-default filter gets the -ENOSYS stub in front.
import { ConfigError } from '../../oci/validate.js';
import { errnoName } from '../../linux/syscall-error.js';
import { silentLogger, type Logger } from '../log.js';
import { ARCHITECTURES, FILTER_FLAG, OPERATORS, type Profile, type Rule } from './profile.js';
import { ATTR, Filter, NR_UNKNOWN, archToken, libseccompVersion, nativeArch, syscallNumber, syscallNumberOn, type ArgCmp } from './libseccomp.js';
import { BPF_MAXINSNS, enosysStub, type StubArch } from './bpf.js';

export interface Compiled {
  /** seccomp(2) flags (SECCOMP_FILTER_FLAG_*) */
  flags: number;
  /** the program: one u64 per struct sock_filter */
  filter: bigint[];
  /** instructions of the -ENOSYS stub at the front (0 without one) */
  stubLength: number;
}

/** libseccomp binary-tree optimisation pays off on long profiles (runc's threshold). */
const OPTIMIZE_ABOVE = 32;
const ENOSYS = 38;

/** Actions the stub leaves alone: a permissive default already lets new syscalls through. */
const PERMISSIVE = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']);

function errText(rc: number): string {
  return errnoName(-rc);
}

/** SCMP_ARCH_* tokens of the filter: the native one first, then the profile's. */
function architectures(p: Profile, filter: Filter): number[] {
  const tokens = [nativeArch()];
  for (const [name, path] of p.architectures) {
    const token = archToken(ARCHITECTURES[name]!);
    if (token === 0) throw new ConfigError(path, `architecture ${name} is not supported by libseccomp ${libseccompVersion()}`);
    const rc = filter.addArch(token);
    if (rc < 0 && rc !== -17 /* EEXIST: the native one, or listed twice */) {
      throw new ConfigError(path, `libseccomp cannot add architecture ${name}: ${errText(rc)}`);
    }
    if (!tokens.includes(token)) tokens.push(token);
  }
  return tokens;
}

/** seccomp(2) flags, probing through libseccomp that the kernel knows them. */
function filterFlags(p: Profile, filter: Filter, log: Logger): number {
  let flags = 0;
  if (p.flags === undefined) {
    // runc: with no `flags` at all, SPEC_ALLOW when the kernel supports it.
    if (filter.setAttr(ATTR.CTL_SSB, 1) === 0) flags |= FILTER_FLAG.SPEC_ALLOW;
    else log.debug('seccomp: SECCOMP_FILTER_FLAG_SPEC_ALLOW not supported here, not set');
  } else {
    for (const [name, path] of p.flags) {
      switch (name) {
        case 'SECCOMP_FILTER_FLAG_TSYNC':
          // Known but meaningless here, as in runc: the child that installs
          // the filter is single-threaded (and TSYNC would clash with NEW_LISTENER).
          break;
        case 'SECCOMP_FILTER_FLAG_LOG':
        case 'SECCOMP_FILTER_FLAG_SPEC_ALLOW': {
          // Setting the matching libseccomp attribute probes the kernel for the flag.
          const [attr, flag] = name === 'SECCOMP_FILTER_FLAG_LOG' ? [ATTR.CTL_LOG, FILTER_FLAG.LOG] : [ATTR.CTL_SSB, FILTER_FLAG.SPEC_ALLOW];
          const rc = filter.setAttr(attr, 1);
          if (rc < 0) throw new ConfigError(path, `${name} is not supported by this kernel (libseccomp ${libseccompVersion()}: ${errText(rc)})`);
          flags |= flag;
          break;
        }
        case 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV':
          // Only meaningful with a listener; the kernel refuses it without one.
          if (p.notify) flags |= FILTER_FLAG.WAIT_KILLABLE_RECV;
          else log.debug(`seccomp: ${name} ignored: no rule uses SCMP_ACT_NOTIFY (${path})`);
          break;
      }
    }
  }
  if (p.notify) flags |= FILTER_FLAG.NEW_LISTENER;
  return flags;
}

/** One libseccomp rule per rule and name; conditions on one argument twice are ORed as separate rules. */
function addRules(rule: Rule, defaultValue: number, filter: Filter, log: Logger): void {
  // libseccomp refuses a rule whose action is the default one (EACCES); it changes nothing.
  if (rule.value === defaultValue) return;
  const conds: ArgCmp[] = rule.args.map((c) => ({ index: c.index, op: OPERATORS[c.op], a: c.value, b: c.valueTwo }));
  const indexes = new Set(conds.map((c) => c.index));
  const sets = indexes.size === conds.length ? [conds] : conds.map((c) => [c]);
  for (const name of rule.names) {
    const nr = syscallNumber(name);
    if (nr === NR_UNKNOWN) {
      // As runc: a name this libseccomp does not know is a syscall this kernel
      // cannot have either; the profile stays usable across versions.
      log.debug(`seccomp: unknown syscall "${name}" skipped (${rule.path})`);
      continue;
    }
    for (const set of sets) {
      const rc = filter.addRule(rule.value, nr, set);
      if (rc < 0) throw new ConfigError(rule.path, `libseccomp refused the rule for ${name}: ${errText(rc)}`);
    }
  }
}

/** The largest syscall number of the profile on each architecture, for the -ENOSYS stub. */
function stubArchs(p: Profile, tokens: number[]): { archs: StubArch[]; x86_64: number } {
  const x86_64 = archToken('x86_64');
  const x32 = archToken('x32');
  const s390 = new Set([archToken('s390'), archToken('s390x')]);
  const names = [...new Set(p.rules.flatMap((r) => r.names))];
  const largest = (token: number) => {
    let max: number | undefined;
    for (const n of names) {
      const nr = syscallNumberOn(token, n);
      if (nr >= 0 && (max === undefined || nr > max)) max = nr;
    }
    return max;
  };
  const byAudit = new Map<number, StubArch>();
  for (const token of tokens) {
    // SCMP_ARCH_X32 is libseccomp's own token: its processes run as AUDIT_ARCH_X86_64.
    const audit = token === x32 ? x86_64 : token;
    const entry = byAudit.get(audit) ?? { auditArch: audit, s390: s390.has(token) };
    const max = largest(token);
    if (max !== undefined) {
      if (token === x32) entry.maxX32 = max;
      else entry.max = max;
    }
    byAudit.set(audit, entry);
  }
  return { archs: [...byAudit.values()], x86_64 };
}

function needsStub(p: Profile): boolean {
  if (PERMISSIVE.has(p.defaultAction)) return false;
  // Already the answer the stub would give.
  return !(p.defaultAction === 'SCMP_ACT_ERRNO' && p.defaultErrno === ENOSYS);
}

export function compileProfile(p: Profile, log: Logger = silentLogger): Compiled {
  const filter = new Filter(p.defaultValue);
  try {
    // tsrunc sets no_new_privs itself (process.noNewPrivileges); the filter
    // is only exported here, but say so in case it ever gets loaded.
    filter.setAttr(ATTR.CTL_NNP, 0);
    const tokens = architectures(p, filter);
    const flags = filterFlags(p, filter, log);
    const count = p.rules.reduce((n, r) => n + r.names.length, 0);
    if (count > OPTIMIZE_ABOVE && filter.setAttr(ATTR.CTL_OPTIMIZE, 2) < 0) log.debug('seccomp: binary tree optimisation not available');
    for (const rule of p.rules) addRules(rule, p.defaultValue, filter, log);
    const program = filter.exportBpf();
    let stub: bigint[] = [];
    if (needsStub(p)) {
      const { archs, x86_64 } = stubArchs(p, tokens);
      stub = enosysStub(archs, x86_64);
    }
    const all = [...stub, ...program];
    if (all.length > BPF_MAXINSNS) {
      throw new ConfigError('linux.seccomp', `the filter compiles to ${all.length} BPF instructions, more than the kernel's ${BPF_MAXINSNS}`);
    }
    log.debug(`seccomp: ${all.length} BPF instructions (${stub.length} in the -ENOSYS stub), flags 0x${flags.toString(16)}`);
    return { flags, filter: all, stubLength: stub.length };
  } finally {
    filter.release();
  }
}
