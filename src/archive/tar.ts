// A streaming tar reader: ustar, GNU (long names and link names, base-256
// numbers) and PAX (per-entry records; global ones are skipped, as
// containerd does). xattrs come from SCHILY.xattr.* records as raw bytes, so
// a binary security.capability survives (node-tar and tar-stream decode
// record values as UTF-8 and lose it), and from LIBARCHIVE.xattr.* (base64).
//
// Bytes are pushed in as they arrive (write) and the entries come out
// through a sink, synchronously: entry(header), data(chunk) for its
// contents, end(). Data chunks are views of the pushed buffers: no copy.
// Errors name the archive offset of the header at fault.

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarTime {
  sec: number;
  nsec: number;
}

export interface TarHeader {
  /** the member name as written (PAX path or GNU long name when given) */
  name: string;
  type: EntryType;
  /** permission bits with setuid, setgid and sticky (mode & 0o7777) */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: TarTime;
  atime: TarTime | undefined;
  /** target of a symlink, or the member a hard link points to */
  linkname: string;
  devmajor: number;
  devminor: number;
  uname: string;
  gname: string;
  /** extended attributes, values as raw bytes */
  xattrs: Map<string, Buffer> | undefined;
  /** offset of the entry's header in the archive */
  offset: number;
}

export interface TarSink {
  entry(h: TarHeader): void;
  /** a piece of the current entry's contents (only for entries with a size) */
  data(chunk: Buffer): void;
  /** the current entry's contents are complete */
  endEntry(): void;
}

export class TarError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`invalid tar archive: ${message} (at byte ${offset})`);
    this.name = 'TarError';
  }
}

const BLOCK = 512;

const TYPES: Record<number, EntryType> = {
  0x30: 'file', // '0'
  0x00: 'file', // '\0' (old tar)
  0x37: 'file', // '7' contiguous
  0x31: 'link',
  0x32: 'symlink',
  0x33: 'char',
  0x34: 'block',
  0x35: 'dir',
  0x36: 'fifo',
};

const T_PAX = 0x78; // 'x'
const T_PAX_GLOBAL = 0x67; // 'g'
const T_GNU_LONGNAME = 0x4c; // 'L'
const T_GNU_LONGLINK = 0x4b; // 'K'

type State = 'header' | 'data' | 'meta' | 'padding' | 'eof';

interface Pending {
  pax: Map<string, Buffer> | undefined;
  longName: string | undefined;
  longLink: string | undefined;
}

export class TarReader {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  /** bytes of the current entry's data (or meta record) still to come */
  private remaining = 0;
  private padding = 0;
  private metaType = 0;
  private meta: Buffer[] = [];
  private pending: Pending = { pax: undefined, longName: undefined, longLink: undefined };
  private sawZeroBlock = false;
  private entryOpen = false;
  /** archive bytes consumed so far */
  offset = 0;
  private headerOffset = 0;

  constructor(private readonly sink: TarSink) {}

  /** True once the end-of-archive marker was read (what follows is ignored). */
  get done(): boolean {
    return this.state === 'eof';
  }

  write(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case 'eof':
          this.offset += len - pos;
          return;
        case 'header': {
          if (this.blockFill === 0 && len - pos >= BLOCK) {
            const hdr = chunk.subarray(pos, pos + BLOCK);
            pos += BLOCK;
            this.offset += BLOCK;
            this.header(hdr);
          } else {
            const n = Math.min(BLOCK - this.blockFill, len - pos);
            chunk.copy(this.block, this.blockFill, pos, pos + n);
            this.blockFill += n;
            pos += n;
            this.offset += n;
            if (this.blockFill === BLOCK) {
              this.blockFill = 0;
              this.header(this.block);
            }
          }
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, len - pos);
          this.sink.data(chunk.subarray(pos, pos + n));
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finishData();
          break;
        }
        case 'meta': {
          const n = Math.min(this.remaining, len - pos);
          this.meta.push(Buffer.from(chunk.subarray(pos, pos + n)));
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finishMeta();
          break;
        }
        case 'padding': {
          const n = Math.min(this.padding, len - pos);
          pos += n;
          this.offset += n;
          this.padding -= n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** The input ended: throws if it ended inside an entry. */
  end(): void {
    if (this.state === 'eof') return;
    if (this.state === 'header' && this.blockFill === 0 && !this.entryOpen) {
      // Like Go's archive/tar: an archive cut at an entry boundary (no
      // end-of-archive blocks) reads as complete.
      this.state = 'eof';
      return;
    }
    throw new TarError('unexpected end of archive', this.offset);
  }

  private header(hdr: Buffer): void {
    this.headerOffset = this.offset - BLOCK;
    if (isZero(hdr)) {
      if (this.sawZeroBlock) {
        this.state = 'eof';
        return;
      }
      this.sawZeroBlock = true;
      return;
    }
    if (this.sawZeroBlock) throw new TarError('data after the first end-of-archive block', this.headerOffset);
    verifyChecksum(hdr, this.headerOffset);
    const typeflag = hdr[156]!;
    const size = parseNumber(hdr, 124, 12, 'size', this.headerOffset);
    if (typeflag === T_PAX || typeflag === T_PAX_GLOBAL || typeflag === T_GNU_LONGNAME || typeflag === T_GNU_LONGLINK) {
      if (size > 1 << 20) throw new TarError(`extended header of ${size} bytes is larger than 1 MiB`, this.headerOffset);
      this.metaType = typeflag;
      this.meta = [];
      this.remaining = size;
      this.padding = pad(size);
      if (size === 0) this.finishMeta();
      else this.state = 'meta';
      return;
    }
    const type = TYPES[typeflag];
    if (type === undefined) {
      const shown = typeflag >= 0x20 && typeflag < 0x7f ? `'${String.fromCharCode(typeflag)}'` : `${typeflag}`;
      const why = typeflag === 0x53 ? ' (GNU sparse files are not supported)' : '';
      throw new TarError(`unsupported entry type ${shown}${why}`, this.headerOffset);
    }
    const h = this.decode(hdr, type, size);
    this.pending = { pax: undefined, longName: undefined, longLink: undefined };
    // As Go's archive/tar: only regular files have contents; the size field
    // of links, directories, devices and fifos is ignored (no data follows).
    if (h.type !== 'file') h.size = 0;
    this.entryOpen = true;
    this.sink.entry(h);
    if (h.size > 0) {
      this.remaining = h.size;
      this.padding = pad(h.size);
      this.state = 'data';
      return;
    }
    this.entryOpen = false;
    this.sink.endEntry();
    this.state = 'header';
  }

  private finishData(): void {
    this.entryOpen = false;
    this.sink.endEntry();
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  private finishMeta(): void {
    const body = this.meta.length === 1 ? this.meta[0]! : Buffer.concat(this.meta);
    this.meta = [];
    switch (this.metaType) {
      case T_PAX:
        this.pending.pax = parsePax(body, this.headerOffset);
        break;
      case T_PAX_GLOBAL:
        parsePax(body, this.headerOffset); // checked, then ignored (as containerd)
        break;
      case T_GNU_LONGNAME:
        this.pending.longName = cString(body, 0, body.length);
        break;
      case T_GNU_LONGLINK:
        this.pending.longLink = cString(body, 0, body.length);
        break;
    }
    this.entryOpen = true; // the extended header belongs to the next entry
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  private decode(hdr: Buffer, type: EntryType, size: number): TarHeader {
    const off = this.headerOffset;
    const magic = hdr.toString('latin1', 257, 263);
    let name = cString(hdr, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = cString(hdr, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const h: TarHeader = {
      name,
      type,
      mode: parseNumber(hdr, 100, 8, 'mode', off) & 0o7777,
      uid: parseNumber(hdr, 108, 8, 'uid', off),
      gid: parseNumber(hdr, 116, 8, 'gid', off),
      size,
      mtime: { sec: parseNumber(hdr, 136, 12, 'mtime', off), nsec: 0 },
      atime: undefined,
      linkname: cString(hdr, 157, 100),
      devmajor: type === 'char' || type === 'block' ? parseNumber(hdr, 329, 8, 'devmajor', off) : 0,
      devminor: type === 'char' || type === 'block' ? parseNumber(hdr, 337, 8, 'devminor', off) : 0,
      uname: cString(hdr, 265, 32),
      gname: cString(hdr, 297, 32),
      xattrs: undefined,
      offset: off,
    };
    const p = this.pending;
    if (p.longName !== undefined) h.name = p.longName;
    if (p.longLink !== undefined) h.linkname = p.longLink;
    if (p.pax) applyPax(h, p.pax, off);
    return h;
  }
}

function pad(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

function isZero(b: Buffer): boolean {
  // 8 bytes at a time
  for (let i = 0; i < BLOCK; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

function cString(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  const stop = end < 0 || end > start + len ? start + len : end;
  return b.toString('utf8', start, stop);
}

function verifyChecksum(hdr: Buffer, off: number): void {
  const stored = parseNumber(hdr, 148, 8, 'checksum', off);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : hdr[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) throw new TarError(`header checksum ${stored} does not match the header (${unsigned})`, off);
}

/** An octal field (spaces and NULs around it) or GNU base-256 (high bit set). */
export function parseNumber(b: Buffer, start: number, len: number, what: string, off: number): number {
  const first = b[start]!;
  if (first & 0x80) {
    // base-256, two's complement; negative values are refused
    if (first & 0x40) throw new TarError(`negative ${what}`, off);
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + b[start + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw new TarError(`${what} too large`, off);
    }
    return v;
  }
  let i = start;
  const end = start + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const ch = b[i]!;
    if (ch === 0x20 || ch === 0) break;
    if (ch < 0x30 || ch > 0x37) throw new TarError(`${what} field is not an octal number: ${JSON.stringify(b.toString('latin1', start, end))}`, off);
    v = v * 8 + (ch - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    const ch = b[i]!;
    if (ch !== 0x20 && ch !== 0) throw new TarError(`${what} field is not an octal number: ${JSON.stringify(b.toString('latin1', start, end))}`, off);
  }
  return digits === 0 ? 0 : v;
}

/** PAX records "LEN KEY=VALUE\n"; values kept as raw bytes. */
export function parsePax(body: Buffer, off: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // NUL padding after the records
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) throw new TarError('malformed PAX record (no length)', off);
    const lenText = body.toString('latin1', pos, sp);
    if (!/^[0-9]+$/.test(lenText)) throw new TarError(`malformed PAX record length ${JSON.stringify(lenText)}`, off);
    const recLen = Number(lenText);
    const end = pos + recLen;
    if (recLen <= sp - pos + 1 || end > body.length || body[end - 1] !== 0x0a) throw new TarError('malformed PAX record (bad length)', off);
    const eq = body.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end) throw new TarError('malformed PAX record (no "=")', off);
    const key = body.toString('utf8', sp + 1, eq);
    out.set(key, body.subarray(eq + 1, end - 1));
    pos = end;
  }
  return out;
}

function paxInt(v: Buffer, key: string, off: number): number {
  const s = v.toString('latin1');
  if (!/^[0-9]+$/.test(s)) throw new TarError(`PAX ${key} ${JSON.stringify(s)} is not a number`, off);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new TarError(`PAX ${key} ${s} too large`, off);
  return n;
}

/** "1234.5678" -> {sec, nsec}; negative times are clamped at 0. */
export function paxTime(v: Buffer, key: string, off: number): TarTime {
  const s = v.toString('latin1');
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(s);
  if (!m) throw new TarError(`PAX ${key} ${JSON.stringify(s)} is not a time`, off);
  if (m[1]) return { sec: 0, nsec: 0 };
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  return { sec: Number(m[2]), nsec: Number(frac) };
}

function applyPax(h: TarHeader, pax: Map<string, Buffer>, off: number): void {
  for (const [key, v] of pax) {
    switch (key) {
      case 'path':
        h.name = v.toString('utf8');
        break;
      case 'linkpath':
        h.linkname = v.toString('utf8');
        break;
      case 'size':
        h.size = paxInt(v, key, off);
        break;
      case 'uid':
        h.uid = paxInt(v, key, off);
        break;
      case 'gid':
        h.gid = paxInt(v, key, off);
        break;
      case 'uname':
        h.uname = v.toString('utf8');
        break;
      case 'gname':
        h.gname = v.toString('utf8');
        break;
      case 'mtime':
        h.mtime = paxTime(v, key, off);
        break;
      case 'atime':
        h.atime = paxTime(v, key, off);
        break;
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          (h.xattrs ??= new Map()).set(key.slice('SCHILY.xattr.'.length), Buffer.from(v));
        } else if (key.startsWith('LIBARCHIVE.xattr.')) {
          const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
          (h.xattrs ??= new Map()).set(name, Buffer.from(v.toString('latin1'), 'base64'));
        } else if (key.startsWith('GNU.sparse.')) {
          throw new TarError('GNU sparse files are not supported', off);
        }
    }
  }
}
