// The worker thread of layer-thread.ts: applies one layer blob per message
// and answers with its result or its error's fields.
import { createReadStream } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { applyLayer } from './layer.js';
import { encodeError, type ApplyJob, type ApplyReply } from './layer-thread.js';

const port = parentPort;
if (!port) throw new Error('apply-worker runs as a worker thread (node:worker_threads)');
port.on('message', (job: ApplyJob) => {
  const blob = createReadStream(job.blobPath, { highWaterMark: 1 << 20 });
  applyLayer(blob, job.mediaType, job.target, { expectedDiffId: job.expectedDiffId }).then(
    (ok) => port.postMessage({ ok } satisfies ApplyReply),
    (e: unknown) => port.postMessage({ error: encodeError(e) } satisfies ApplyReply),
  );
});
