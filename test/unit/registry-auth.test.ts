// WWW-Authenticate challenges as registries send them (RFC 7235 with the
// token spec's parameters), and the error text of registry and token
// server bodies; credentials from a docker config.json.
import t from 'tap';
import { errorText, parseChallenges } from '../../src/images/registry/auth.js';
import { credentialsFor } from '../../src/images/registry/credentials.js';

t.test('challenges', async (t) => {
  t.same(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  t.same(parseChallenges(['Basic realm="tsrunc test"', 'Bearer realm=https://x/t, error="insufficient_scope"']), [
    { scheme: 'basic', params: { realm: 'tsrunc test' } },
    { scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope' } },
  ]);
  t.same(parseChallenges('Bearer realm="a\\"b"'), [{ scheme: 'bearer', params: { realm: 'a"b' } }], 'quoted-pair');
  t.same(parseChallenges(undefined), []);
  t.same(parseChallenges('   '), []);
});

t.test('error bodies', async (t) => {
  t.equal(errorText(Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')), ': manifest unknown: manifest unknown');
  t.equal(errorText(Buffer.from('{"details":"incorrect username or password"}')), ': incorrect username or password');
  t.equal(errorText(Buffer.from('')), '');
  t.equal(errorText(Buffer.from('plain words')), ': plain words');
});

t.test('docker config.json', async (t) => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const cfg = {
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      '127.0.0.1:5000': { auth: b64('me:p:w') },
      'https://ghcr.io': { username: 'u', password: 'x' },
      'quay.io': { identitytoken: 'refresh-me', username: 'q' },
    },
  };
  t.same(credentialsFor('docker.io', cfg), { username: 'hub', secret: 'pw' });
  t.same(credentialsFor('127.0.0.1:5000', cfg), { username: 'me', secret: 'p:w' }, 'the password may hold colons');
  t.same(credentialsFor('ghcr.io', cfg), { username: 'u', secret: 'x' });
  t.same(credentialsFor('quay.io', cfg), { username: 'q', identityToken: 'refresh-me' });
  t.equal(credentialsFor('127.0.0.1:5001', cfg), undefined);
});
