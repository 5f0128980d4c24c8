/**
 * embedtoken for Auth0: an Action for the post-login and the
 * credentials-exchange (machine to machine) triggers. It asks embedtoken's
 * POST /hooks/generic for the embedded map of the access token being issued
 * and sets it as a custom claim. Any failure denies the token (fail closed).
 *
 * Secrets of the Action (Actions > your Action > Secrets):
 *   EMBEDTOKEN_HOOK_URL               https://.../hooks/generic (required)
 *   EMBEDTOKEN_HOOK_KEY               the hook's api_key (required)
 *   EMBEDTOKEN_HOOK_HEADER            the hook's api_key_header (default X-Embedtoken-Key)
 *   EMBEDTOKEN_ACCESS_TOKEN_LIFETIME  the API's token lifetime in seconds (required):
 *                                     inner tokens never outlive now + this, so it
 *                                     must not exceed the API's "Token Expiration"
 *   EMBEDTOKEN_HOOK_TIMEOUT_MS        bound on the hook call (default 5000; an
 *                                     Actions flow must finish within 20 s)
 *   EMBEDTOKEN_M2M_SUB_SUFFIX         appended to the client id to make the sub of a
 *                                     machine-to-machine token (default "@clients",
 *                                     Auth0's): inner tokens carry the outer sub
 *
 * The API must use the RFC 9068 access-token profile (API settings, "JSON Web
 * Token (JWT) Profile": RFC 9068): sidecars need the client_id and jti claims
 * and typ at+jwt, which Auth0's default profile does not issue.
 *
 * Subject claims sent to the hook (api.claims picks what each API receives):
 * the user's profile (email, email_verified, name, nickname, given_name,
 * family_name) and app_metadata (admin-controlled), never user_metadata
 * (the user can write it).
 *
 * Auth0 documents the event and api objects at
 * https://auth0.com/docs/customize/actions/explore-triggers/signup-and-login-triggers/login-trigger/post-login-event-object
 * and https://auth0.com/docs/customize/actions/explore-triggers/credentials-exchange
 * (event.accessToken.scope, event.client.client_id, event.resource_server.identifier,
 * api.accessToken.setCustomClaim, api.access.deny).
 */

const PROFILE = ['email', 'email_verified', 'name', 'nickname', 'given_name', 'family_name'];

function config(event) {
  const s = event.secrets || {};
  const lifetime = Number.parseInt(s.EMBEDTOKEN_ACCESS_TOKEN_LIFETIME || '', 10);
  if (!s.EMBEDTOKEN_HOOK_URL || !s.EMBEDTOKEN_HOOK_KEY || !(lifetime > 0)) {
    throw new Error('embedtoken: set the secrets EMBEDTOKEN_HOOK_URL, EMBEDTOKEN_HOOK_KEY and EMBEDTOKEN_ACCESS_TOKEN_LIFETIME');
  }
  const timeout = Number.parseInt(s.EMBEDTOKEN_HOOK_TIMEOUT_MS || '5000', 10);
  return {
    url: s.EMBEDTOKEN_HOOK_URL,
    key: s.EMBEDTOKEN_HOOK_KEY,
    header: s.EMBEDTOKEN_HOOK_HEADER || 'X-Embedtoken-Key',
    lifetime,
    timeout: timeout > 0 ? timeout : 5000,
    m2mSuffix: s.EMBEDTOKEN_M2M_SUB_SUFFIX === undefined ? '@clients' : s.EMBEDTOKEN_M2M_SUB_SUFFIX,
  };
}

// mint asks the hook for the embedded map; it throws on any failure.
async function mint(cfg, body) {
  const res = await fetch(cfg.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', [cfg.header]: cfg.key },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(cfg.timeout),
  });
  if (res.status !== 200) {
    throw new Error(`embedtoken: the hook answered ${res.status}`);
  }
  const out = await res.json();
  if (!out || typeof out.claim !== 'string' || !out.claim || typeof out.tokens !== 'object' || out.tokens === null || Array.isArray(out.tokens)) {
    throw new Error('embedtoken: the hook answered an unexpected body');
  }
  return out;
}

// The token is issued after the Action returns: now + lifetime is never
// later than its exp.
function expiry(cfg) {
  return Math.floor(Date.now() / 1000) + cfg.lifetime;
}

function audience(event) {
  const id = event.resource_server && event.resource_server.identifier;
  return id ? [id] : [];
}

/**
 * Handler that will be called during the execution of a PostLogin flow.
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
exports.onExecutePostLogin = async (event, api) => {
  try {
    const cfg = config(event);
    const user = event.user || {};
    const claims = {};
    for (const k of PROFILE) {
      if (user[k] !== undefined) claims[k] = user[k];
    }
    Object.assign(claims, user.app_metadata || {});
    const out = await mint(cfg, {
      sub: user.user_id,
      client_id: event.client && event.client.client_id,
      scope: (event.transaction && event.transaction.requested_scopes) || [],
      audience: audience(event),
      claims,
      exp: expiry(cfg),
    });
    api.accessToken.setCustomClaim(out.claim, out.tokens);
  } catch (err) {
    api.access.deny(err.message.startsWith('embedtoken:') ? err.message : 'embedtoken: the hook could not be reached');
  }
};

/**
 * Handler that will be called during the execution of a Client Credentials exchange.
 * @param {Event} event - Details about the client credentials grant request.
 * @param {CredentialsExchangeAPI} api - Interface whose methods can be used to change the behavior of the client credentials grant.
 */
exports.onExecuteCredentialsExchange = async (event, api) => {
  try {
    const cfg = config(event);
    const clientID = event.client && event.client.client_id;
    const out = await mint(cfg, {
      sub: clientID && `${clientID}${cfg.m2mSuffix}`, // the outer token's sub
      client_id: clientID,
      scope: (event.accessToken && event.accessToken.scope) || [],
      audience: audience(event),
      claims: {},
      exp: expiry(cfg),
    });
    api.accessToken.setCustomClaim(out.claim, out.tokens);
  } catch (err) {
    api.access.deny('server_error', err.message.startsWith('embedtoken:') ? err.message : 'embedtoken: the hook could not be reached');
  }
};
