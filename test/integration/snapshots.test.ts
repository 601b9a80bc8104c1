// The overlayfs snapshotter on its own: containerd's mounts for each shape
// of chain (mounted for real), prepare/view/commit/remove with containerd's
// rules and errors, labels and filters, usage, leases, cleanup of
// directories no record names, and nothing left behind by a refused call.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needsRoot } from '../helpers/cli.js';
import { openMetadata } from '../../src/metadata/index.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { ErrdefsError } from '../../src/errdefs.js';

const NS = 'snaptest';

t.test('overlayfs snapshotter', { skip: needsRoot }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tsrunc-snapshots-'));
  const mounted: string[] = [];
  const meta = openMetadata(join(base, 'meta'));
  t.teardown(async () => {
    for (const m of mounted.reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    await meta.close();
    rmSync(base, { recursive: true, force: true });
  });
  const root = join(base, 'snapshots', 'overlayfs');
  const sn = OverlaySnapshotter.open(base, meta);
  const dirs = () => readdirSync(join(root, 'snapshots')).sort();
  let m = 0;
  const mount = (mounts: ReturnType<OverlaySnapshotter['mounts']>): string => {
    const target = join(base, `mnt${m++}`);
    mkdirSync(target);
    const x = mounts[0]!;
    execFileSync('mount', ['-t', x.type, x.source, '-o', x.options.join(','), target]);
    mounted.push(target);
    return target;
  };
  const umount = (target: string): void => {
    execFileSync('umount', [target]);
    mounted.splice(mounted.indexOf(target), 1);
  };

  t.test('a chain of layers: mounts as containerd returns them, mounted for real', async (t) => {
    t.equal(sn.root, root, 'directories under <root>/snapshots/overlayfs');
    const m1 = sn.prepare(NS, 'k1', '');
    t.same(m1, [{ type: 'bind', source: join(root, 'snapshots', '1', 'fs'), options: ['rw', 'rbind'] }], 'no parent: a rw bind of its own dir');
    const t1 = mount(m1);
    writeFileSync(join(t1, 'l1'), 'one');
    umount(t1);
    sn.commit(NS, 'c1', 'k1');

    const m2 = sn.prepare(NS, 'k2', 'c1');
    t.same(m2, [
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', `workdir=${join(root, 'snapshots', '2', 'work')}`, `upperdir=${join(root, 'snapshots', '2', 'fs')}`, `lowerdir=${join(root, 'snapshots', '1', 'fs')}`],
      },
    ]);
    const t2 = mount(m2);
    t.equal(readFileSync(join(t2, 'l1'), 'utf8'), 'one', 'parent visible');
    writeFileSync(join(t2, 'l2'), 'two');
    rmSync(join(t2, 'l1'));
    umount(t2);
    t.ok(existsSync(join(root, 'snapshots', '2', 'fs', 'l2')), 'writes land in the upper dir');
    sn.commit(NS, 'c2', 'k2');

    const v1 = sn.view(NS, 'v1', 'c1');
    t.same(v1, [{ type: 'bind', source: join(root, 'snapshots', '1', 'fs'), options: ['ro', 'rbind'] }], 'a view of one layer: a read-only bind of that layer');
    const v2 = sn.view(NS, 'v2', 'c2');
    t.same(v2, [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${join(root, 'snapshots', '2', 'fs')}:${join(root, 'snapshots', '1', 'fs')}`] }], 'a view of two: lowerdirs only, nearest first');
    const tv = mount(v2);
    t.same(readdirSync(tv), ['l2'], 'the whiteout of l1 hides it');
    t.throws(() => writeFileSync(join(tv, 'x'), 'x'), /EROFS/, 'views are read-only');
    umount(tv);
    t.same(sn.mounts(NS, 'v2'), v2, 'Mounts gives the same mounts again');
    const vEmpty = sn.view(NS, 'v0', '');
    t.same(vEmpty[0]!.options, ['ro', 'rbind'], 'a view without parent is a read-only bind');
    for (const k of ['v0', 'v1', 'v2']) await sn.remove(NS, k);
  });

  t.test("containerd's rules and errors; refused calls leave no directory", async (t) => {
    const before = dirs();
    t.throws(() => sn.prepare(NS, 'c1', ''), { name: 'ErrdefsError', errClass: 'already exists' });
    t.throws(() => sn.prepare(NS, 'x', 'nope'), { errClass: 'not found', message: /parent snapshot nope does not exist/ });
    sn.prepare(NS, 'act', 'c2');
    t.throws(() => sn.prepare(NS, 'y', 'act'), { errClass: 'invalid argument', message: /parent "act" is not committed snapshot/ });
    t.throws(() => sn.prepare(NS, '', ''), { name: 'ErrdefsError', errClass: 'invalid argument' });
    t.throws(() => sn.commit(NS, 'c3', 'c2'), { errClass: 'failed precondition', message: /is not active/ });
    t.throws(() => sn.commit(NS, 'c1', 'act'), { name: 'ErrdefsError', errClass: 'already exists' });
    t.throws(() => sn.mounts(NS, 'nope'), { name: 'ErrdefsError', errClass: 'not found' });
    await t.rejects(sn.remove(NS, 'c1'), { errClass: 'failed precondition', message: /cannot remove snapshot with child/ });
    await t.rejects(sn.remove(NS, 'nope'), { name: 'ErrdefsError', errClass: 'not found' });
    t.same(dirs(), [...before, String(sn.resolveDirs(NS, 'act').snapshot.id)].sort(), 'only the one prepared snapshot got a directory');
    await sn.remove(NS, 'act');
    t.same(dirs(), before, 'remove takes the directory');
    t.same(readdirSync(root).sort(), ['snapshots'], 'no staging or removal directory left');
    t.throws(() => sn.stat('other-ns', 'c1'), ErrdefsError, 'snapshots are per namespace');
  });

  t.test('stat, update, list with filters, usage', async (t) => {
    const info = sn.stat(NS, 'c2');
    t.same([info.name, info.parent, info.kind], ['c2', 'c1', 'committed']);
    t.same(sn.update(NS, 'c2', { team: 'a', env: 'x' }).labels, { team: 'a', env: 'x' });
    t.same(sn.update(NS, 'c2', { env: '' }, ['labels.env']).labels, { team: 'a' }, 'labels.<key> with an empty value removes it');
    t.throws(() => sn.update(NS, 'c2', {}, ['parent']), { name: 'ErrdefsError', errClass: 'invalid argument' });
    sn.prepare(NS, 'work', 'c2', { labels: { role: 'rootfs' } });
    t.same((await sn.list(NS)).map((s) => s.name), ['c1', 'c2', 'work']);
    t.same((await sn.list(NS, ['kind==active'])).map((s) => s.name), ['work']);
    t.same((await sn.list(NS, ['parent==c1'])).map((s) => s.name), ['c2']);
    t.same((await sn.list(NS, ['labels.team==a', 'labels.role==rootfs'])).map((s) => s.name), ['c2', 'work'], 'filters are ORed');
    const { upper } = sn.resolveDirs(NS, 'work');
    writeFileSync(join(upper, 'big'), Buffer.alloc(1 << 20, 1));
    const u = sn.usage(NS, 'work');
    t.ok(u.size >= 1 << 20, `active usage measured now (${u.size})`);
    t.equal(u.inodes, 2, 'the dir and the file');
    sn.commit(NS, 'c3', 'work');
    writeFileSync(join(upper, 'later'), Buffer.alloc(1 << 20, 1));
    t.same(sn.usage(NS, 'c3'), u, 'committed usage is what commit measured');
    rmSync(join(upper, 'later'));
  });

  t.test('leases hold what the call made; commit moves the key to the name', async (t) => {
    meta.leases.create(NS, 'L1', {});
    sn.prepare(NS, 'leased', 'c3', { lease: 'L1' });
    t.same(meta.leases.listResources(NS, 'L1'), [{ id: 'leased', type: 'snapshots/overlayfs' }]);
    sn.commit(NS, 'c4', 'leased', { lease: 'L1' });
    t.same(meta.leases.listResources(NS, 'L1'), [{ id: 'c4', type: 'snapshots/overlayfs' }]);
    const before = dirs();
    t.throws(() => sn.prepare(NS, 'nolease', 'c4', { lease: 'missing' }), { name: 'ErrdefsError', errClass: 'not found' });
    t.same(dirs(), before, 'a refused lease leaves no snapshot');
    t.throws(() => sn.stat(NS, 'nolease'), { name: 'ErrdefsError', errClass: 'not found' });
  });

  t.test('cleanup removes directories no record names', async (t) => {
    mkdirSync(join(root, 'snapshots', '999', 'fs'), { recursive: true });
    mkdirSync(join(root, 'snapshots', 'junk'));
    const kept = dirs().filter((d) => d !== '999' && d !== 'junk');
    t.equal(sn.cleanup(), 2);
    t.same(dirs(), kept);
    mkdirSync(join(root, 'new-crashed'));
    mkdirSync(join(root, 'rm-7'));
    mkdirSync(join(root, 'snapshots', '998', 'fs'), { recursive: true });
    OverlaySnapshotter.open(base, meta);
    t.same(readdirSync(root), ['snapshots'], 'leftovers of a crash go at start');
    t.same(dirs(), kept, 'and directories without a record');
  });
});
