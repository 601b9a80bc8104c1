// Where tsrunc's messages go: --log FILE (text or json lines, as runc writes
// them and containerd's shim reads them) and stderr.
import { appendFileSync } from 'node:fs';
import type { Logger } from '../runtime/log.js';
import { err } from './output.js';

export type LogFormat = 'text' | 'json';
type Level = 'debug' | 'warning' | 'error';

export class CliLogger implements Logger {
  constructor(
    private readonly file: string | undefined,
    private readonly format: LogFormat,
    private readonly debugEnabled: boolean,
    private readonly tool: string,
  ) {}

  private line(level: Level, msg: string): string {
    const time = new Date().toISOString();
    if (this.format === 'json') return `${JSON.stringify({ level, msg, time })}\n`;
    return `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
  }

  private toFile(level: Level, msg: string): boolean {
    if (!this.file) return false;
    try {
      appendFileSync(this.file, this.line(level, msg));
      return true;
    } catch {
      return false;
    }
  }

  /** Debug lines carry the time since the process started, to see where it goes. */
  debug(msg: string): void {
    if (!this.debugEnabled) return;
    const line = `[${performance.now().toFixed(1)} ms] ${msg}`;
    if (!this.toFile('debug', line)) err(`${this.tool}: debug: ${line}\n`);
  }

  warn(msg: string): void {
    this.toFile('warning', msg);
    err(`${this.tool}: warning: ${msg}\n`);
  }

  /** The error is always the last line on stderr, and a line in --log. */
  error(msg: string): void {
    this.toFile('error', msg);
    err(`${this.tool}: ${msg}\n`);
  }
}
