// `update`: merging a resources request into a container's resources the way
// runc's update.go does. runc rewrites the whole merged set, but some fields
// only when the request names them (cpuset, burst, idle, pids, unified);
// the stored set keeps every value that is still in effect.

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Json => (isObject(v) ? v : {});
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));
const given = (v: unknown) => v !== undefined && v !== null;

export interface MergedUpdate {
  /** what to write now (planResources input) */
  write: Json;
  /** what the container's resources are afterwards (saved in its state) */
  store: Json;
}

type Dev = { major?: unknown; minor?: unknown };
/** runc's upsertWeightDevice/upsertThrottleDevice: replace the entry for the same device, else append. */
function upsert(old: unknown, add: unknown, fields: string[]): unknown[] | undefined {
  if (!Array.isArray(add) || add.length === 0) return Array.isArray(old) ? old : undefined;
  const out = Array.isArray(old) ? clone(old as Dev[]) : [];
  for (const a of add as Json[]) {
    let i = out.length - 1;
    while (i >= 0 && !(out[i]!.major === a['major'] && out[i]!.minor === a['minor'])) i--;
    if (i < 0) out.push(clone(a));
    else for (const f of fields) if (given(a[f])) (out[i] as Json)[f] = a[f];
  }
  return out;
}

export function mergeUpdate(current: unknown, request: unknown): MergedUpdate {
  const old = obj(current);
  const req = obj(request);
  const oldMem = obj(old['memory']);
  const oldCpu = obj(old['cpu']);
  const oldIo = obj(old['blockIO']);
  const rMem = { ...obj(req['memory']) };
  const rCpu = { ...obj(req['cpu']) };
  const rIo = obj(req['blockIO']);

  // runc's fix-ups: "memory -1" alone means no swap limit either; "idle" alone must not write cpu.weight.
  if (rMem['limit'] === -1 && !given(rMem['swap'])) rMem['swap'] = 0;
  if (given(rCpu['idle']) && !given(rCpu['shares'])) rCpu['shares'] = 0;

  const pick = (k: string, r: Json, o: Json) => (given(r[k]) ? r[k] : o[k]);
  const memory: Json = {};
  for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller']) {
    const v = pick(k, rMem, oldMem);
    if (given(v)) memory[k] = v;
  }

  // quota and period: both given (or both absent) replace both; one alone keeps the other.
  const p = (rCpu['period'] as number | undefined) ?? 0;
  const q = (rCpu['quota'] as number | undefined) ?? 0;
  const cpuWrite: Json = {};
  const cpuStore: Json = { ...oldCpu };
  const shares = pick('shares', rCpu, oldCpu);
  if (given(shares)) cpuWrite['shares'] = cpuStore['shares'] = shares;
  if (p !== 0 || q !== 0) {
    const period = p !== 0 ? p : oldCpu['period'];
    const quota = q !== 0 ? q : oldCpu['quota'];
    if (given(period)) cpuWrite['period'] = cpuStore['period'] = period;
    if (given(quota)) cpuWrite['quota'] = cpuStore['quota'] = quota;
  }
  for (const k of ['burst', 'idle', 'cpus', 'mems', 'realtimeRuntime', 'realtimePeriod']) {
    if (given(rCpu[k]) && rCpu[k] !== '') cpuWrite[k] = cpuStore[k] = rCpu[k];
  }

  const blockIO: Json = { ...clone(oldIo) };
  for (const k of ['weight', 'leafWeight']) if (given(rIo[k])) blockIO[k] = rIo[k];
  const wd = upsert(oldIo['weightDevice'], rIo['weightDevice'], ['weight', 'leafWeight']);
  if (wd) blockIO['weightDevice'] = wd;
  for (const k of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice']) {
    const l = upsert(oldIo[k], rIo[k], ['rate']);
    if (l) blockIO[k] = l;
  }

  const write: Json = {};
  const store: Json = clone(old);
  if (Object.keys(memory).length) {
    // checkBeforeUpdate only when this request asks for it (runc's update sets it false otherwise)
    write['memory'] = { ...memory, ...(given(rMem['checkBeforeUpdate']) ? { checkBeforeUpdate: rMem['checkBeforeUpdate'] } : {}) };
    store['memory'] = { ...oldMem, ...memory };
  }
  if (Object.keys(cpuWrite).length) write['cpu'] = cpuWrite;
  if (Object.keys(cpuStore).length) store['cpu'] = cpuStore;
  if (Object.keys(blockIO).length) write['blockIO'] = store['blockIO'] = blockIO;
  const pids = obj(req['pids']);
  if (given(pids['limit'])) write['pids'] = store['pids'] = { limit: pids['limit'] };
  for (const k of ['hugepageLimits', 'rdma']) {
    const v = given(req[k]) ? req[k] : old[k];
    if (given(v)) write[k] = store[k] = clone(v);
  }
  if (given(req['unified'])) write['unified'] = store['unified'] = clone(req['unified']);
  // Device rules are not updated, as in runc: the filter set at create stays.
  return { write, store };
}
