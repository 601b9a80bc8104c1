// A gRPC client of tsrund (or containerd) from the same protobuf-es
// descriptors the daemon serves: connect(address) and then
// conn.service(Containers).get({ id }) and friends, with the namespace sent
// in the containerd-namespace header.
//
//   unary            (req?, opts?) => Promise<Response>
//   server streaming (req?, opts?) => AsyncIterable<Response> & { cancel() }
//   client/bidi      (opts?) => grpc-js duplex of request init objects / responses
//
// Failed calls reject with grpc-js ServiceErrors (code, details).
import * as grpc from '@grpc/grpc-js';
import type { DescMessage, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { LEASE_HEADER, methodDefinition, NAMESPACE_HEADER } from '../daemon/grpc.js';

export { NAMESPACE_HEADER, LEASE_HEADER };

export interface CallOptions {
  /** overrides the connection's namespace for this call ("" sends none) */
  namespace?: string;
  lease?: string;
  metadata?: Record<string, string>;
  /** ms from now, or a Date */
  deadline?: number | Date;
  signal?: AbortSignal;
}

export type ServerStream<T> = AsyncIterable<T> & { cancel(): void };

type ClientMethod<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (req?: MessageInitShape<I>, opts?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (req?: MessageInitShape<I>, opts?: CallOptions) => ServerStream<MessageShape<O>>
    : M extends { methodKind: 'client_streaming' | 'bidi_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (opts?: CallOptions) => grpc.ClientDuplexStream<MessageInitShape<I>, MessageShape<O>>
      : never;

export type ServiceClient<S extends DescService> = { [K in keyof S['method']]: ClientMethod<S['method'][K]> };

export interface ConnectOptions {
  /** default namespace of every call (containerd-namespace header) */
  namespace?: string;
  /** give up connecting after this many ms (default 10 s, as containerd's client) */
  connectTimeoutMs?: number;
}

/** A unix socket path (or unix:// address) as grpc-js wants it. */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix:')) return address;
  return `unix:${address}`;
}

export class Connection {
  readonly client: grpc.Client;

  constructor(
    readonly address: string,
    readonly opts: ConnectOptions = {},
  ) {
    this.client = new grpc.Client(grpcTarget(address), grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 16 << 20,
      'grpc.max_send_message_length': 16 << 20,
    });
  }

  /** Resolves once connected; rejects with a plain message when nobody answers. */
  ready(timeoutMs = this.opts.connectTimeoutMs ?? 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (e) =>
        e ? reject(new Error(`failed to dial ${JSON.stringify(this.address)}: ${e.message}`)) : resolve(),
      );
    });
  }

  close(): void {
    this.client.close();
  }

  service<S extends DescService>(service: S): ServiceClient<S> {
    const out: Record<string, unknown> = {};
    for (const method of service.methods) {
      const def = methodDefinition(method);
      const meta = (o: CallOptions = {}): grpc.Metadata => {
        const md = new grpc.Metadata();
        const ns = o.namespace ?? this.opts.namespace;
        if (ns) md.set(NAMESPACE_HEADER, ns);
        if (o.lease) md.set(LEASE_HEADER, o.lease);
        for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
        return md;
      };
      const callOpts = (o: CallOptions = {}): grpc.CallOptions => {
        const c: grpc.CallOptions = {};
        if (o.deadline !== undefined) c.deadline = typeof o.deadline === 'number' ? Date.now() + o.deadline : o.deadline;
        return c;
      };
      switch (method.methodKind) {
        case 'unary':
          out[method.localName] = (req: unknown = {}, o: CallOptions = {}) =>
            new Promise((resolve, reject) => {
              const call = this.client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, req, meta(o), callOpts(o), (e, res) =>
                e ? reject(e) : resolve(res),
              );
              o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
            });
          break;
        case 'server_streaming':
          out[method.localName] = (req: unknown = {}, o: CallOptions = {}) => {
            const call = this.client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, req, meta(o), callOpts(o));
            o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
            return call; // a Readable of responses: async-iterable, with cancel()
          };
          break;
        default:
          out[method.localName] = (o: CallOptions = {}) => {
            const call = this.client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, meta(o), callOpts(o));
            o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
            return call;
          };
      }
    }
    return out as ServiceClient<S>;
  }
}

export function connect(address: string, opts: ConnectOptions = {}): Connection {
  return new Connection(address, opts);
}

/** The gRPC status name of an error from a call ("NOT_FOUND"), if it has one. */
export function statusName(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'number' ? grpc.status[code] : undefined;
}
