// The tsrunc-shim control protocol (native-shims/shim-proto.h): fixed-layout
// records, little-endian. A unit test checks these sizes against the C side.

export const REQ = {
  SPAWN: 1,
  WATCH: 2,
  KILL: 3,
  RESIZE: 4,
  CLOSE_STDIN: 5,
  SUBSCRIBE: 6,
  STATE: 7,
  ACK: 8,
  FORGET: 9,
  SHUTDOWN: 10,
} as const;

export type RequestType = (typeof REQ)[keyof typeof REQ];

/** fds the shim keeps for a process (index order is the C enum's). */
export const ROLES = ['stdinSrc', 'stdinDst', 'console', 'termOut'] as const;
export type Role = (typeof ROLES)[number];

export const F_FORCE = 0x1;
export const NAME_MAX = 128;
export const SLOT_BASE = 10;
export const MAX_FDS = 16;
/** The most bytes of an exit record path (TSR_SHIM_EXIT_PATH_MAX). */
export const EXIT_PATH_MAX = 4000;

export const REQ_SIZE = 168;
const REQ_ROLE_OFFSET = 24;
const REQ_NAME_OFFSET = 40;
export const RESP_SIZE = 16;
export const PROC_SIZE = 152;
const PROC_EXITED_OFFSET = 16;
const PROC_NAME_OFFSET = 24;
export const EVENT_SIZE = 160;
export const EV_EXIT = 1;

/** Layout constants, for the test that compares them with tsr_shim_layout(). */
export const LAYOUT = [REQ_SIZE, REQ_ROLE_OFFSET, REQ_NAME_OFFSET, RESP_SIZE, PROC_SIZE, PROC_EXITED_OFFSET, PROC_NAME_OFFSET, EVENT_SIZE, SLOT_BASE] as const;

export interface Request {
  type: RequestType;
  name?: string;
  flags?: number;
  pid?: number;
  arg?: number;
  arg2?: number;
  nslots?: number;
  /** index of each role's fd after the slots */
  roles?: Partial<Record<Role, number>>;
  payload?: Buffer;
}

function putName(buf: Buffer, at: number, name: string): void {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length >= NAME_MAX) throw new RangeError(`process name longer than ${NAME_MAX - 1} bytes: ${name}`);
  if (bytes.includes(0)) throw new RangeError('process name contains a NUL byte');
  bytes.copy(buf, at);
}

export function encodeRequest(r: Request): Buffer {
  const payload = r.payload ?? Buffer.alloc(0);
  const buf = Buffer.alloc(REQ_SIZE + payload.length);
  buf.writeUInt32LE(r.type, 0);
  buf.writeUInt32LE(r.flags ?? 0, 4);
  buf.writeInt32LE(r.pid ?? 0, 8);
  buf.writeInt32LE(r.arg ?? 0, 12);
  buf.writeInt32LE(r.arg2 ?? 0, 16);
  buf.writeUInt32LE(r.nslots ?? 0, 20);
  ROLES.forEach((role, i) => buf.writeInt32LE(r.roles?.[role] ?? -1, REQ_ROLE_OFFSET + 4 * i));
  if (r.name) putName(buf, REQ_NAME_OFFSET, r.name);
  payload.copy(buf, REQ_SIZE);
  return buf;
}

export interface Response {
  type: number;
  /** 0 or an errno */
  err: number;
  pid: number;
  procs: ShimProcess[];
}

/** A process the shim holds. */
export interface ShimProcess {
  name: string;
  /** 0 until the daemon has named it (WATCH) */
  pid: number;
  exited: boolean;
  /** the raw wait status */
  status: number;
  /** the daemon has published the exit */
  acked: boolean;
  /** nanoseconds since the epoch (0 while running) */
  exitedNs: bigint;
}

function readName(buf: Buffer, at: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString('utf8', at, end < 0 || end > at + NAME_MAX ? at + NAME_MAX : end);
}

export function decodeProcess(buf: Buffer, at: number): ShimProcess {
  return {
    pid: buf.readInt32LE(at),
    exited: buf.readUInt32LE(at + 4) === 1,
    status: buf.readInt32LE(at + 8),
    acked: buf.readUInt32LE(at + 12) !== 0,
    exitedNs: buf.readBigInt64LE(at + PROC_EXITED_OFFSET),
    name: readName(buf, at + PROC_NAME_OFFSET),
  };
}

export function decodeResponse(buf: Buffer, length: number): Response {
  if (length < RESP_SIZE) throw new Error(`short answer from the shim (${length} bytes)`);
  const count = buf.readUInt32LE(12);
  if (RESP_SIZE + count * PROC_SIZE > length) throw new Error('truncated answer from the shim');
  const procs: ShimProcess[] = [];
  for (let i = 0; i < count; i++) procs.push(decodeProcess(buf, RESP_SIZE + i * PROC_SIZE));
  return { type: buf.readUInt32LE(0), err: buf.readInt32LE(4), pid: buf.readInt32LE(8), procs };
}

/** WATCH's payload asking the shim to record the exit at `path` (absolute: the shim's cwd is /). */
export function exitRecordPayload(path: string): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  if (!path.startsWith('/')) throw new RangeError(`exit record path is not absolute: ${path}`);
  if (bytes.length > EXIT_PATH_MAX) throw new RangeError(`exit record path longer than ${EXIT_PATH_MAX} bytes: ${path}`);
  if (bytes.includes(0)) throw new RangeError('exit record path contains a NUL byte');
  return bytes;
}

/** What the shim wrote at an exit record path (format: shim-proto.h). */
export interface ExitRecord {
  pid: number;
  /** the raw wait status */
  status: number;
  /** nanoseconds since the epoch */
  exitedNs: bigint;
}

const EXIT_RECORD = /^(-?\d+) (-?\d+) (-?\d+)\n$/;
// Written by shims before the record was asked for per process: a restored
// daemon can still find such a shim's file after the shim died.
const LEGACY_EXIT_RECORD = /^\{"pid":(-?\d+),"status":(-?\d+),"exited_ns":(-?\d+)\}\n$/;

export function parseExitRecord(text: string): ExitRecord {
  const m = EXIT_RECORD.exec(text) ?? LEGACY_EXIT_RECORD.exec(text);
  if (!m) throw new Error(`not an exit record: ${JSON.stringify(text.slice(0, 100))}`);
  return { pid: Number(m[1]), status: Number(m[2]), exitedNs: BigInt(m[3]!) };
}

/** Exit code as containerd reports it: the code, or 128 + signal. */
export function exitCode(status: number): number {
  const sig = status & 0x7f;
  return sig === 0 ? (status >> 8) & 0xff : 128 + sig;
}

/** Splits a stream of event records; keeps a partial record for the next chunk. */
export class EventReader {
  private pending = Buffer.alloc(0);
  push(chunk: Buffer): ShimProcess[] {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: ShimProcess[] = [];
    let off = 0;
    for (; off + EVENT_SIZE <= data.length; off += EVENT_SIZE) {
      if (data.readUInt32LE(off) === EV_EXIT) out.push(decodeProcess(data, off + 8));
    }
    this.pending = Buffer.from(data.subarray(off));
    return out;
  }
}
