// The daemon's log: logrus-style text lines on stderr, as containerd writes
// them (time="..." level=info msg="..." key=value), filtered by --log-level.
import { err } from '../cli/output.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'panic'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  readonly level: LogLevel;
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

function fieldText(v: unknown): string {
  const s = typeof v === 'string' ? v : v instanceof Error ? v.message : JSON.stringify(v);
  return /^[A-Za-z0-9_./:@-]+$/.test(s ?? '') ? s! : JSON.stringify(s);
}

export function createLogger(level: LogLevel, write: (line: string) => void = err): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const at = (l: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(l) < min) return;
    let line = `time="${new Date().toISOString()}" level=${l === 'warn' ? 'warning' : l} msg=${JSON.stringify(msg)}`;
    for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) line += ` ${k}=${fieldText(v)}`;
    write(`${line}\n`);
  };
  return { level, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
