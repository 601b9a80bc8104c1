// tsrctl version: the client's version, then the server's (Version and
// Introspection.Server), as `docker version` shows both.
import { Version } from '../../gen/containerd/services/version/v1/version_pb.js';
import { Introspection } from '../../gen/containerd/services/introspection/v1/introspection_pb.js';
import { VERSION, COMMIT } from '../../version.js';
import { out, err } from '../output.js';
import { withConn } from './common.js';
import type { Globals } from './main.js';

const ARCH: Record<string, string> = { x64: 'amd64', ia32: '386' };

export default async function version(g: Globals, o: { format: 'table' | 'json' }): Promise<number> {
  const client = { version: VERSION, commit: COMMIT, node: process.version, os: process.platform, arch: ARCH[process.arch] ?? process.arch };
  let server: { version: string; revision: string; uuid: string; pid: number; address: string } | undefined;
  let failure: string | undefined;
  try {
    server = await withConn(g, async (conn) => {
      const v = await conn.service(Version).version();
      const s = await conn.service(Introspection).server();
      return { version: v.version, revision: v.revision, uuid: s.uuid, pid: Number(s.pid), address: g.address };
    });
  } catch (e) {
    failure = (e as { details?: string }).details || (e as Error).message;
  }
  if (o.format === 'json') {
    out(`${JSON.stringify({ client, server: server ?? null }, null, 2)}\n`);
  } else {
    let text = `Client:\n Version:      ${client.version}\n Git commit:   ${client.commit}\n Node.js:      ${client.node}\n OS/Arch:      ${client.os}/${client.arch}\n`;
    if (server) {
      text += `\nServer:\n Version:      ${server.version}\n Git commit:   ${server.revision}\n UUID:         ${server.uuid}\n PID:          ${server.pid}\n Address:      ${server.address}\n`;
    }
    out(text);
  }
  if (failure) {
    err(`tsrctl: ${failure}\n`);
    return 1;
  }
  return 0;
}
