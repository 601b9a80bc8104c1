// zstd decompression through the system's libzstd (libzstd.so.1, Debian's
// libzstd1) with koffi: a Transform over ZSTD_decompressStream_simpleArgs.
// Node 20's zlib has no zstd. Without the library, layers compressed with
// zstd get a clear error instead.
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
}

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
