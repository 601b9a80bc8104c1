// tsrund's configuration: defaults < file (JSON or TOML) < flags.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, readConfigFile, resolveConfig } from '../../src/daemon/config.js';

const dir = mkdtempSync(join(tmpdir(), 'tsrund-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('defaults', async (t) => {
  t.same(resolveConfig({}, {}), { address: '/run/tsrund/tsrund.sock', root: '/var/lib/tsrund', state: '/run/tsrund', logLevel: 'info' });
  t.same(resolveConfig({}, {}), DEFAULT_CONFIG);
});

t.test('JSON and TOML files, flags win, unknown keys warned', async (t) => {
  const json = join(dir, 'c.json');
  writeFileSync(json, JSON.stringify({ version: 2, root: '/r', grpc: { address: 'unix:///s.sock', uid: 0 }, debug: { level: 'debug' }, plugins: {} }));
  const warnings: string[] = [];
  const fromJson = readConfigFile(json, (m) => warnings.push(m));
  t.same(fromJson, { root: '/r', address: 'unix:///s.sock', logLevel: 'debug' });
  t.same(warnings, [`${json}: unknown key grpc.uid ignored`, `${json}: unknown key plugins ignored`]);
  t.same(resolveConfig(fromJson, { root: '/flag', logLevel: undefined }), { address: '/s.sock', root: '/flag', state: '/run/tsrund', logLevel: 'debug' });

  const toml = join(dir, 'config.toml');
  writeFileSync(toml, 'version = 2\nroot = "/t/root"\nstate = "/t/state"\n\n[grpc]\n  address = "/t/d.sock"\n\n[debug]\n  level = "warn"\n');
  t.same(readConfigFile(toml), { root: '/t/root', state: '/t/state', address: '/t/d.sock', logLevel: 'warn' }, "containerd's layout");
});

t.test('errors name the file and the key', async (t) => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"root": 5}');
  t.throws(() => readConfigFile(bad), { message: `${bad}: root must be a non-empty string` });
  writeFileSync(bad, '{"debug": {"level": "loud"}}');
  t.throws(() => readConfigFile(bad), { message: /debug.level: "loud" is not a log level/ });
  writeFileSync(bad, '{nope');
  t.throws(() => readConfigFile(bad), { message: /^--config .*bad.json: not valid JSON/ });
  const badToml = join(dir, 'bad.toml');
  writeFileSync(badToml, 'root = \n');
  t.throws(() => readConfigFile(badToml), { message: /^--config .*bad.toml: not valid TOML/ });
  t.throws(() => readConfigFile(join(dir, 'missing.json')), { message: /missing.json: no such file/ });
  t.equal(resolveConfig({}, { address: 'rel.sock' }).address, join(process.cwd(), 'rel.sock'), 'relative paths become absolute');
});
