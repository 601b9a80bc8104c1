// Image references normalised as docker's distribution/reference does
// (ParseNormalizedNamed, FamiliarString): Docker Hub's domain and library/,
// the default tag, digests, registry hosts with ports, localhost, and the
// refusals with their reasons.
import t from 'tap';
import { familiarName, familiarRepository, formatReference, isLocalHost, normalizeReference, parseReference } from '../../src/images/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

t.test('normalisation as docker users type them', async (t) => {
  const cases: Array<[string, string]> = [
    ['hello-world', 'docker.io/library/hello-world:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['user/team/app:v1', 'docker.io/user/team/app:v1'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['127.0.0.1:5000/library/hello:v2', '127.0.0.1:5000/library/hello:v2'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b/c:t', 'localhost:5000/a/b/c:t'],
    ['ghcr.io/org/img', 'ghcr.io/org/img:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
    [`127.0.0.1:5000/app@${D}`, `127.0.0.1:5000/app@${D}`],
    ['a_b/c__d/e-f.g:T_1.x-y', 'docker.io/a_b/c__d/e-f.g:T_1.x-y'],
  ];
  for (const [input, want] of cases) t.equal(normalizeReference(input), want, input);
});

t.test('parts', async (t) => {
  t.same(parseReference('127.0.0.1:5000/library/hello'), { domain: '127.0.0.1:5000', path: 'library/hello', tag: 'latest', digest: undefined });
  t.same(parseReference(`app@${D}`), { domain: 'docker.io', path: 'library/app', tag: undefined, digest: D });
  t.equal(formatReference(parseReference('user/app:v1')), 'docker.io/user/app:v1');
});

t.test('familiar names, as docker prints them', async (t) => {
  t.equal(familiarName('docker.io/library/hello-world:latest'), 'hello-world:latest');
  t.equal(familiarName('docker.io/user/app:v1'), 'user/app:v1');
  t.equal(familiarName('127.0.0.1:5000/library/hello:latest'), '127.0.0.1:5000/library/hello:latest');
  t.equal(familiarName(`busybox@${D}`), `busybox@${D}`);
  t.equal(familiarRepository(parseReference('busybox')), 'library/busybox');
  t.equal(familiarRepository(parseReference('127.0.0.1:5000/x')), '127.0.0.1:5000/x');
});

t.test('refused, with the reason', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty reference/],
    ['Busybox', /repository name must be lowercase/],
    ['docker.io/Library/x', /repository name must be lowercase/],
    ['busybox:', /bad tag ""/],
    ['busybox:-x', /bad tag "-x"/],
    [`busybox:${'t'.repeat(129)}`, /bad tag/],
    ['busybox@sha256:abc', /invalid checksum digest length/],
    ['busybox@md5:abc', /unsupported digest algorithm/],
    ['a//b', /bad path component ""/],
    ['-a/b', /bad path component "-a"/],
    ['a/b_', /bad path component "b_"/],
    ['exa_mple.com/app', /bad registry host "exa_mple.com"/],
    [`x/${'a'.repeat(260)}`, /must not be more than 255 characters/],
    ['a b', /bad path component "a b"/],
  ];
  for (const [input, why] of bad) {
    t.throws(() => parseReference(input), { errClass: 'invalid argument', message: why } as unknown as Error, JSON.stringify(input));
  }
  t.throws(() => parseReference('Busybox'), { message: /^"Busybox": invalid reference format: repository name must be lowercase/ } as unknown as Error);
});

t.test('this machine: plain HTTP without asking', async (t) => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '::1']) t.ok(isLocalHost(h), h);
  for (const h of ['docker.io', 'registry-1.docker.io', '10.0.0.1:5000', 'localhost.example.com', '128.0.0.1']) t.notOk(isLocalHost(h), h);
});
