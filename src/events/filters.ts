// containerd's filter language (pkg/filters), used by event subscriptions and
// by every List call that takes filters:
//
//   selectors := selector ("," selector)*          all must match (AND)
//   selector  := fieldpath [operator value]        no operator: field is present
//   fieldpath := field ("." field)*
//   field     := quoted | [A-Za-z0-9_]+
//   operator  := "==" | "!=" | "~="                 ~= is an unanchored regexp
//   value     := quoted | [^\s,]+
//   quoted    := "..." (Go escapes); with ~= also /.../ or |...|
//
// Several filter strings are OR'ed (parseFilters). The scanner and parser
// follow containerd's closely, so that the same strings are accepted and the
// same ones refused, with the same error text.
import { invalidArgument } from '../errdefs.js';

/**
 * Looks a field path up on the object being matched: the value, or
 * undefined when the field is not present (containerd's (value, false)).
 */
export type FieldGetter = (fieldpath: readonly string[]) => string | undefined;

export interface Filter {
  match(get: FieldGetter): boolean;
}

type Operator = 'present' | '==' | '!=' | '~=';

interface Selector {
  fieldpath: string[];
  operator: Operator;
  value: string;
  re?: RegExp;
}

const ALWAYS: Filter = { match: () => true };

class All implements Filter {
  constructor(readonly selectors: Selector[]) {}
  match(get: FieldGetter): boolean {
    return this.selectors.every((s) => matchSelector(s, get));
  }
}

class AnyOf implements Filter {
  constructor(readonly filters: Filter[]) {}
  match(get: FieldGetter): boolean {
    return this.filters.some((f) => f.match(get));
  }
}

function matchSelector(s: Selector, get: FieldGetter): boolean {
  const v = get(s.fieldpath);
  switch (s.operator) {
    case 'present':
      return v !== undefined;
    case '==':
      return v !== undefined && v === s.value;
    case '!=':
      return (v ?? '') !== s.value;
    case '~=':
      return s.re!.test(v ?? '');
  }
}

/** A filter that matches everything. */
export function alwaysFilter(): Filter {
  return ALWAYS;
}

/** Parses one filter string (selectors joined by commas; "" matches all). */
export function parseFilter(input: string): Filter {
  if (input === '') return ALWAYS;
  return new Parser(input).parse();
}

/**
 * Parses filter strings into one filter that matches when any of them does;
 * no strings match everything. Errors are InvalidArgument, with containerd's
 * text: `filters: parse error: [labels. >|=|< =x]: expected field or quoted`.
 */
export function parseFilters(inputs: readonly string[]): Filter {
  if (inputs.length === 0) return ALWAYS;
  const fs = inputs.map((s) => {
    try {
      return parseFilter(s);
    } catch (e) {
      if (e instanceof FilterParseError) throw invalidArgument(e.message);
      throw e;
    }
  });
  return fs.length === 1 ? fs[0]! : new AnyOf(fs);
}

export class FilterParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterParseError';
  }
}

/** Looks a dotted path up in a string map: present if the key exists. */
export function mapField(fieldpath: readonly string[], m: Record<string, string> | undefined): string | undefined {
  if (!m) return undefined;
  const key = fieldpath.join('.');
  return Object.prototype.hasOwnProperty.call(m, key) ? m[key] : undefined;
}

/** A string field as containerd's generated adaptors report it: present when non-empty. */
export function stringField(v: string | undefined): string | undefined {
  return v ? v : undefined;
}

// ---- scanner ----

const EOF = -1;
const QUOTED = -2;
const VALUE = -3;
const FIELD = -4;
const SEPARATOR = -5;
const OPERATOR = -6;
const ILLEGAL = -7;

const cp = (c: string): number => c.codePointAt(0)!;
const C_COMMA = cp(',');
const C_DOT = cp('.');
const C_BACKSLASH = cp('\\');
const C_NEWLINE = cp('\n');

function isFieldRune(r: number): boolean {
  return r === 0x5f || (r >= 0x41 && r <= 0x5a) || (r >= 0x61 && r <= 0x7a) || (r >= 0x30 && r <= 0x39);
}
function isOperatorRune(r: number): boolean {
  return r === cp('=') || r === cp('!') || r === cp('~');
}
function isQuoteRune(r: number): boolean {
  return r === cp('/') || r === cp('|') || r === cp('"');
}
function isSeparatorRune(r: number): boolean {
  return r === C_COMMA || r === C_DOT;
}
function isSpace(r: number): boolean {
  if (r < 0) return false;
  return r === 0x85 || /\s/u.test(String.fromCodePoint(r));
}
const GRAPHIC = /[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]/u;
function isValueRune(r: number): boolean {
  return r >= 0 && r !== C_COMMA && !isSpace(r) && GRAPHIC.test(String.fromCodePoint(r));
}
function digitVal(r: number): number {
  if (r >= 0x30 && r <= 0x39) return r - 0x30;
  if (r >= 0x61 && r <= 0x66) return r - 0x61 + 10;
  if (r >= 0x41 && r <= 0x46) return r - 0x41 + 10;
  return 16;
}

class Scanner {
  pos = 0;
  ppos = 0;
  value = false;
  err = '';

  constructor(readonly input: string) {}

  next(): number {
    if (this.pos >= this.input.length) return EOF;
    this.pos = this.ppos;
    const r = this.input.codePointAt(this.ppos);
    if (r === undefined) return EOF;
    this.ppos += r > 0xffff ? 2 : 1;
    if (r === 0) {
      this.error('unexpected null');
      return ILLEGAL;
    }
    return r;
  }

  peek(): number {
    const { pos, ppos } = this;
    const ch = this.next();
    this.pos = pos;
    this.ppos = ppos;
    return ch;
  }

  scan(): [pos: number, tok: number, text: string] {
    let ch = this.next();
    let pos = this.pos;
    for (;;) {
      if (ch === EOF || ch === ILLEGAL) break;
      if (isQuoteRune(ch)) {
        if (!this.scanQuoted(ch)) return [pos, ILLEGAL, this.input.slice(pos, this.ppos)];
        return [pos, QUOTED, this.input.slice(pos, this.ppos)];
      }
      if (isSeparatorRune(ch)) {
        this.value = false;
        return [pos, SEPARATOR, this.input.slice(pos, this.ppos)];
      }
      if (isOperatorRune(ch)) {
        this.scanOperator();
        this.value = true;
        return [pos, OPERATOR, this.input.slice(pos, this.ppos)];
      }
      if (isSpace(ch)) {
        ch = this.next();
        pos = this.pos;
        continue;
      }
      if (this.value) {
        this.scanWhile(isValueRune);
        this.value = false;
        return [pos, VALUE, this.input.slice(pos, this.ppos)];
      }
      if (isFieldRune(ch)) {
        this.scanWhile(isFieldRune);
        return [pos, FIELD, this.input.slice(pos, this.ppos)];
      }
      break;
    }
    return [this.pos, ch, ''];
  }

  private scanWhile(pred: (r: number) => boolean): void {
    while (pred(this.peek())) this.next();
  }

  private scanOperator(): void {
    while (isOperatorRune(this.peek())) this.next();
  }

  private scanQuoted(quote: number): boolean {
    let illegal = false;
    let ch = this.next();
    while (ch !== quote) {
      if (ch === C_NEWLINE || ch < 0) {
        this.error('quoted literal not terminated');
        return false;
      }
      if (ch === C_BACKSLASH) {
        let legal: boolean;
        [ch, legal] = this.scanEscape(quote);
        if (!legal) illegal = true;
      } else {
        ch = this.next();
      }
    }
    return !illegal;
  }

  private scanEscape(quote: number): [number, boolean] {
    const ch = this.next();
    if (ch === quote || (ch > 0 && 'abfnrtv\\'.includes(String.fromCodePoint(ch)))) return [this.next(), true];
    if (ch >= 0x30 && ch <= 0x37) return this.scanDigits(ch, 8, 3);
    if (ch === cp('x')) return this.scanDigits(this.next(), 16, 2);
    if (ch === cp('u')) return this.scanDigits(this.next(), 16, 4);
    if (ch === cp('U')) return this.scanDigits(this.next(), 16, 8);
    this.error('illegal escape sequence');
    return [ch, false];
  }

  private scanDigits(ch: number, base: number, n: number): [number, boolean] {
    while (n > 0 && digitVal(ch) < base) {
      ch = this.next();
      n--;
    }
    if (n > 0) {
      this.error('illegal numeric escape sequence');
      return [ch, false];
    }
    return [ch, true];
  }

  private error(msg: string): void {
    if (this.err === '') this.err = msg;
  }
}

// ---- parser ----

class Parser {
  private readonly scanner: Scanner;

  constructor(private readonly input: string) {
    this.scanner = new Scanner(input);
  }

  parse(): Filter {
    try {
      return this.selectors();
    } catch (e) {
      if (e instanceof FilterParseError) throw new FilterParseError(`filters: ${e.message}`);
      throw e;
    }
  }

  private selectors(): Filter {
    const ss = [this.selector()];
    for (;;) {
      const tok = this.scanner.peek();
      if (tok === C_COMMA) {
        const [pos, t] = this.scanner.scan();
        if (t !== SEPARATOR) throw this.mkerr(pos, 'expected a separator');
        ss.push(this.selector());
      } else if (tok === EOF) {
        break;
      } else {
        throw this.mkerr(this.scanner.ppos, `unexpected input: ${tok < 0 ? '' : String.fromCodePoint(tok)}`);
      }
    }
    return new All(ss);
  }

  private selector(): Selector {
    const fieldpath = this.fieldpath();
    const next = this.scanner.peek();
    if (next === C_COMMA || next === EOF) return { fieldpath, operator: 'present', value: '' };
    const operator = this.operator();
    const value = this.value(operator === '~=');
    const sel: Selector = { fieldpath, operator, value };
    if (operator === '~=') {
      try {
        sel.re = compileRegexp(value);
      } catch (e) {
        throw this.mkerr(this.scanner.pos, (e as Error).message);
      }
    }
    return sel;
  }

  private fieldpath(): string[] {
    const fs = [this.field()];
    while (this.scanner.peek() === C_DOT) {
      const [pos, tok] = this.scanner.scan();
      if (tok !== SEPARATOR) throw this.mkerr(pos, 'expected a field separator (`.`)');
      fs.push(this.field());
    }
    return fs;
  }

  private field(): string {
    const [pos, tok, s] = this.scanner.scan();
    if (tok === FIELD) return s;
    if (tok === QUOTED) return this.unquote(pos, s, false);
    if (tok === ILLEGAL) throw this.mkerr(pos, this.scanner.err);
    throw this.mkerr(pos, 'expected field or quoted');
  }

  private operator(): Operator {
    const [pos, tok, s] = this.scanner.scan();
    if (tok === OPERATOR) {
      if (s === '==' || s === '!=' || s === '~=') return s;
      throw this.mkerr(pos, `unsupported operator ${JSON.stringify(s)}`);
    }
    if (tok === ILLEGAL) throw this.mkerr(pos, this.scanner.err);
    throw this.mkerr(pos, 'expected an operator ("=="|"!="|"~=")');
  }

  private value(allowAltQuotes: boolean): string {
    const [pos, tok, s] = this.scanner.scan();
    if (tok === VALUE || tok === FIELD) return s;
    if (tok === QUOTED) return this.unquote(pos, s, allowAltQuotes);
    if (tok === ILLEGAL) throw this.mkerr(pos, this.scanner.err);
    throw this.mkerr(pos, 'expected value or quoted');
  }

  private unquote(pos: number, s: string, allowAlts: boolean): string {
    if (!allowAlts && s[0] !== "'" && s[0] !== '"') throw this.mkerr(pos, 'invalid quote encountered');
    try {
      return unquote(s);
    } catch (e) {
      throw this.mkerr(pos, `unquoting failed: ${(e as Error).message}`);
    }
  }

  private mkerr(pos: number, msg: string): FilterParseError {
    const input = this.input;
    if (pos < input.length) {
      return new FilterParseError(`parse error: [${input.slice(0, pos)} >|${input.slice(pos, pos + 1)}|< ${input.slice(pos + 1)}]: ${msg}`);
    }
    return new FilterParseError(`parse error: [${input}]: ${msg}`);
  }
}

/** Go's strconv.Unquote, extended to | and / quotes as containerd does. */
function unquote(s: string): string {
  const syntax = (): Error => new Error('quote syntax error');
  if (s.length < 2) throw syntax();
  const quote = s[0]!;
  if (quote !== s[s.length - 1]) throw syntax();
  const body = s.slice(1, -1);
  if (!'"\'|/'.includes(quote) || body.includes('\n')) throw syntax();
  if (!body.includes('\\') && !body.includes(quote)) return body;
  let out = '';
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === quote) throw syntax();
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) throw syntax();
    i += 2;
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };
    if (e in simple) {
      out += simple[e];
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i, i + n);
      if (hex.length < n || !/^[0-9a-fA-F]+$/.test(hex)) throw syntax();
      const v = parseInt(hex, 16);
      if (v > 0x10ffff) throw syntax();
      out += String.fromCodePoint(v);
      i += n;
    } else if (e >= '0' && e <= '7') {
      const oct = e + body.slice(i, i + 2);
      if (!/^[0-7]{3}$/.test(oct)) throw syntax();
      const v = parseInt(oct, 8);
      if (v > 255) throw syntax();
      out += String.fromCharCode(v);
      i += 2;
    } else if (e === quote) {
      out += e;
    } else {
      throw syntax();
    }
  }
  return out;
}

/**
 * Compiles a ~= value. Go's RE2 syntax is close to JavaScript's; leading
 * flag groups such as (?i) become JavaScript flags.
 */
function compileRegexp(src: string): RegExp {
  let flags = '';
  const m = /^\(\?([imsU]+)\)/.exec(src);
  if (m) {
    for (const f of m[1]!) if ('ims'.includes(f) && !flags.includes(f)) flags += f;
    src = src.slice(m[0].length);
  }
  try {
    return new RegExp(src, `${flags}u`);
  } catch {
    try {
      return new RegExp(src, flags);
    } catch (e) {
      throw new Error(`invalid regular expression ${JSON.stringify(src)}: ${(e as Error).message}`);
    }
  }
}
