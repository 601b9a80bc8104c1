// containerd.services.content.v1 over the content store (src/content):
// Info, Update, List, Delete (publishes /content/delete), Read, Status,
// ListStatuses, Write (the bidirectional STAT/WRITE/COMMIT session of
// containerd's services/content/service.go) and Abort. Blobs and ingests
// written under a containerd-lease header go into that lease.
import * as grpc from '@grpc/grpc-js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Content, WriteAction, type WriteContentRequest } from '../../gen/containerd/services/content/v1/content_pb.js';
import { ContentDeleteSchema } from '../../gen/containerd/events/content_pb.js';
import { TOPICS } from '../../events/topics.js';
import { invalidArgument } from '../../errdefs.js';
import { digestProblem } from '../../content/digest.js';
import type { ContentInfo, ContentWriter, IngestStatus } from '../../content/store.js';
import { outOfRange } from '../../content/store.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

const infoMessage = (i: ContentInfo) => ({
  digest: i.digest,
  size: BigInt(i.size),
  createdAt: timestampFromDate(i.createdAt),
  updatedAt: timestampFromDate(i.updatedAt),
  labels: i.labels,
});

const statusMessage = (s: IngestStatus) => ({
  ref: s.ref,
  offset: BigInt(s.offset),
  total: BigInt(s.total),
  expected: s.expected,
  startedAt: timestampFromDate(s.startedAt),
  updatedAt: timestampFromDate(s.updatedAt),
});

/** List answers in batches, as containerd's server does. */
const LIST_BATCH = 100;

/**
 * containerd's server checks the digest before the store sees it, with a
 * bare gRPC status (no errdefs class in the message).
 */
function checkDigest(digest: string, message: (reason: string) => string): void {
  const problem = digestProblem(digest);
  if (problem) throw bareStatus(grpc.status.INVALID_ARGUMENT, message(problem));
}

/** An error sent as this status and message, as containerd's status.Errorf. */
function bareStatus(code: grpc.status, details: string): Error {
  return Object.assign(new Error(details), { code, details });
}

export default defineService({
  service: Content,
  plugin: { type: GRPC_PLUGIN, id: 'content', requires: ['io.containerd.service.v1'] },
  create({ content, events }) {
    return {
      info(req, ctx) {
        checkDigest(req.digest, () => `${JSON.stringify(req.digest)} failed validation`);
        return { info: infoMessage(content.info(ctx.requireNamespace(), req.digest)) };
      },
      update(req, ctx) {
        if (!req.info) throw invalidArgument('info must be set');
        const digest = req.info.digest;
        checkDigest(digest, () => `${JSON.stringify(digest)} failed validation`);
        const ns = ctx.requireNamespace();
        return { info: infoMessage(content.update(ns, digest, req.info.labels, req.updateMask?.paths ?? [])) };
      },
      async *list(req, ctx) {
        const all = content.list(ctx.requireNamespace(), req.filters);
        for (let i = 0; i < all.length; i += LIST_BATCH) yield { info: all.slice(i, i + LIST_BATCH).map(infoMessage) };
      },
      delete(req, ctx) {
        checkDigest(req.digest, (why) => why);
        const ns = ctx.requireNamespace();
        content.delete(ns, req.digest);
        events.publishMessage(ns, TOPICS.contentDelete, ContentDeleteSchema, { digest: req.digest });
        return {};
      },
      async *read(req, ctx) {
        checkDigest(req.digest, (why) => `${req.digest}: ${why}`);
        const ns = ctx.requireNamespace();
        // a negative offset reads from the start, as containerd's server does
        const from = req.offset < 0n ? 0 : Number(req.offset);
        const stream = content.readStream(ns, req.digest, from, Number(req.size));
        const stop = (): void => void stream.destroy();
        ctx.signal.addEventListener('abort', stop, { once: true });
        let offset = from;
        try {
          for await (const chunk of stream) {
            yield { offset: BigInt(offset), data: chunk as Buffer };
            offset += (chunk as Buffer).length;
          }
        } finally {
          ctx.signal.removeEventListener('abort', stop);
          stream.destroy();
        }
      },
      async status(req, ctx) {
        return { status: statusMessage(await content.status(ctx.requireNamespace(), req.ref)) };
      },
      async listStatuses(req, ctx) {
        return { statuses: (await content.listStatuses(ctx.requireNamespace(), req.filters)).map(statusMessage) };
      },
      async abort(req, ctx) {
        await content.abort(ctx.requireNamespace(), req.ref, ctx.lease);
        return {};
      },
      // The session of containerd's contentserver: the first message names
      // the ref (and may give total and expected); STAT answers the state,
      // WRITE appends at the current offset (offset 0 on a non-empty ingest
      // starts over), COMMIT writes its data then commits. A later total or
      // expected replaces the earlier one; they are checked at commit.
      async *write(reqs, ctx) {
        const ns = ctx.requireNamespace();
        const it = reqs[Symbol.asyncIterator]();
        const first = await it.next();
        if (first.done) return;
        let req: WriteContentRequest = first.value;
        const ref = req.ref;
        if (!ref) throw bareStatus(grpc.status.INVALID_ARGUMENT, 'first message must have a reference');
        let expected = req.expected;
        let total = Number(req.total);
        const writer: ContentWriter = await content.writer(ns, ref, { total, expected, lease: ctx.lease });
        try {
          if (!expected) expected = writer.expected;
          if (total === 0) total = writer.total;
          for (;;) {
            if (req.expected) {
              expected = req.expected;
              if (content.records.doesExist([ns, req.expected])) {
                await writer.close();
                await content.abort(ns, ref, ctx.lease).catch(() => {});
                throw bareStatus(grpc.status.ALREADY_EXISTS, `blob with expected digest ${req.expected} exists`);
              }
            }
            if (req.total > 0n) {
              total = Number(req.total);
              writer.setTotal(total);
            }
            const st = writer.status();
            const msg = {
              action: req.action,
              offset: BigInt(st.offset),
              total: 0n,
              startedAt: undefined as ReturnType<typeof timestampFromDate> | undefined,
              updatedAt: undefined as ReturnType<typeof timestampFromDate> | undefined,
              digest: '',
            };
            switch (req.action) {
              case WriteAction.STAT:
                msg.digest = writer.digest();
                msg.startedAt = timestampFromDate(st.startedAt);
                msg.updatedAt = timestampFromDate(st.updatedAt);
                msg.total = BigInt(total);
                break;
              case WriteAction.WRITE:
              case WriteAction.COMMIT: {
                const offset = Number(req.offset);
                if (offset > 0 && offset !== writer.offset) throw outOfRange(`write @${offset} must occur at current offset ${writer.offset}`);
                if (offset === 0 && writer.offset > 0) await writer.truncate(0);
                if (req.data.length > 0) await writer.write(req.data);
                msg.offset = BigInt(writer.offset);
                if (req.action === WriteAction.COMMIT) msg.digest = await writer.commit(total, expected, req.labels);
                else msg.digest = writer.digest();
                break;
              }
              default:
                throw invalidArgument(`unknown write action ${String(req.action)}`);
            }
            yield msg;
            if (req.action === WriteAction.COMMIT) return;
            const next = await it.next();
            if (next.done) return;
            req = next.value;
          }
        } finally {
          await writer.close();
        }
      },
    };
  },
});
