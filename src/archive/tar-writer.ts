// Tar headers as Go's archive/tar writes them for containerd's layers: ustar,
// with a PAX record in front whenever ustar cannot hold a field (long names
// and link names, big ids and sizes, sub-second mtimes) and for xattrs
// (SCHILY.xattr.NAME with the raw bytes, so binary values survive).
import type { EntryType, TarTime } from './tar.js';

export interface TarEntry {
  name: string;
  type: EntryType;
  mode: number;
  uid?: number;
  gid?: number;
  /** contents' length (regular files only) */
  size?: number;
  mtime?: TarTime;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  uname?: string;
  gname?: string;
  xattrs?: ReadonlyMap<string, Uint8Array>;
}

const BLOCK = 512;
const TYPEFLAG: Record<EntryType, number> = { file: 0x30, link: 0x31, symlink: 0x32, char: 0x33, block: 0x34, dir: 0x35, fifo: 0x36 };

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/** Zero bytes that pad contents of size bytes to a block. */
export function padding(size: number): Buffer {
  const r = size % BLOCK;
  return Buffer.alloc(r === 0 ? 0 : BLOCK - r);
}

/** The header block(s) of an entry: a PAX extended header first when needed. */
export function tarHeader(e: TarEntry): Buffer {
  const pax: Array<[string, Buffer]> = [];
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  const mtime = e.mtime ?? { sec: 0, nsec: 0 };
  const nameFields = splitUstarName(e.name);
  if (!nameFields) pax.push(['path', Buffer.from(e.name)]);
  const linkname = e.linkname ?? '';
  if (Buffer.byteLength(linkname) > 100) pax.push(['linkpath', Buffer.from(linkname)]);
  if (uid > 0o7777777) pax.push(['uid', Buffer.from(String(uid))]);
  if (gid > 0o7777777) pax.push(['gid', Buffer.from(String(gid))]);
  if (size > 0o77777777777) pax.push(['size', Buffer.from(String(size))]);
  if (mtime.nsec !== 0) pax.push(['mtime', Buffer.from(`${mtime.sec}.${String(mtime.nsec).padStart(9, '0').replace(/0+$/, '')}`)]);
  for (const [k, v] of [...(e.xattrs ?? new Map<string, Uint8Array>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    pax.push([`SCHILY.xattr.${k}`, Buffer.from(v)]);
  }

  const hdr = Buffer.alloc(BLOCK);
  const [prefix, name] = nameFields ?? ['', truncateBytes(e.name, 100)];
  hdr.write(name, 0, 100, 'utf8');
  octal(hdr, 100, 8, e.mode & 0o7777);
  octal(hdr, 108, 8, uid > 0o7777777 ? 0 : uid);
  octal(hdr, 116, 8, gid > 0o7777777 ? 0 : gid);
  octal(hdr, 124, 12, size > 0o77777777777 ? 0 : size);
  octal(hdr, 136, 12, Math.max(0, Math.min(mtime.sec, 0o77777777777)));
  hdr[156] = TYPEFLAG[e.type];
  hdr.write(truncateBytes(linkname, 100), 157, 100, 'utf8');
  hdr.write('ustar\x0000', 257, 8, 'latin1');
  hdr.write(truncateBytes(e.uname ?? '', 32), 265, 32, 'utf8');
  hdr.write(truncateBytes(e.gname ?? '', 32), 297, 32, 'utf8');
  if (e.type === 'char' || e.type === 'block') {
    octal(hdr, 329, 8, e.devmajor ?? 0);
    octal(hdr, 337, 8, e.devminor ?? 0);
  }
  hdr.write(prefix, 345, 155, 'utf8');
  checksum(hdr);
  if (pax.length === 0) return hdr;

  const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  const ph = Buffer.alloc(BLOCK);
  ph.write(truncateBytes(`PaxHeaders.0/${e.name.split('/').pop() ?? ''}`, 100), 0, 100, 'utf8');
  octal(ph, 100, 8, 0o644);
  octal(ph, 108, 8, 0);
  octal(ph, 116, 8, 0);
  octal(ph, 124, 12, body.length);
  octal(ph, 136, 12, 0);
  ph[156] = 0x78; // 'x'
  ph.write('ustar\x0000', 257, 8, 'latin1');
  checksum(ph);
  return Buffer.concat([ph, body, padding(body.length), hdr]);
}

/** One PAX record "LEN KEY=VALUE\n", LEN counting itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/** [prefix, name] when the name fits ustar (100 bytes, or a 155-byte prefix split at a slash). */
function splitUstarName(full: string): [string, string] | undefined {
  if (!/^[\x20-\x7e]*$/.test(full)) return undefined; // non-ASCII goes to PAX, as Go does
  if (full.length <= 100) return ['', full];
  for (let i = full.indexOf('/'); i >= 0; i = full.indexOf('/', i + 1)) {
    if (i <= 155 && full.length - i - 1 <= 100 && i > 0 && full.length - i - 1 > 0) return [full.slice(0, i), full.slice(i + 1)];
  }
  return undefined;
}

function truncateBytes(s: string, n: number): string {
  const b = Buffer.from(s);
  return b.length <= n ? s : b.subarray(0, n).toString('utf8');
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
}

function checksum(hdr: Buffer): void {
  hdr.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += hdr[i]!;
  hdr.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

/** A whole archive in memory (tests, small layers): entries with their contents. */
export function tarArchive(entries: ReadonlyArray<TarEntry & { data?: Uint8Array | string }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const entry = e.type === 'file' ? { ...e, size: data.length } : e;
    parts.push(tarHeader(entry));
    if (e.type === 'file' && data.length) parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
