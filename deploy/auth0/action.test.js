// Tests the Auth0 Action against a running `embedtoken hook` (the real
// binary: EMBEDTOKEN_BIN, or built here with `go build`), with event objects
// shaped as Auth0 documents them (testdata/SOURCES.md) and stubbed api
// objects. Run: node --test deploy/auth0/
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const action = require('./action.js');

const repo = path.resolve(__dirname, '..', '..');
const key = `test-key-${process.pid}-${Date.now()}`;
let dir;
let hook;
let hookURL;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(url, deadline) {
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready: ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embedtoken-auth0-'));
  let bin = process.env.EMBEDTOKEN_BIN;
  if (!bin) {
    bin = path.join(dir, 'embedtoken');
    execFileSync('go', ['build', '-o', bin, './cmd/embedtoken'], { cwd: repo, stdio: 'inherit' });
  }
  execFileSync(bin, ['keygen', '--alg', 'EdDSA', '--kid', 'k1', '--out', path.join(dir, 'keys')]);
  const [listen, admin] = [await freePort(), await freePort()];
  // No public_listen: the keys are a file and there is no exchange.
  fs.writeFileSync(path.join(dir, 'c.hcl'), `
minter {
  issuer     = "https://minter.test"
  jwks_file  = "keys/jwks.json"
  active_key = "k1"
  signing_key "k1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/k1.key.pem"
  }
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["read:orders"]
  claims   = ["email", "tenant"]
  calls    = ["billing"]
}
api "billing" {
  audience = "https://billing.test"
  scopes   = ["charge:billing"]
  claims   = ["tenant"]
  exposed  = false
}
api "profile" {
  audience = "https://profile.test"
  scopes   = ["read:profile"]
  claims   = ["name", "role"]
}
hook {
  listen       = "127.0.0.1:${listen}"
  admin_listen = "127.0.0.1:${admin}"
  api_key      = env("EMBEDTOKEN_HOOK_KEY")
  generic      = true
}
`);
  hook = spawn(bin, ['hook', '--config', dir], {
    env: { PATH: process.env.PATH, EMBEDTOKEN_HOOK_KEY: key },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  hook.stderr.on('data', () => {}); // drained; never printed (holds no token, but no need)
  hookURL = `http://127.0.0.1:${listen}/hooks/generic`;
  await waitReady(`http://127.0.0.1:${admin}/readyz`, Date.now() + 20000);
});

after(() => {
  if (hook && hook.exitCode === null) hook.kill('SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function event(name, secrets) {
  const ev = JSON.parse(fs.readFileSync(path.join(__dirname, 'testdata', name), 'utf8'));
  ev.secrets = secrets === undefined
    ? { EMBEDTOKEN_HOOK_URL: hookURL, EMBEDTOKEN_HOOK_KEY: key, EMBEDTOKEN_ACCESS_TOKEN_LIFETIME: '3600' }
    : secrets;
  return ev;
}

// api is a stub of Auth0's api object recording what the Action did.
function api() {
  const rec = { claims: {}, denied: null };
  return {
    rec,
    accessToken: { setCustomClaim: (k, v) => { rec.claims[k] = v; } },
    access: { deny: (...args) => { rec.denied = args; } },
  };
}

function payload(jws) {
  assert.equal(jws.split('.').length, 3, 'a compact JWS');
  const [h, p] = jws.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()));
  assert.equal(h.typ, 'at+jwt');
  assert.equal(h.alg, 'EdDSA');
  return p;
}

test('post-login: the embedded map as a custom claim, narrowed per API', async () => {
  const a = api();
  const before = Math.floor(Date.now() / 1000);
  await action.onExecutePostLogin(event('post-login-event.json'), a);
  assert.equal(a.rec.denied, null);
  const map = a.rec.claims.embedded_tokens;
  assert.deepEqual(Object.keys(map), ['orders'], 'only the granted, exposed API');
  const orders = payload(map.orders);
  assert.equal(orders.sub, 'auth0|5f7c8ec7c33c6c004bbafe82');
  assert.equal(orders.client_id, '9ZmT3j1Zd1aDXkBAVrR1xkTpPxCFh9Xp');
  assert.equal(orders.aud, 'https://orders.test');
  assert.equal(orders.scope, 'read:orders');
  assert.equal(orders.email, 'j+smith@example.com');
  assert.equal(orders.tenant, 'acme', 'from app_metadata, never user_metadata');
  assert.ok(orders.exp <= before + 3600 + 1 && orders.exp > before, 'exp within the access token lifetime');
  const billing = payload(orders.embedded_tokens.billing);
  assert.equal(billing.aud, 'https://billing.test');
  assert.equal(billing.scope, 'charge:billing');
  assert.equal(billing.email, undefined, 'only the claims billing declares');
});

test('post-login: user_metadata never reaches a token', async () => {
  const ev = event('post-login-event.json');
  delete ev.user.app_metadata;
  ev.transaction.requested_scopes.push('read:profile');
  const a = api();
  await action.onExecutePostLogin(ev, a);
  const map = a.rec.claims.embedded_tokens;
  assert.equal(payload(map.orders).tenant, undefined);
  assert.equal(payload(map.profile).role, undefined);
  assert.equal(payload(map.profile).name, 'j+smith@example.com');
});

test('credentials-exchange: machine-to-machine token, sub <client_id>@clients', async () => {
  const a = api();
  await action.onExecuteCredentialsExchange(event('credentials-exchange-event.json'), a);
  assert.equal(a.rec.denied, null);
  const map = a.rec.claims.embedded_tokens;
  assert.deepEqual(Object.keys(map).sort(), ['orders', 'profile']);
  const orders = payload(map.orders);
  assert.equal(orders.sub, 'TkNOOvqZ4HnMO9IEtOQfNmgOQ5wWdr1A@clients');
  assert.equal(orders.client_id, 'TkNOOvqZ4HnMO9IEtOQfNmgOQ5wWdr1A');
  assert.ok(orders.embedded_tokens.billing);
});

test('no granted scope: an empty map, not a denial', async () => {
  const ev = event('credentials-exchange-event.json');
  ev.accessToken.scope = ['unrelated'];
  const a = api();
  await action.onExecuteCredentialsExchange(ev, a);
  assert.equal(a.rec.denied, null);
  assert.deepEqual(a.rec.claims.embedded_tokens, {});
});

test('fail closed: wrong key, missing secrets, bad subject', async () => {
  const cases = [
    ['wrong key', { EMBEDTOKEN_HOOK_URL: hookURL, EMBEDTOKEN_HOOK_KEY: 'wrong', EMBEDTOKEN_ACCESS_TOKEN_LIFETIME: '3600' }, /answered 401/],
    ['no lifetime', { EMBEDTOKEN_HOOK_URL: hookURL, EMBEDTOKEN_HOOK_KEY: key }, /secrets/],
    ['no secrets', {}, /secrets/],
  ];
  for (const [name, secrets, want] of cases) {
    const a = api();
    await action.onExecutePostLogin(event('post-login-event.json', secrets), a);
    assert.deepEqual(a.rec.claims, {}, name);
    assert.match(a.rec.denied[0], want, name);
    const m = api();
    await action.onExecuteCredentialsExchange(event('credentials-exchange-event.json', secrets), m);
    assert.deepEqual(m.rec.claims, {}, name);
    assert.equal(m.rec.denied[0], 'server_error', name);
    assert.match(m.rec.denied[1], want, name);
  }
  const ev = event('post-login-event.json');
  delete ev.user.user_id;
  const a = api();
  await action.onExecutePostLogin(ev, a);
  assert.match(a.rec.denied[0], /answered 400/);
});

test('fail closed: the hook is down', async () => {
  hook.kill('SIGTERM');
  await new Promise((r) => hook.once('exit', r));
  const a = api();
  await action.onExecutePostLogin(event('post-login-event.json'), a);
  assert.deepEqual(a.rec.claims, {});
  assert.match(a.rec.denied[0], /embedtoken: the hook could not be reached/);
  const m = api();
  await action.onExecuteCredentialsExchange(event('credentials-exchange-event.json'), m);
  assert.deepEqual(m.rec.denied, ['server_error', 'embedtoken: the hook could not be reached']);
});
