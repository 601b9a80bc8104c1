// Any values as containerd writes them (its typeurl package): a protobuf
// message goes under its full name with no "type.googleapis.com/" prefix
// ("containerd.events.TaskExit"); the OCI runtime-spec types are JSON under
// "types.containerd.io/opencontainers/runtime-spec/1/<Type>".
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape, type Registry } from '@bufbuild/protobuf';
import { AnySchema, anyUnpack, type Any } from '@bufbuild/protobuf/wkt';
import { invalidArgument } from './errdefs.js';

export const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
export const PROCESS_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
export const LINUX_RESOURCES_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';
export const WINDOWS_RESOURCES_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/WindowsResources';

/** Packs a message into an Any with containerd's type URL (the bare full name). */
export function packAny<D extends DescMessage>(schema: D, msg: MessageInitShape<D>): Any {
  const m = create(schema, msg);
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, m) });
}

/** The message name an Any carries: the type URL after its last "/". */
export function anyTypeName(any: Any): string {
  const slash = any.typeUrl.lastIndexOf('/');
  return slash >= 0 ? any.typeUrl.slice(slash + 1) : any.typeUrl;
}

/** Unpacks an Any of a known schema; undefined if the type differs. */
export function unpackAny<D extends DescMessage>(any: Any, schema: D): MessageShape<D> | undefined {
  if (anyTypeName(any) !== schema.typeName) return undefined;
  return fromBinary(schema, any.value);
}

/** Unpacks an Any whose type is in the registry; undefined when unknown or undecodable. */
export function unpackAnyWith(any: Any, registry: Registry): ReturnType<typeof anyUnpack> {
  try {
    return anyUnpack(any, registry);
  } catch {
    return undefined;
  }
}

/** Packs a JSON value (runtime-spec Spec, Process, LinuxResources) under its type URL. */
export function packJson(typeUrl: string, value: unknown): Any {
  return create(AnySchema, { typeUrl, value: new TextEncoder().encode(JSON.stringify(value)) });
}

/**
 * Reads an Any holding JSON of the expected type URL. `what` names the field
 * in errors: `container.Spec: type URL "x" is not "types.containerd.io/..."`.
 */
export function unpackJson(any: Any | undefined, typeUrl: string, what: string): unknown {
  if (!any) throw invalidArgument(`${what} must be set`);
  if (any.typeUrl !== typeUrl) throw invalidArgument(`${what}: type URL ${JSON.stringify(any.typeUrl)} is not ${JSON.stringify(typeUrl)}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(any.value);
  } catch {
    throw invalidArgument(`${what}: value is not UTF-8 JSON`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalidArgument(`${what}: value is not valid JSON: ${(e as Error).message}`);
  }
}
