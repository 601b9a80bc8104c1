// Pull and push progress as docker prints it. On a terminal: one line per
// layer, rewritten in place ("Downloading [=====>    ] 1.2MB/3.4MB"). Not on
// a terminal: one plain line per change of state, without the byte counts
// ("a3ed95caeb02: Pull complete").
import type { TransferProgress } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import { out } from '../output.js';

/** docker's units.HumanSize: decimal, 4 significant digits ("1.234MB", "525B"). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

const BAR_WIDTH = 50;

function bar(current: number, total: number): string {
  if (total <= 0) return ` ${humanSize(current)}`;
  const filled = Math.min(BAR_WIDTH, Math.floor((current / total) * BAR_WIDTH));
  const arrow = filled < BAR_WIDTH ? '>' : '';
  return `[${'='.repeat(Math.max(0, filled - (arrow ? 1 : 0)))}${arrow}${' '.repeat(BAR_WIDTH - Math.max(filled, arrow ? 1 : 0))}]  ${humanSize(current)}/${humanSize(total)}`;
}

/** Statuses that carry bytes: shown only on a terminal. */
const BYTE_STATUSES = new Set(['Downloading', 'Extracting', 'Pushing']);

export class ProgressPrinter {
  private readonly lines: string[] = [];
  private readonly last = new Map<string, string>();

  constructor(
    private readonly tty: boolean,
    private readonly write: (s: string) => void = out,
  ) {}

  /** Prints one progress message; returns the done part when it is the last. */
  handle(p: TransferProgress): void {
    const k = p.kind;
    if (k.case === 'message') this.message(k.value);
    else if (k.case === 'layer') this.layer(k.value.id, k.value.status, Number(k.value.current), Number(k.value.total));
  }

  message(text: string): void {
    this.write(`${text}\n`);
    if (this.tty) this.lines.push('');
  }

  layer(id: string, status: string, current = 0, total = 0): void {
    const withBytes = BYTE_STATUSES.has(status);
    if (!this.tty) {
      if (withBytes || this.last.get(id) === status) return;
      this.last.set(id, status);
      this.write(`${id}: ${status}\n`);
      return;
    }
    const text = `${id}: ${status}${withBytes && (current || total) ? ` ${bar(current, total)}` : ''}`;
    const at = this.lines.indexOf(id);
    if (at < 0) {
      this.lines.push(id);
      this.write(`${text}\n`);
      return;
    }
    const up = this.lines.length - at;
    this.write(`\x1b[${up}A\r\x1b[2K${text}\r\x1b[${up}B`);
  }
}
