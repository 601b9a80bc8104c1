// Leaving without Node's teardown (freeing the heap, closing handles) saves
// several milliseconds per command; everything we print went out by write(2).
interface ReallyExit {
  reallyExit?: (code: number) => never;
}

export function exitNow(code: number): never {
  const p = process as unknown as ReallyExit;
  if (process.env['TSRUNC_BUILD_CODE_CACHE'] || typeof p.reallyExit !== 'function') process.exit(code);
  return p.reallyExit(code);
}
