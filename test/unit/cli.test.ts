// The CLI's pure helpers: runc's Go-style flags, `list`'s table, `run`'s target.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goStyleLongFlags } from '../../src/cli/argv.js';
import { formatTable } from '../../src/cli/tsrunc/list.js';
import { runTarget } from '../../src/cli/tsrunc/run.js';

const LONG = new Set(['root', 'log', 'log-format', 'debug', 'bundle', 'console-socket', 'pid-file', 'no-pivot', 'detach']);

t.test('goStyleLongFlags', async (t) => {
  t.test('one-dash long flags become two-dash', (t) => {
    t.same(goStyleLongFlags(['-root', '/x', 'list'], LONG), ['--root', '/x', 'list']);
    t.same(goStyleLongFlags(['-log-format=json', 'state', 'c1'], LONG), ['--log-format=json', 'state', 'c1']);
    t.same(goStyleLongFlags(['-log=/tmp/a=b.log'], LONG), ['--log=/tmp/a=b.log'], 'only the name decides, the value may hold "="');
    t.same(goStyleLongFlags(['--root', '/x', '-debug', 'run', '-no-pivot', '-bundle', '/b', 'c1'], LONG), ['--root', '/x', '--debug', 'run', '--no-pivot', '--bundle', '/b', 'c1']);
    t.end();
  });

  t.test('short and unknown flags are left alone', (t) => {
    t.same(goStyleLongFlags(['run', '-d', '-b', '/b', 'c1'], LONG), ['run', '-d', '-b', '/b', 'c1']);
    t.same(goStyleLongFlags(['-foo', '-rootx', '-roo'], LONG), ['-foo', '-rootx', '-roo'], 'names must match exactly');
    t.same(goStyleLongFlags(['--root=/x', '-', '-1'], LONG), ['--root=/x', '-', '-1']);
    t.end();
  });

  t.test('nothing after "--" is rewritten', (t) => {
    t.same(goStyleLongFlags(['exec', '--', 'c1', '-root', '/x'], LONG), ['exec', '--', 'c1', '-root', '/x']);
    t.same(goStyleLongFlags(['-root', '/r', '--', '-debug'], LONG), ['--root', '/r', '--', '-debug']);
    t.end();
  });

  t.test('stopAt: arguments of the container process are left alone', (t) => {
    // `exec ID CMD ARGS...`: stop once the id has been seen.
    const stopAt = (p: string[]) => p[0] === 'exec' && p.length >= 2;
    t.same(
      goStyleLongFlags(['-debug', 'exec', '-detach', 'c1', 'ls', '-root'], LONG, stopAt),
      ['--debug', 'exec', '--detach', 'c1', 'ls', '-root'],
    );
    t.same(goStyleLongFlags(['list', '-root', '/x'], LONG, stopAt), ['list', '--root', '/x'], 'other commands are rewritten to the end');
    t.end();
  });

  t.test('the input is not modified', (t) => {
    const argv = ['-root', '/x'];
    goStyleLongFlags(argv, LONG);
    t.same(argv, ['-root', '/x']);
    t.end();
  });
});

t.test('formatTable is Go tabwriter(minwidth 12, padding 3)', (t) => {
  const rows = [
    ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
    ['c1', '4242', 'running', '/tmp/b', '2024-01-01T00:00:00Z', 'root'],
  ];
  t.equal(
    formatTable(rows),
    'ID          PID         STATUS      BUNDLE      CREATED                OWNER\n' +
      'c1          4242        running     /tmp/b      2024-01-01T00:00:00Z   root\n',
  );

  const wide = formatTable([
    ['ID', 'OWNER'],
    ['a-container-with-a-long-id', 'somebody-with-a-long-name'],
    ['b', 'x'],
  ]);
  t.equal(
    wide,
    'ID                           OWNER\n' + //
      'a-container-with-a-long-id   somebody-with-a-long-name\n' +
      'b                            x\n',
    'a column is its widest cell plus 3; the last column is not padded',
  );

  t.equal(formatTable([['ID'], ['c1']]), 'ID\nc1\n', 'a single column is never padded');
  t.equal(formatTable([['123456789', 'X']]), '123456789   X\n', 'exactly 12 when the cell plus padding is 12');
  t.equal(formatTable([['1234567890', 'X']]), '1234567890   X\n', '13 when the cell plus padding is 13');
  t.equal(formatTable([['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']]), 'ID          PID         STATUS      BUNDLE      CREATED     OWNER\n', 'the header alone (no containers)');
  t.end();
});

t.test('runTarget', async (t) => {
  t.test('an argument with a "/" is a bundle directory named after the container', (t) => {
    t.same(runTarget('/srv/bundles/web', '.', false), { id: 'web', bundle: '/srv/bundles/web' });
    t.same(runTarget('bundles/db/', '.', false), { id: 'db', bundle: 'bundles/db/' });
    t.same(runTarget('./my app@2', '.', false), { id: 'my_app_2', bundle: './my app@2' }, 'characters an id cannot hold become "_"');
    t.same(runTarget('/srv/b/x.y+z-1_2', '/other', true), { id: 'x.y+z-1_2', bundle: '/srv/b/x.y+z-1_2' }, 'a path wins over --bundle');
    t.end();
  });

  t.test('a plain id keeps --bundle', (t) => {
    t.same(runTarget('c1', '/srv/bundles/web', true), { id: 'c1', bundle: '/srv/bundles/web' });
    t.same(runTarget('no-such-dir-here-42', '.', false), { id: 'no-such-dir-here-42', bundle: '.' });
    t.end();
  });

  t.test('a bare directory name holding a config.json, typed without --bundle', (t) => {
    const cwd = process.cwd();
    const dir = mkdtempSync(join(tmpdir(), 'tsrunc-cli-'));
    t.teardown(() => {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    });
    mkdirSync(join(dir, 'mybox'));
    writeFileSync(join(dir, 'mybox', 'config.json'), '{}');
    process.chdir(dir);
    t.same(runTarget('mybox', '.', false), { id: 'mybox', bundle: 'mybox' }, 'the directory is the bundle');
    t.same(runTarget('mybox', '/b', true), { id: 'mybox', bundle: '/b' }, 'unless --bundle is given');
    writeFileSync(join(dir, 'config.json'), '{}');
    t.same(runTarget('mybox', '.', false), { id: 'mybox', bundle: '.' }, 'or the current directory is a bundle itself');
    t.end();
  });
});
