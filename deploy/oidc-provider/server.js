// node-oidc-provider 9.x issuing JWT access tokens (RFC 9068, resource
// indicators) whose extraTokenClaims calls embedtoken's POST /hooks/generic:
// every access token carries the embedded map under the hook's claim. Used
// by the e2e tests and as a wiring example; configured by environment:
//
//   OIDC_ISSUER               issuer URL, e.g. http://127.0.0.1:3000 (required)
//   OIDC_LISTEN               host:port to listen on (default: the issuer's)
//   OIDC_CLIENT_ID            a client_credentials client (required)
//   OIDC_CLIENT_SECRET        its secret (required)
//   OIDC_SCOPES               the scopes it may be granted, space-separated
//   OIDC_RESOURCE             the resource (outer aud) its tokens are for (required)
//   OIDC_TOKEN_TTL            access-token lifetime in seconds (default 3600)
//   OIDC_JWKS_FILE            the signing keys (a private JWKS); default: a
//                             fresh RSA key per start (tokens die with the process)
//   EMBEDTOKEN_HOOK_URL       .../hooks/generic; unset: no hook (plain tokens, for
//                             the "no issuer changes" mode: sidecars exchange)
//   EMBEDTOKEN_HOOK_KEY       the hook's api_key (required with the URL)
//   EMBEDTOKEN_HOOK_HEADER    the hook's api_key_header (default X-Embedtoken-Key)
//   EMBEDTOKEN_HOOK_TIMEOUT_MS  bound on each hook call (default 2500)
//
// Fail closed: when the hook is down, slow or refuses, extraTokenClaims
// throws, and oidc-provider answers the token request with a 5xx
// server_error and issues no token.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { Provider } from 'oidc-provider';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`embedtoken-oidc-provider: ${name} is required`);
    process.exit(2);
  }
  return v;
}

const issuer = need('OIDC_ISSUER');
const listen = new URL(process.env.OIDC_LISTEN ? `http://${process.env.OIDC_LISTEN}` : issuer);
const clientId = need('OIDC_CLIENT_ID');
const clientSecret = need('OIDC_CLIENT_SECRET');
const scopes = (process.env.OIDC_SCOPES || '').split(' ').filter(Boolean);
const resource = need('OIDC_RESOURCE');
const ttl = Number.parseInt(process.env.OIDC_TOKEN_TTL || '3600', 10);
const hookURL = process.env.EMBEDTOKEN_HOOK_URL || '';
const hookKey = hookURL ? need('EMBEDTOKEN_HOOK_KEY') : '';
const hookHeader = process.env.EMBEDTOKEN_HOOK_HEADER || 'X-Embedtoken-Key';
const hookTimeout = Number.parseInt(process.env.EMBEDTOKEN_HOOK_TIMEOUT_MS || '2500', 10);

function signingKeys() {
  if (process.env.OIDC_JWKS_FILE) {
    return JSON.parse(readFileSync(process.env.OIDC_JWKS_FILE, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: `rs-${Date.now()}`, alg: 'RS256', use: 'sig' }] };
}

// mintEmbedded asks the hook for the embedded map of one access token and
// returns it as extra claims. Any failure throws: no token is issued.
async function mintEmbedded(token) {
  // oidc-provider computes exp as (now + expiration) just before calling
  // extraTokenClaims; one second less is never later than that.
  const exp = token.exp || Math.floor(Date.now() / 1000) - 1 + token.expiration;
  const body = {
    sub: token.accountId || token.clientId, // client credentials: sub = client_id
    client_id: token.clientId,
    scope: token.scope || '',
    audience: token.resourceServer?.audience ? [token.resourceServer.audience] : [],
    exp,
  };
  const res = await fetch(hookURL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', [hookHeader]: hookKey },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(hookTimeout),
  });
  if (res.status !== 200) {
    throw new Error(`embedtoken hook answered ${res.status}`);
  }
  const out = await res.json();
  if (typeof out?.claim !== 'string' || !out.claim || typeof out.tokens !== 'object' || out.tokens === null) {
    throw new Error('embedtoken hook answered an unexpected body');
  }
  return { [out.claim]: out.tokens };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: scopes.join(' '),
  }],
  scopes,
  jwks: signingKeys(),
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || ttl },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: scopes.join(' '),
          audience: resource,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ...(hookURL ? { extraTokenClaims: async (_ctx, token) => mintEmbedded(token) } : {}),
});

provider.on('server_error', (_ctx, err) => {
  // The message only: never a token or a key.
  console.error(`embedtoken-oidc-provider: server_error: ${err.message}`);
});

const server = provider.listen(Number.parseInt(listen.port, 10), listen.hostname, () => {
  console.log(`embedtoken-oidc-provider: listening on ${listen.host}, issuer ${issuer}, hook ${hookURL ? 'on' : 'off'}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
