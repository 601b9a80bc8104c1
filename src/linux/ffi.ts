// The one place that loads koffi. Functions are bound on first use so that a
// command pays only for the calls it makes (CLI start-up is benchmarked).
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

type KoffiModule = typeof Koffi;
type KoffiLib = ReturnType<KoffiModule['load']>;
// koffi's bound functions take and return loosely typed values.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeFn = (...args: any[]) => any;

let koffiModule: KoffiModule | undefined;

export function koffi(): KoffiModule {
  koffiModule ??= loadKoffi();
  return koffiModule;
}

function loadKoffi(): KoffiModule {
  // Running from source (tests) there is no require: ask Node for one.
  if (typeof require !== 'function') return createRequire(import.meta.url)('koffi') as KoffiModule;
  // In the CLI bundle: koffi's prebuilt binary for this platform directly
  // (its JS wrapper only adds deprecation shims and costs ~2 ms more), through
  // module.require so that esbuild leaves the path alone; else the package.
  const { platform, arch } = process;
  try {
    return module.require(`@koromix/koffi-${platform}-${arch}/${platform}_${arch}/koffi.node`) as KoffiModule;
  } catch {
    return require('koffi') as KoffiModule;
  }
}

/** The errno left by the last native call; read it right after the call. */
export function lastErrno(): number {
  return koffi().errno() as number;
}

const libs = new Map<string, KoffiLib>();

export function library(path: string): KoffiLib {
  let lib = libs.get(path);
  if (!lib) {
    lib = koffi().load(path);
    libs.set(path, lib);
  }
  return lib;
}

/** A lazily bound function of a shared library. */
export function lazyFn(libPath: () => string, signature: string): NativeFn {
  let fn: NativeFn | undefined;
  return (...args: unknown[]) => {
    fn ??= library(libPath()).func(signature) as NativeFn;
    return fn(...args);
  };
}
