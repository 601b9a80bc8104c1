// zstd through the system's libzstd (libzstd.so.1, Debian's libzstd1) with
// koffi: Transforms over ZSTD_decompressStream_simpleArgs and
// ZSTD_compressStream2_simpleArgs. Node 20's zlib has no zstd. Without the
// library, zstd layers get a clear error instead.
import { Transform, type TransformCallback } from 'node:stream';
import { library, type NativeFn } from '../linux/ffi.js';

const LIB = 'libzstd.so.1';

interface Zstd {
  createDCtx: NativeFn;
  freeDCtx: NativeFn;
  decompress: NativeFn;
  isError: NativeFn;
  errorName: NativeFn;
  outSize: number;
  createCCtx: NativeFn;
  freeCCtx: NativeFn;
  setParameter: NativeFn;
  compress: NativeFn;
  compressOutSize: number;
}

// zstd.h: ZSTD_c_compressionLevel, ZSTD_e_continue, ZSTD_e_end
const ZSTD_C_COMPRESSION_LEVEL = 100;
const ZSTD_E_CONTINUE = 0;
const ZSTD_E_END = 2;
/** containerd's (and zstd's) default level */
export const ZSTD_DEFAULT_LEVEL = 3;

let zstd: Zstd | undefined;
let loadError: string | undefined;

/** libzstd's functions, or undefined (with zstdUnavailable() saying why). */
function load(): Zstd | undefined {
  if (zstd || loadError) return zstd;
  try {
    const lib = library(LIB);
    zstd = {
      createDCtx: lib.func('void *ZSTD_createDCtx(void)') as NativeFn,
      freeDCtx: lib.func('size_t ZSTD_freeDCtx(void *dctx)') as NativeFn,
      decompress: lib.func(
        'size_t ZSTD_decompressStream_simpleArgs(void *dctx, _Out_ uint8_t *dst, size_t cap, _Inout_ size_t *dstPos, const uint8_t *src, size_t srcSize, _Inout_ size_t *srcPos)',
      ) as NativeFn,
      isError: lib.func('unsigned int ZSTD_isError(size_t code)') as NativeFn,
      errorName: lib.func('const char *ZSTD_getErrorName(size_t code)') as NativeFn,
      outSize: Number((lib.func('size_t ZSTD_DStreamOutSize(void)') as NativeFn)()),
      createCCtx: lib.func('void *ZSTD_createCCtx(void)') as NativeFn,
      freeCCtx: lib.func('size_t ZSTD_freeCCtx(void *cctx)') as NativeFn,
      setParameter: lib.func('size_t ZSTD_CCtx_setParameter(void *cctx, int param, int value)') as NativeFn,
      compress: lib.func(
        'size_t ZSTD_compressStream2_simpleArgs(void *cctx, _Out_ uint8_t *dst, size_t cap, _Inout_ size_t *dstPos, const uint8_t *src, size_t srcSize, _Inout_ size_t *srcPos, int endOp)',
      ) as NativeFn,
      compressOutSize: Number((lib.func('size_t ZSTD_CStreamOutSize(void)') as NativeFn)()),
    };
  } catch (e) {
    loadError = `zstd needs the system's ${LIB} (Debian: libzstd1): ${(e as Error).message}`;
  }
  return zstd;
}

/** Why zstd is not available here, or undefined when it is. */
export function zstdUnavailable(): string | undefined {
  load();
  return loadError;
}

export class ZstdDecompress extends Transform {
  private readonly z: Zstd;
  private dctx: unknown;
  private readonly dstPos = new BigUint64Array(1);
  private readonly srcPos = new BigUint64Array(1);
  /** 0 once a frame is complete */
  private last = 0;

  constructor() {
    super();
    const z = load();
    if (!z) throw new Error(loadError);
    this.z = z;
    this.dctx = z.createDCtx();
    if (!this.dctx) throw new Error('ZSTD_createDCtx failed');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.run(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.last !== 0) done(new Error('zstd stream is truncated (the last frame is incomplete)'));
    else done();
  }

  override _destroy(err: Error | null, done: (e: Error | null) => void): void {
    if (this.dctx) this.z.freeDCtx(this.dctx);
    this.dctx = undefined;
    done(err);
  }

  private run(src: Buffer): void {
    const z = this.z;
    this.srcPos[0] = 0n;
    for (;;) {
      const out = Buffer.allocUnsafe(z.outSize);
      this.dstPos[0] = 0n;
      const r = z.decompress(this.dctx, out, out.length, this.dstPos, src, src.length, this.srcPos);
      if (z.isError(r)) throw new Error(`zstd: ${z.errorName(r) as string}`);
      this.last = Number(r);
      const produced = Number(this.dstPos[0]);
      if (produced > 0) this.push(out.subarray(0, produced));
      // done with this input once it is consumed and the output was not full
      if (Number(this.srcPos[0]) >= src.length && produced < out.length) return;
    }
  }
}

/** One zstd frame of everything written (ZSTD_e_continue per chunk, ZSTD_e_end at the end). */
export class ZstdCompress extends Transform {
  private readonly z: Zstd;
  private cctx: unknown;
  private readonly dstPos = new BigUint64Array(1);
  private readonly srcPos = new BigUint64Array(1);

  constructor(level = ZSTD_DEFAULT_LEVEL) {
    super();
    const z = load();
    if (!z) throw new Error(loadError);
    this.z = z;
    this.cctx = z.createCCtx();
    if (!this.cctx) throw new Error('ZSTD_createCCtx failed');
    try {
      this.check(z.setParameter(this.cctx, ZSTD_C_COMPRESSION_LEVEL, level), `compression level ${level}`);
    } catch (e) {
      z.freeCCtx(this.cctx);
      this.cctx = undefined;
      throw e;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.run(chunk, ZSTD_E_CONTINUE);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.run(Buffer.alloc(0), ZSTD_E_END);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _destroy(err: Error | null, done: (e: Error | null) => void): void {
    if (this.cctx) this.z.freeCCtx(this.cctx);
    this.cctx = undefined;
    done(err);
  }

  private check(r: unknown, what: string): number {
    if (this.z.isError(r)) throw new Error(`zstd ${what}: ${this.z.errorName(r) as string}`);
    return Number(r);
  }

  private run(src: Buffer, endOp: number): void {
    const z = this.z;
    this.srcPos[0] = 0n;
    for (;;) {
      const out = Buffer.allocUnsafe(z.compressOutSize);
      this.dstPos[0] = 0n;
      // the return value is what is left to flush (ZSTD_e_end) or a hint (ZSTD_e_continue)
      const left = this.check(z.compress(this.cctx, out, out.length, this.dstPos, src, src.length, this.srcPos, endOp), 'compress');
      const produced = Number(this.dstPos[0]);
      if (produced > 0) this.push(out.subarray(0, produced));
      const consumed = Number(this.srcPos[0]) >= src.length;
      if (endOp === ZSTD_E_END ? left === 0 : consumed && produced < out.length) return;
    }
  }
}
