// Namespaces: each one really new (its /proc/PID/ns link differs from the
// host's), pid 1, hostname, user namespace mappings, joining existing
// namespaces by path, time namespace offsets.
import t from 'tap';
import { readlinkSync } from 'node:fs';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot, waitFor } from '../helpers/cli.js';
import { NS_PROC_NAME } from '../../src/runtime/plan/namespaces.js';
import type { NamespaceType } from '../../src/oci/spec.js';

const ALL: NamespaceType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'cgroup', 'user', 'time'];

t.test('isolation', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('every namespace type is new', async (t) => {
    const b = makeBundle(['sleep', '100'], (s) => {
      s.linux!.namespaces = ALL.map((type) => ({ type }));
      s.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    });
    const r = await tsrunc.detached(['run', '-d', '-b', b.dir, 'is1']);
    t.equal(r.exitCode, 0, r.stderr);
    const pid = JSON.parse((await tsrunc(['state', 'is1'])).stdout).pid;
    for (const type of ALL) {
      const name = NS_PROC_NAME[type];
      // A new time namespace shows up in time_for_children until the first exec.
      const link = (p: string) => readlinkSync(`/proc/${p}/ns/${name}`);
      t.not(link(String(pid)), link('self'), `${type} namespace differs from the host's`);
    }
    t.equal((await tsrunc(['delete', '-f', 'is1'])).exitCode, 0);
  });

  t.test('the init is pid 1 and sees only its own processes', async (t) => {
    const b = makeBundle(['sh', '-c', 'echo $$; ps -o comm | tail -n +2 | sort -u | tr "\\n" " "']);
    const r = await tsrunc(['run', '-b', b.dir, 'is2']);
    t.equal(r.exitCode, 0, r.stderr);
    const [pid, comms] = r.stdout.split('\n').map((x) => x.trim());
    t.equal(pid, '1');
    t.same(comms!.split(' ').filter((c) => !['sh', 'ps', 'tail', 'sort', 'tr', 'exe'].includes(c)), [], `ps sees only the pipeline (${comms})`);
  });

  t.test('hostname and domainname', async (t) => {
    const b = makeBundle(['sh', '-c', 'hostname; cat /proc/sys/kernel/domainname'], (s) => {
      s.hostname = 'box-one';
      s.domainname = 'example.test';
    });
    const r = await tsrunc(['run', '-b', b.dir, 'is3']);
    t.equal(r.stdout, 'box-one\nexample.test');
  });

  t.test('no network but loopback in a new network namespace', async (t) => {
    const b = makeBundle(['sh', '-c', 'ls /sys/class/net']);
    const r = await tsrunc(['run', '-b', b.dir, 'is4']);
    t.equal(r.stdout, 'lo');
  });

  t.test('user namespace: mappings, root inside, unmapped ids as nobody', async (t) => {
    const b = makeBundle(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; stat -c %u:%g /bin/busybox'], (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 300000, size: 1000 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 300000, size: 2000 }];
    });
    const r = await tsrunc(['run', '-b', b.dir, 'is5']);
    t.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    t.same(lines, ['0 300000 1000', '0 300000 2000', '0', '0', '65534:65534']);
  });

  t.test('user namespace: the host sees container root as the mapped uid', async (t) => {
    const b = makeBundle(['sleep', '100'], (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 310000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 310000, size: 65536 }];
    });
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, 'is6'])).exitCode, 0);
    const pid = JSON.parse((await tsrunc(['state', 'is6'])).stdout).pid;
    const status = await waitFor(async () => {
      const { readFileSync } = await import('node:fs');
      const text = readFileSync(`/proc/${pid}/status`, 'utf8');
      return /^Uid:\s+310000/m.test(text) ? text : '';
    });
    t.match(status, /^Uid:\s+310000\s+310000\s+310000\s+310000$/m);
    t.match(status, /^Gid:\s+310000/m);
    t.equal((await tsrunc(['delete', '-f', 'is6'])).exitCode, 0);
  });

  t.test('joining the namespaces of another container by path', async (t) => {
    const host = makeBundle(['sleep', '100'], (s) => (s.hostname = 'sharedhost'));
    t.equal((await tsrunc.detached(['run', '-d', '-b', host.dir, 'is7'])).exitCode, 0);
    const pid = JSON.parse((await tsrunc(['state', 'is7'])).stdout).pid;
    const guest = makeBundle(['sh', '-c', 'hostname; echo $$; ps -o comm | grep -c sleep; readlink /proc/self/ns/net'], (s) => {
      s.hostname = undefined as unknown as string;
      delete s.hostname;
      for (const ns of s.linux!.namespaces!) {
        if (ns.type === 'pid' || ns.type === 'network' || ns.type === 'uts' || ns.type === 'ipc') ns.path = `/proc/${pid}/ns/${NS_PROC_NAME[ns.type]}`;
      }
    });
    const r = await tsrunc(['run', '-b', guest.dir, 'is8']);
    t.equal(r.exitCode, 0, r.stderr);
    const [hostname, mypid, sleeps, net] = r.stdout.split('\n');
    t.equal(hostname, 'sharedhost', 'uts namespace joined');
    t.not(mypid, '1', 'not the init of the joined pid namespace');
    t.equal(sleeps, '1', "sees the other container's init");
    t.equal(net, readlinkSync(`/proc/${pid}/ns/net`), 'network namespace joined');
    t.equal((await tsrunc(['delete', '-f', 'is7'])).exitCode, 0);
  });

  t.test('time namespace offsets', async (t) => {
    const b = makeBundle(['cat', '/proc/uptime'], (s) => {
      s.linux!.namespaces!.push({ type: 'time' });
      s.linux!.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 }, monotonic: { secs: 1000 } };
    });
    const r = await tsrunc(['run', '-b', b.dir, 'is9']);
    t.equal(r.exitCode, 0, r.stderr);
    const uptime = Number(r.stdout.split(' ')[0]);
    t.ok(uptime > 86400 * 365, `uptime ${uptime} carries the one-year boottime offset`);
  });
});
