// Field lookup on protobuf-es messages for filters, as containerd's
// generated Field() methods do it: string fields by their proto name (present
// when non-empty), nested messages, map<string,string> by the rest of the
// path ("labels.a.b" looks up key "a.b"), and Any fields unpacked through a
// registry ("event.container_id" on an Envelope). Other kinds (numbers,
// enums, lists, timestamps) are not matchable, as in containerd.
import { ScalarType, type DescMessage, type Message, type Registry } from '@bufbuild/protobuf';
import type { Any } from '@bufbuild/protobuf/wkt';
import { mapField, type FieldGetter } from './filters.js';
import { unpackAnyWith } from '../typeurl.js';

export function messageFieldGetter(desc: DescMessage, msg: Message, registry?: Registry): FieldGetter {
  return (path) => lookup(desc, msg, path, registry);
}

function lookup(desc: DescMessage, msg: Message, path: readonly string[], registry: Registry | undefined): string | undefined {
  if (path.length === 0) return undefined;
  const field = desc.fields.find((f) => f.name === path[0]);
  if (!field) return undefined;
  const value = (msg as unknown as Record<string, unknown>)[field.localName];
  const rest = path.slice(1);
  switch (field.fieldKind) {
    case 'scalar':
      if (field.scalar !== ScalarType.STRING || rest.length) return undefined;
      return typeof value === 'string' && value.length > 0 ? value : undefined;
    case 'map':
      if (field.mapKind !== 'scalar' || field.scalar !== ScalarType.STRING) return undefined;
      return mapField(rest, value as Record<string, string> | undefined);
    case 'message': {
      if (value === undefined) return undefined;
      if (field.message.typeName === 'google.protobuf.Any') {
        if (!registry) return undefined;
        const inner = unpackAnyWith(value as Any, registry);
        if (!inner) return undefined;
        const innerDesc = registry.getMessage(inner.$typeName);
        return innerDesc ? lookup(innerDesc, inner, rest, registry) : undefined;
      }
      return lookup(field.message, value as Message, rest, registry);
    }
    default:
      return undefined;
  }
}
