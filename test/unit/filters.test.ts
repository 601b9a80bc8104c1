// containerd's filter language: what parses, what it matches, what is refused
// and with which message (cases from containerd's filters/filter_test.go).
import t from 'tap';
import { parseFilter, parseFilters, mapField, stringField, type FieldGetter } from '../../src/events/filters.js';
import { ErrdefsError } from '../../src/errdefs.js';

interface Obj {
  name?: string;
  other?: string;
  labels?: Record<string, string>;
  meta?: string;
}

const getter = (o: Obj): FieldGetter => (path) => {
  switch (path[0]) {
    case 'name':
      return path.length === 1 ? stringField(o.name) : undefined;
    case 'other':
      return path.length === 1 ? stringField(o.other) : undefined;
    case 'labels':
      return mapField(path.slice(1), o.labels);
    case 'meta':
      return stringField(o.meta);
    default:
      return undefined;
  }
};

const corpus: Obj[] = [
  { name: 'foo', labels: { bar: 'baz' } },
  { name: 'bar', other: 'hello', labels: { 'more complex label': 'a' } },
  { name: 'foo', labels: { 'bar.baz': 'yes', 'x-y': 'z' } },
  { name: 'bazo', meta: '/a/b' },
  { name: 'zoo', meta: '/' },
  {},
];

function matching(filters: string[]): number[] {
  const f = parseFilters(filters);
  return corpus.flatMap((o, i) => (f.match(getter(o)) ? [i] : []));
}

t.test('selectors', async (t) => {
  t.same(matching([]), [0, 1, 2, 3, 4, 5], 'no filters match everything');
  t.same(matching(['']), [0, 1, 2, 3, 4, 5], 'an empty filter matches everything');
  t.same(matching(['name']), [0, 1, 2, 3, 4], 'presence');
  t.same(matching(['name==foo']), [0, 2], 'equality');
  t.same(matching(['name!=foo']), [1, 3, 4, 5], '!= also matches an absent field');
  t.same(matching(['name~=ba']), [1, 3], 'unanchored regexp');
  t.same(matching(['name~=^ba']), [1, 3]);
  t.same(matching(['name~=/o$/']), [0, 2, 3, 4], '/regexp/');
  t.same(matching(['name~=|o$|']), [0, 2, 3, 4], '|regexp|');
  t.same(matching(['name~=(?i)^BAR']), [1], 'a Go (?i) flag group');
  t.same(matching(['name=="foo"']), [0, 2], 'quoted value');
  t.same(matching(['labels.bar']), [0]);
  t.same(matching(['labels.bar==baz']), [0]);
  t.same(matching(['labels."more complex label"==a']), [1], 'quoted field');
  t.same(matching(['labels."bar.baz"==yes']), [2], 'a dotted key must be quoted');
  t.same(matching(['labels.bar.baz==yes']), [2], 'or the path is joined back with dots');
  t.same(matching(['labels."x-y"==z']), [2]);
  t.same(matching(['name==foo,labels.bar']), [0], 'comma is AND');
  t.same(matching(['name==foo', 'name==bar']), [0, 1, 2], 'several filters are OR');
  t.same(matching(['name==foo,labels.bar', 'other==hello']), [0, 1]);
  t.same(matching(['meta~=/a/']), [3], 'a value containing slashes in a regexp');
  t.same(matching(['meta=="/"']), [4], 'quoted slash');
  t.same(matching(['name==bazo,meta~=^/a']), [3]);
  t.same(matching(['name == foo']), [0, 2], 'spaces around the operator');
  // dockerd 20.10's subscription (libcontainerd/remote/client.go)
  const docker = parseFilters(['namespace==moby,topic~=|^/tasks/|']);
  const env = (namespace: string, topic: string): FieldGetter => (p) => (p[0] === 'namespace' ? namespace : p[0] === 'topic' ? topic : undefined);
  t.ok(docker.match(env('moby', '/tasks/exit')));
  t.notOk(docker.match(env('moby', '/containers/create')));
  t.notOk(docker.match(env('other', '/tasks/exit')));
});

t.test('parse errors are InvalidArgument with containerd text', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['name==', /expected value or quoted/],
    ['name=', /unsupported operator "="/],
    ['name!', /unsupported operator "!"/],
    ['=foo', /expected field or quoted/],
    ['labels.', /expected field or quoted/],
    ['name==foo,', /expected field or quoted/],
    ['name===foo', /unsupported operator "==="/],
    ['name=="foo', /quoted literal not terminated/],
    ['name~=[', /invalid regular expression/],
    ['name==|foo|', /invalid quote encountered/],
    ['name=="fo\\qo"', /illegal escape sequence/],
    ['name foo', /expected an operator/],
    ['name==foo bar', /unexpected input/],
  ];
  for (const [input, re] of cases) {
    try {
      parseFilters([input]);
      t.fail(`${input}: parsed`);
    } catch (e) {
      t.ok(e instanceof ErrdefsError && e.errClass === 'invalid argument', `${input}: invalid argument`);
      t.match((e as Error).message, re, `${input}: ${(e as Error).message}`);
      t.match((e as Error).message, /^filters: parse error: /);
    }
  }
  t.equal(
    (() => {
      try {
        parseFilters(['labels.']);
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })(),
    'filters: parse error: [labels.]: expected field or quoted: invalid argument',
    'the message names the input',
  );
});

t.test('quoted values unescape like Go strings', async (t) => {
  const f = parseFilter('name=="a\\"b\\x41\\u00e9\\101"');
  t.ok(f.match(getter({ name: 'a"bAéA' })));
  t.notOk(f.match(getter({ name: 'a"b' })));
});
