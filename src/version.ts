// Filled in by scripts/build.mjs (esbuild define); source runs report "dev".
declare const __TSRUNC_VERSION__: string | undefined;
declare const __TSRUNC_COMMIT__: string | undefined;

export const VERSION: string = typeof __TSRUNC_VERSION__ === 'string' ? __TSRUNC_VERSION__ : '0.0.0-dev';
export const COMMIT: string = typeof __TSRUNC_COMMIT__ === 'string' ? __TSRUNC_COMMIT__ : 'unknown';
