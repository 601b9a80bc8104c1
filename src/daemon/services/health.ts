// grpc.health.v1: the server and every service it serves are SERVING while
// tsrund runs; Watch sends that once and stays open until the client leaves
// (or the daemon stops).
import { Health, HealthCheckResponse_ServingStatus as Serving } from '../../gen/grpc/health/v1/health_pb.js';
import { notFound } from '../../errdefs.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

export default defineService({
  service: Health,
  plugin: { type: GRPC_PLUGIN, id: 'healthcheck' },
  create(deps) {
    const known = (service: string): boolean => service === '' || deps.serviceNames().includes(service);
    return {
      check(req) {
        if (!known(req.service)) throw notFound(`unknown service ${JSON.stringify(req.service)}`);
        return { status: Serving.SERVING };
      },
      async *watch(req, ctx) {
        yield { status: known(req.service) ? Serving.SERVING : Serving.SERVICE_UNKNOWN };
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      },
    };
  },
});
