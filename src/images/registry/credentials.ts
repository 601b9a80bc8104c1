// Registry credentials as the docker CLI keeps them: $DOCKER_CONFIG/config.json
// (default ~/.docker/config.json), "auths" keyed by host (Docker Hub's key
// is "https://index.docker.io/v1/") with "auth" = base64(user:password) or
// "username"/"password", or "identitytoken"; "credHelpers" per host and
// "credsStore" for all, run as docker-credential-<name> get.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Credentials } from './auth.js';

const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://registry-1.docker.io'];

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

export function readDockerConfig(path = dockerConfigPath()): DockerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (e) {
    throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
  }
}

function keysFor(domain: string): string[] {
  if (domain === 'docker.io') return HUB_KEYS;
  return [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
}

/** Credentials for a registry domain ("docker.io", "127.0.0.1:5000"), or undefined. */
export function credentialsFor(domain: string, config: DockerConfig = readDockerConfig()): Credentials | undefined {
  const keys = keysFor(domain);
  const helper = keys.map((k) => config.credHelpers?.[k]).find(Boolean) ?? config.credsStore;
  if (helper) {
    const fromHelper = runHelper(helper, domain === 'docker.io' ? HUB_KEYS[0]! : domain);
    if (fromHelper) return fromHelper;
  }
  for (const k of keys) {
    const a = config.auths?.[k];
    if (!a) continue;
    if (a.identitytoken) return { username: a.username, identityToken: a.identitytoken };
    if (a.auth) {
      const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) return { username: decoded.slice(0, i), secret: decoded.slice(i + 1) };
    }
    if (a.username) return { username: a.username, secret: a.password ?? '' };
  }
  return undefined;
}

function runHelper(name: string, server: string): Credentials | undefined {
  try {
    const out = execFileSync(`docker-credential-${name}`, ['get'], { input: server, stdio: ['pipe', 'pipe', 'ignore'], timeout: 10_000 }).toString('utf8');
    const j = JSON.parse(out) as { Username?: string; Secret?: string };
    if (!j.Secret) return undefined;
    // "<token>" as the user name means the secret is an identity token
    return j.Username === '<token>' ? { identityToken: j.Secret } : { username: j.Username, secret: j.Secret };
  } catch {
    return undefined;
  }
}
