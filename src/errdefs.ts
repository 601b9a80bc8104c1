// Error classes as containerd's errdefs defines them. A message reads like
// containerd's: `container "web" in namespace "default": not found` (the
// class last), and the gRPC layer maps the class to a status code the way
// errdefs.ToGRPC does. Stores and services throw these; nothing here knows
// gRPC.

export type ErrClass =
  | 'invalid argument'
  | 'not found'
  | 'already exists'
  | 'failed precondition'
  | 'unavailable'
  | 'not implemented'
  | 'canceled'
  | 'deadline exceeded'
  | 'unknown';

export class ErrdefsError extends Error {
  /** the message without the class suffix */
  readonly detail: string;

  constructor(
    readonly errClass: ErrClass,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${detail}: ${errClass}` : errClass, options);
    this.name = 'ErrdefsError';
    this.detail = detail;
  }
}

export const invalidArgument = (msg: string): ErrdefsError => new ErrdefsError('invalid argument', msg);
export const notFound = (msg: string): ErrdefsError => new ErrdefsError('not found', msg);
export const alreadyExists = (msg: string): ErrdefsError => new ErrdefsError('already exists', msg);
export const failedPrecondition = (msg: string): ErrdefsError => new ErrdefsError('failed precondition', msg);
export const unavailable = (msg: string): ErrdefsError => new ErrdefsError('unavailable', msg);
export const notImplemented = (msg: string): ErrdefsError => new ErrdefsError('not implemented', msg);

export function errClassOf(e: unknown): ErrClass | undefined {
  return e instanceof ErrdefsError ? e.errClass : undefined;
}

export const isInvalidArgument = (e: unknown): boolean => errClassOf(e) === 'invalid argument';
export const isNotFound = (e: unknown): boolean => errClassOf(e) === 'not found';
export const isAlreadyExists = (e: unknown): boolean => errClassOf(e) === 'already exists';
export const isFailedPrecondition = (e: unknown): boolean => errClassOf(e) === 'failed precondition';

/**
 * Adds context in front of an error and keeps its class, as Go's
 * fmt.Errorf("context: %w", err) does: `create container failed validation:
 * container.ID: identifier "" must not be empty: invalid argument`.
 */
export function wrap(e: unknown, context: string): Error {
  if (e instanceof ErrdefsError) return new ErrdefsError(e.errClass, `${context}: ${e.detail}`, { cause: e });
  const msg = e instanceof Error ? e.message : String(e);
  return new Error(`${context}: ${msg}`, { cause: e });
}
