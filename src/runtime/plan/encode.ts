// LaunchPlan -> the flat buffer that native-shims/spawn.c reads (format in
// native-shims/plan.h): no pointers, 8-byte aligned, little-endian.
import { OP_TABLE, type LaunchPlan, type FieldType } from './ops.js';

export const PLAN_MAGIC = 0x31505354;
const HEADER_SIZE = 32;
const OP_HEADER_SIZE = 8;

const pad8 = (n: number) => (n + 7) & ~7;

class Writer {
  private buf = Buffer.alloc(4096);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v >>> 0, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  u16(v: number): void {
    this.reserve(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
      // Most values are small: two 32-bit halves, no BigInt (cold BigInt code is slow).
      this.buf.writeUInt32LE(v % 0x100000000, this.length);
      this.buf.writeUInt32LE(Math.floor(v / 0x100000000), this.length + 4);
    } else {
      this.buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), this.length);
    }
    this.length += 8;
  }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.includes(0)) throw new Error(`plan string contains a NUL byte: ${JSON.stringify(s)}`);
    const size = pad8(bytes.length + 1);
    this.u32(bytes.length);
    this.u32(0);
    this.reserve(size);
    bytes.copy(this.buf, this.length);
    this.buf.fill(0, this.length + bytes.length, this.length + size);
    this.length += size;
  }
  patchU32(at: number, v: number): void {
    this.buf.writeUInt32LE(v, at);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function field(w: Writer, type: FieldType, value: unknown): void {
  switch (type) {
    case 'u':
      w.u64(value as number | bigint);
      break;
    case 's':
      w.str(value as string);
      break;
    case 'v': {
      const list = value as readonly string[];
      w.u32(list.length);
      w.u32(0);
      for (const s of list) w.str(s);
      break;
    }
    case 'a': {
      const list = value as readonly (number | bigint)[];
      w.u32(list.length);
      w.u32(0);
      for (const n of list) w.u64(n);
      break;
    }
  }
}

export function encodePlan(plan: LaunchPlan): Buffer {
  const w = new Writer();
  w.u32(PLAN_MAGIC);
  w.u32(plan.ops.length);
  w.u64(plan.cloneFlags);
  w.i32(plan.cgroupFd);
  w.i32(plan.syncFd);
  w.i32(plan.parentSyncFd);
  const totalAt = w.length;
  w.u32(0);
  if (w.length !== HEADER_SIZE) throw new Error('plan header size mismatch');
  for (const o of plan.ops) {
    const def = OP_TABLE[o.name];
    const start = w.length;
    w.u16(def.code);
    w.u16(o.ignore);
    const lenAt = w.length;
    w.u32(0);
    const args = o.args as Record<string, unknown>;
    for (const [name, type] of def.fields) {
      if (!(name in args)) throw new Error(`op ${o.name}: missing field ${name}`);
      field(w, type, args[name]);
    }
    w.patchU32(lenAt, w.length - start);
    if (w.length - start < OP_HEADER_SIZE) throw new Error('op size');
  }
  w.patchU32(totalAt, w.length);
  return w.result();
}
