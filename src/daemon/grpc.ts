// Serves protobuf-es v2 service descriptors on @grpc/grpc-js. A service is
// implemented as an object of handlers keyed by the method's local name
// (camelCase), each given the decoded request and a CallContext:
//
//   unary              (req, ctx) => Response | Promise<Response>
//   server streaming   (req, ctx) => AsyncIterable<Response>
//   client streaming   (reqs: AsyncIterable<Request>, ctx) => Promise<Response>
//   bidi streaming     (reqs: AsyncIterable<Request>, ctx) => AsyncIterable<Response>
//
// Responses may be plain init objects ({ container: {...} }). Thrown
// ErrdefsErrors become gRPC statuses as containerd's errdefs.ToGRPC maps
// them; other errors become UNKNOWN with their message. Methods without a
// handler answer UNIMPLEMENTED.
import type { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { ErrdefsError, failedPrecondition, wrap, type ErrClass } from '../errdefs.js';
import { validateIdentifier } from '../identifiers.js';

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

export interface CallContext {
  /** "/containerd.services.containers.v1.Containers/Create" */
  readonly path: string;
  /** the containerd-namespace header, if any */
  readonly namespace: string | undefined;
  /** the containerd-lease header, if any */
  readonly lease: string | undefined;
  readonly metadata: grpc.Metadata;
  /** aborted when the client cancels or goes away, or the daemon stops */
  readonly signal: AbortSignal;
  /** The namespace, validated; FailedPrecondition "namespace is required" without one. */
  requireNamespace(): string;
}

type Init<D extends DescMessage> = MessageInitShape<D> | MessageShape<D>;

type HandlerOf<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (req: MessageShape<I>, ctx: CallContext) => Init<O> | Promise<Init<O>>
  : M extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (req: MessageShape<I>, ctx: CallContext) => AsyncIterable<Init<O>>
    : M extends { methodKind: 'client_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (reqs: AsyncIterable<MessageShape<I>>, ctx: CallContext) => Promise<Init<O>>
      : M extends { methodKind: 'bidi_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
        ? (reqs: AsyncIterable<MessageShape<I>>, ctx: CallContext) => AsyncIterable<Init<O>>
        : never;

/** Handlers for some or all methods of a service (the rest answer UNIMPLEMENTED). */
export type ServiceImpl<S extends DescService> = { [K in keyof S['method']]?: HandlerOf<S['method'][K]> };

export interface AdapterOptions {
  /** aborts every call's signal (daemon shutdown) */
  signal?: AbortSignal;
  /** told about every call that fails, with the status sent */
  onError?: (path: string, err: unknown, status: { code: grpc.status; details: string }) => void;
}

const CODE_OF: Record<ErrClass, grpc.status> = {
  'invalid argument': grpc.status.INVALID_ARGUMENT,
  'not found': grpc.status.NOT_FOUND,
  'already exists': grpc.status.ALREADY_EXISTS,
  'failed precondition': grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
  'not implemented': grpc.status.UNIMPLEMENTED,
  canceled: grpc.status.CANCELLED,
  'deadline exceeded': grpc.status.DEADLINE_EXCEEDED,
  unknown: grpc.status.UNKNOWN,
};

/** The gRPC status for an error, as errdefs.ToGRPC maps it. */
export function toStatus(err: unknown): { code: grpc.status; details: string } {
  if (err instanceof ErrdefsError) return { code: CODE_OF[err.errClass], details: err.message };
  if (isStatusError(err)) return { code: err.code, details: err.details ?? err.message };
  return { code: grpc.status.UNKNOWN, details: err instanceof Error ? err.message : String(err) };
}

function isStatusError(err: unknown): err is { code: grpc.status; details?: string; message: string } {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && code >= 0 && code <= 16 && 'details' in err;
}

function toServiceError(status: { code: grpc.status; details: string }): grpc.ServiceError {
  return Object.assign(new Error(status.details), { code: status.code, details: status.details, metadata: new grpc.Metadata() });
}

function header(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.toString('utf8');
}

/** Checks a namespace as containerd's namespaces.NamespaceRequired does. */
export function requireNamespace(namespace: string | undefined): string {
  if (!namespace) throw failedPrecondition('namespace is required');
  try {
    validateIdentifier(namespace);
  } catch (e) {
    throw wrap(e, 'namespace validation');
  }
  return namespace;
}

interface LiveCall {
  metadata: grpc.Metadata;
  on(event: 'cancelled', fn: () => void): unknown;
  removeListener(event: 'cancelled', fn: () => void): unknown;
}

function callContext(path: string, call: LiveCall, daemon: AbortSignal | undefined): CallContext & { dispose(): void } {
  const ac = new AbortController();
  const onCancel = (): void => ac.abort(new ErrdefsError('canceled', 'the client cancelled the call'));
  const onStop = (): void => ac.abort(new ErrdefsError('unavailable', 'tsrund is shutting down'));
  call.on('cancelled', onCancel);
  if (daemon?.aborted) onStop();
  else daemon?.addEventListener('abort', onStop, { once: true });
  const namespace = header(call.metadata, NAMESPACE_HEADER);
  return {
    path,
    namespace,
    lease: header(call.metadata, LEASE_HEADER),
    metadata: call.metadata,
    signal: ac.signal,
    requireNamespace: () => requireNamespace(namespace),
    dispose: () => {
      call.removeListener('cancelled', onCancel);
      daemon?.removeEventListener('abort', onStop);
    },
  };
}

function serializer(desc: DescMessage): (m: unknown) => Buffer {
  return (m) => {
    const msg = isMessage(m, desc) ? m : create(desc, m as MessageInitShape<DescMessage>);
    return Buffer.from(toBinary(desc, msg));
  };
}

function deserializer(desc: DescMessage): (b: Buffer) => unknown {
  return (b) => fromBinary(desc, b);
}

/** The grpc-js definition of a method (also used by the client side). */
export function methodDefinition(method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
    originalName: method.localName,
  };
}

/** Waits until a writable can take more, or the call ends. */
/**
 * The requests of a client or bidi stream. Node's own async iterator of a
 * Readable destroys the stream when it reaches the end, which would drop
 * the call's answer after the client half-closes; this one leaves it open.
 */
function requests(call: Readable): AsyncIterable<unknown> {
  return { [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) };
}

function drained(stream: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.removeListener('drain', done);
      stream.removeListener('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

type AnyHandler = (...args: never[]) => unknown;

/** Builds the grpc-js definition and handlers of the implemented methods. */
export function serviceDefinition<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  opts: AdapterOptions = {},
): { definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  const fail = (path: string, err: unknown): grpc.ServiceError => {
    const status = toStatus(err);
    opts.onError?.(path, err, status);
    return toServiceError(status);
  };

  for (const method of service.methods) {
    const fn = (impl as Record<string, AnyHandler | undefined>)[method.localName] as
      | ((a: unknown, ctx: CallContext) => unknown)
      | undefined;
    if (!fn) continue;
    const def = methodDefinition(method);
    const path = def.path;
    definition[method.name] = def;

    switch (method.methodKind) {
      case 'unary':
        handlers[method.name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const ctx = callContext(path, call, opts.signal);
          Promise.resolve()
            .then(() => fn(call.request, ctx))
            .then(
              (res) => callback(null, res),
              (err: unknown) => callback(fail(path, err)),
            )
            .finally(() => ctx.dispose());
        }) as grpc.handleUnaryCall<unknown, unknown>;
        break;

      case 'client_streaming':
        handlers[method.name] = ((call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const ctx = callContext(path, call, opts.signal);
          Promise.resolve()
            .then(() => fn(requests(call), ctx))
            .then(
              (res) => callback(null, res),
              (err: unknown) => callback(fail(path, err)),
            )
            .finally(() => ctx.dispose());
        }) as grpc.handleClientStreamingCall<unknown, unknown>;
        break;

      case 'server_streaming':
      case 'bidi_streaming':
        handlers[method.name] = ((call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => {
          const ctx = callContext(path, call, opts.signal);
          const input = method.methodKind === 'bidi_streaming' ? requests(call as grpc.ServerDuplexStream<unknown, unknown>) : (call as grpc.ServerWritableStream<unknown, unknown>).request;
          void (async () => {
            try {
              const out = fn(input, ctx) as AsyncIterable<unknown>;
              for await (const msg of out) {
                if (call.cancelled) break;
                if (!call.write(msg)) await drained(call, ctx.signal);
              }
              if (!call.cancelled) call.end();
            } catch (err) {
              if (!call.cancelled) call.emit('error', fail(path, err));
            } finally {
              ctx.dispose();
            }
          })();
        }) as grpc.handleServerStreamingCall<unknown, unknown>;
        break;
    }
  }
  return { definition, handlers };
}

/** Adds the implemented methods of a service to a grpc-js server. */
export function addService<S extends DescService>(server: grpc.Server, service: S, impl: ServiceImpl<S>, opts: AdapterOptions = {}): void {
  const { definition, handlers } = serviceDefinition(service, impl, opts);
  if (Object.keys(definition).length) server.addService(definition, handlers);
}
