// ctr 1.6 (Debian's containerd package) against tsrund's Snapshots and Diff:
// `ctr snapshots prepare/view/commit/ls/mounts/info/label/usage/tree/diff/rm`
// and `ctr images import` of an OCI archive built here from busybox-static,
// which unpacks through Snapshots.Prepare, Diff.Apply and Snapshots.Commit
// on ctr's side, then `ctr run --rm` of that image; `ctr images pull
// --plain-http` of a 3-layer image with a whiteout from docker-registry. ctr never starts a daemon. Namespace "ctrs".
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { tarArchive } from '../../src/archive/tar-writer.js';
import { cleanEnv, startTsrund, type RunningDaemon } from '../helpers/daemon.js';
import { busyboxLayer, fileLayer, makeLayer, ociLayout, registryMissing, skopeoPush, startRegistry } from '../helpers/registry.js';

const CTR = '/usr/bin/ctr';
const BUSYBOX = '/bin/busybox';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An OCI image archive (oci-layout, index.json, blobs) of busybox with a few applets, and its layer's diff ID. */
function busyboxArchive(name: string): { archive: Buffer; diffId: string } {
  const bb = readFileSync(BUSYBOX);
  const layer = tarArchive([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', type: 'file', mode: 0o755, data: bb },
    { name: 'bin/sh', type: 'link', mode: 0o755, linkname: 'bin/busybox' },
    { name: 'bin/echo', type: 'symlink', mode: 0o777, linkname: '/bin/busybox' },
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/hello', type: 'file', mode: 0o644, data: 'hello from a layer\n' },
  ]);
  const gz = gzipSync(layer);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [sha(layer)] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length }],
    }),
  );
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': name } }],
  });
  const blob = (b: Buffer) => ({ name: `blobs/sha256/${sha(b).slice(7)}`, type: 'file' as const, mode: 0o644, data: b });
  const archive = tarArchive([
    { name: 'oci-layout', type: 'file', mode: 0o644, data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', type: 'file', mode: 0o644, data: index },
    { name: 'blobs/', type: 'dir', mode: 0o755 },
    { name: 'blobs/sha256/', type: 'dir', mode: 0o755 },
    blob(config),
    blob(manifest),
    blob(gz),
  ]);
  return { archive, diffId: sha(layer) };
}

if (!existsSync(CTR) || !existsSync(BUSYBOX)) {
  t.test('ctr snapshots against tsrund', { skip: `needs ${CTR} (Debian package containerd) and ${BUSYBOX} (busybox-static)` }, () => {});
} else if (process.getuid?.() !== 0) {
  t.test('ctr snapshots against tsrund', { skip: 'tsrund needs root (overlay whiteouts, ownership)' }, () => {});
} else {
  let d: RunningDaemon;
  t.before(async () => {
    d = await startTsrund();
  });
  t.teardown(async () => {
    await d?.stop();
  });
  const ctr = (args: string[]) => execa(CTR, ['--address', d.address, '-n', 'ctrs', ...args], { reject: false, timeout: 60_000, env: cleanEnv() });
  /** stdout of a ctr command that must succeed */
  const ok = async (args: string[]): Promise<string> => {
    const r = await ctr(args);
    if (r.exitCode !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
    return r.stdout;
  };

  t.test('ctr snapshots prepare, mounts, commit, view, ls, info, label, usage, tree, rm', async (t) => {
    const snapDir = (n: number) => join(d.root, 'snapshots', 'overlayfs', 'snapshots', String(n), 'fs');
    await ok(['snapshots', 'prepare', 'ctrs-base']);
    t.equal((await ok(['snapshots', 'mounts', '/mnt/x', 'ctrs-base'])).trim(), `mount -t bind ${snapDir(1)} /mnt/x -o rw,rbind`);
    await ok(['snapshots', 'commit', 'ctrs-layer', 'ctrs-base']);
    const child = JSON.parse(await ok(['snapshots', 'prepare', '--mounts', 'ctrs-child', 'ctrs-layer'])) as Array<{ Type: string; Options: string[] }>;
    t.equal(child[0]?.Type, 'overlay');
    t.ok(child[0]?.Options.includes(`lowerdir=${snapDir(1)}`));
    const view = JSON.parse(await ok(['snapshots', 'view', '--mounts', 'ctrs-view', 'ctrs-layer'])) as Array<{ Type: string; Source: string; Options: string[] }>;
    t.same(view, [{ Type: 'bind', Source: snapDir(1), Options: ['ro', 'rbind'] }], 'a view of one layer is a read-only bind');
    const ls = await ok(['snapshots', 'ls']);
    t.match(ls, /^KEY\s+PARENT\s+KIND\s*$/m);
    t.match(ls, /^ctrs-layer\s+Committed\s*$/m);
    t.match(ls, /^ctrs-child\s+ctrs-layer\s+Active\s*$/m);
    t.match(ls, /^ctrs-view\s+ctrs-layer\s+View\s*$/m);
    const info = JSON.parse(await ok(['snapshots', 'info', 'ctrs-layer'])) as { Kind: string; Name: string };
    t.same([info.Kind, info.Name], ['Committed', 'ctrs-layer']);
    t.match(await ok(['snapshots', 'label', 'ctrs-layer', 'team=x']), /team=x/);
    t.match(await ok(['snapshots', 'usage', 'ctrs-layer']), /^ctrs-layer\s+4\.0 KiB\s+1\s*$/m);
    t.match(await ok(['snapshots', 'tree']), /ctrs-layer\n\s+\\_ ctrs-(child|view)\n\s+\\_ ctrs-(child|view)/);
    const busy = await ctr(['snapshots', 'rm', 'ctrs-layer']);
    t.not(busy.exitCode, 0);
    t.match(busy.stderr, /cannot remove snapshot with child/);
    await ok(['snapshots', 'rm', 'ctrs-view', 'ctrs-child', 'ctrs-layer']);
    t.equal((await ok(['snapshots', 'ls'])).trim().split('\n').length, 1, 'only the header left');
  });

  t.test('ctr snapshots diff: an active snapshot, a committed one, a first layer', async (t) => {
    const first = JSON.parse(await ok(['snapshots', 'prepare', '--mounts', 'ctrs-d1', ''])) as Array<{ Source: string }>;
    writeFileSync(join(first[0]!.Source, 'f1'), 'one\n');
    await ok(['snapshots', 'commit', 'ctrs-d1c', 'ctrs-d1']);
    const second = JSON.parse(await ok(['snapshots', 'prepare', '--mounts', 'ctrs-d2', 'ctrs-d1c'])) as Array<{ Options: string[] }>;
    const upper = second[0]!.Options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
    writeFileSync(join(upper, 'f2'), 'two\n');
    execFileSync('mknod', [join(upper, 'f1'), 'c', '0', '0']); // f1 removed in the overlay
    const list = async (args: string[], gz: boolean): Promise<string[]> => {
      const r = await execa('sh', ['-c', `${CTR} --address ${d.address} -n ctrs snapshots diff ${args.join(' ')} | tar -t${gz ? 'z' : ''}f -`], { reject: false, env: cleanEnv() });
      t.equal(r.exitCode, 0, r.stderr);
      return r.stdout.split('\n').sort();
    };
    const TAR = ['--media-type', 'application/vnd.oci.image.layer.v1.tar'];
    t.same(await list([...TAR, 'ctrs-d2'], false), ['.wh.f1', 'f2'], 'active: its upper dir, the removal as a whiteout');
    await ok(['snapshots', 'commit', 'ctrs-d2c', 'ctrs-d2']);
    t.same(await list([...TAR, 'ctrs-d2c'], false), ['.wh.f1', 'f2'], 'committed: through views of it and its parent (the same layer again is no error)');
    t.same(await list(['ctrs-d1c'], true), ['f1'], 'a first layer, gzip (the default media type)');
    t.same(await list([...TAR, 'ctrs-d1c', 'ctrs-d2c'], false), ['.wh.f1', 'f2'], 'two snapshots named: from the first to the second');
    t.same(await list([...TAR, 'ctrs-d2c', 'ctrs-d1c'], false), ['.wh.f2', 'f1'], 'the other way round: not left plus one layer, so a walk of both trees (f1 back, f2 gone)');
    await ok(['snapshots', 'rm', 'ctrs-d2c', 'ctrs-d1c']);
  });

  t.test('ctr images import unpacks through Prepare, Diff.Apply and Commit', async (t) => {
    const name = 'docker.io/library/ctrs-busybox:latest';
    const { archive, diffId } = busyboxArchive(name);
    const file = join(d.dir, 'busybox-oci.tar');
    writeFileSync(file, archive);
    const r = await ctr(['images', 'import', '--digests', file]);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, /unpacking docker\.io\/library\/ctrs-busybox:latest \(sha256:[0-9a-f]{64}\)\.\.\.done/);
    const ls = await ok(['snapshots', 'ls']);
    t.match(ls, new RegExp(`^${diffId}\\s+Committed\\s*$`, 'm'), 'the layer committed under its chain ID (one layer: its diff ID)');
    const dir = join(d.root, 'snapshots', 'overlayfs', 'snapshots');
    const mounts = await ctr(['snapshots', 'mounts', '/mnt/x', diffId]);
    t.not(mounts.exitCode, 0);
    t.match(mounts.stderr, /not active or view: failed precondition/, 'a committed snapshot has no mounts (as containerd)');
    const fs = (await ok(['snapshots', 'view', '--mounts', 'ctrs-bb-view', diffId])).match(/"Source": "([^"]+)"/)?.[1] ?? '';
    t.ok(fs.startsWith(dir), `view of the layer: ${fs}`);
    t.equal(readFileSync(join(fs, 'etc/hello'), 'utf8'), 'hello from a layer\n');
    t.equal(lstatSync(join(fs, 'bin/sh')).ino, lstatSync(join(fs, 'bin/busybox')).ino, 'hard link kept');
    t.equal(lstatSync(join(fs, 'bin/busybox')).size, lstatSync(BUSYBOX).size);
    await ok(['snapshots', 'rm', 'ctrs-bb-view']);
    // the container's rootfs: ctr prepares a snapshot on the layer and passes its mounts to Tasks.Create
    const run = await ctr(['run', '--rm', name, 'ctrs-run1', '/bin/sh', '-c', 'echo hi; cat /etc/hello; echo x > /new; ls /']);
    t.equal(run.exitCode, 0, run.stderr);
    t.equal(run.stdout, 'hi\nhello from a layer\nbin\ndev\netc\nnew\nproc\nrun\nsys');
    t.same(
      (await ok(['snapshots', 'ls'])).trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]),
      [diffId],
      'ctr run --rm removed the container and its snapshot',
    );
    await ok(['images', 'rm', '--sync', name]);
  });

  t.test('ctr images pull --plain-http from a registry unpacks 3 layers by chain ID; ctr run --rm sees the merged tree; rm --sync collects them', { skip: registryMissing() ?? false }, async (t) => {
    const reg = await startRegistry();
    t.teardown(() => reg.stop());
    const layers = [
      busyboxLayer(),
      fileLayer('etc/hello', 'hello\n'),
      makeLayer((dir) => {
        mkdirSync(join(dir, 'etc'));
        writeFileSync(join(dir, 'etc', '.wh.hello'), '');
        writeFileSync(join(dir, 'etc', 'greeting'), 'hi from layer 3\n');
      }),
    ];
    await skopeoPush(reg, ociLayout([{ layers }]), 'library/ctrs-pull:latest');
    const ref = `${reg.host}/library/ctrs-pull:latest`;
    const pull = await ctr(['images', 'pull', '--plain-http', ref]);
    t.equal(pull.exitCode, 0, pull.stderr);
    t.match(pull.stdout, /unpacking linux\/amd64 sha256:[0-9a-f]{64}\.\.\.\s*done/);
    const chain: string[] = [];
    for (const l of layers) chain.push(chain.length === 0 ? l.diffId : sha(`${chain[chain.length - 1]} ${l.diffId}`));
    const ls = await ok(['snapshots', 'ls']);
    for (const [i, id] of chain.entries()) t.match(ls, new RegExp(`^${id}\\s+${i === 0 ? '' : `${chain[i - 1]}\\s+`}Committed\\s*$`, 'm'), `layer ${i + 1} committed as its chain ID on its parent`);
    const run = await ctr(['run', '--rm', ref, 'ctrs-pull-run', '/bin/busybox', 'sh', '-c', '/bin/busybox ls /etc; /bin/busybox cat /etc/greeting']);
    t.equal(run.exitCode, 0, run.stderr);
    t.equal(run.stdout, 'greeting\nhi from layer 3', 'the whiteout in layer 3 hides layer 2\'s file');
    await ok(['images', 'rm', '--sync', ref]);
    const left = (await ok(['snapshots', 'ls'])).trim().split('\n').slice(1);
    t.same(left.filter((l) => chain.some((c) => l.startsWith(c))), [], "the image's snapshots are collected with it");
  });
}

