// The real authorization server of the oidc leg of conformance/run.sh: `oidc-provider` (the npm
// package pinned in conformance/package.json, an OpenID Certified OAuth 2.0 / OpenID Connect
// server) on http://127.0.0.1:PORT, configured for the gateway of conformance/oidc/gateway.yaml.
//
//   node oidc/provider.mjs PORT GATEWAY_RESOURCE BACKEND_AUDIENCE
//   environment: OIDC_STS_SECRET   the client secret of the gateway's client `portcullis`
//
// What it serves (everything but /interaction and /admin is oidc-provider's own code):
//   - discovery (RFC 8414 and OpenID), JWKS at /jwks, dynamic client registration (RFC 7591) at
//     /reg, authorization code + PKCE at /auth, the token endpoint at /token;
//   - access tokens for one resource indicator (RFC 8707), the gateway's GATEWAY_RESOURCE: JWTs
//     (RFC 9068, `typ: at+jwt`) signed RS256 with the current signing key, scope `mcp.tools`;
//   - one test user, `alice`. /interaction/:uid completes every interaction at once: login as
//     alice, then consent to exactly the scopes and resources that oidc-provider says are missing;
//   - a custom grant, `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693), registered
//     with provider.registerGrantType, for the confidential client `portcullis`
//     (client_secret_basic) only: the subject token must be an access token this server issued
//     for GATEWAY_RESOURCE (signature checked against the current key set, `iss`, `exp`, `aud`),
//     the target (`audience` and/or `resource`, one value) must be BACKEND_AUDIENCE, and the
//     issued token is a JWT with `aud` = that target, `sub` = the subject's `sub`, `client_id`
//     `portcullis` and `act: {sub: "portcullis"}` (RFC 8693 4.1).
//   - key rotation the way oidc-provider's documentation describes it (change the `jwks`
//     configuration, reload): POST /admin/rotate generates a new RSA key, puts it first (the
//     signing key) and builds a new Provider instance with the new key set; `?retire=KID` also
//     drops a key. The instances share oidc-provider's in-memory adapter (module-level storage),
//     so registered clients, sessions and grants survive the reload.
//   - POST /admin/exchanges?refuse=1 makes the exchange grant refuse every request
//     (invalid_grant) until ?refuse=0: the token service failing, as the gateway sees it.
//   - GET /admin/state: what the client script checks: the signing key, the published kids, who
//     fetched /jwks and which kids it got, every interaction, every exchange (jti values, never a
//     token), every refused exchange.
//
// No token is ever written to the log: exchanges are logged by jti.

import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const require = createRequire(import.meta.url);
const OIDC_PROVIDER_VERSION = require('oidc-provider/package.json').version;

const [portArg, GATEWAY_RESOURCE, BACKEND_AUDIENCE] = process.argv.slice(2);
const PORT = Number(portArg);
const STS_SECRET = process.env.OIDC_STS_SECRET;
if (!PORT || !GATEWAY_RESOURCE || !BACKEND_AUDIENCE || !STS_SECRET) {
  console.error('usage: OIDC_STS_SECRET=... node provider.mjs PORT GATEWAY_RESOURCE BACKEND_AUDIENCE');
  process.exit(2);
}

const ISSUER = `http://127.0.0.1:${PORT}`;
const USER = 'alice';
const GATEWAY_CLIENT_ID = 'portcullis';
const GATEWAY_SCOPE = 'mcp.tools';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const EXCHANGE_GTY = 'token-exchange';
const EXCHANGED_TTL = 300;
// Cookie signing keys, shared by every Provider instance of this process.
const COOKIE_KEYS = [crypto.randomBytes(32).toString('base64url')];

const log = (...args) => console.log(new Date().toISOString(), ...args);

// ---- keys ----------------------------------------------------------------------------------------

let keyCounter = 0;
function newKey() {
  keyCounter += 1;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `key-${keyCounter}-${crypto.randomBytes(4).toString('hex')}`;
  return { kid, publicKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

// The current key set, signing key first (oidc-provider signs with the first key that fits).
let keys = [newKey()];

// ---- what /admin/state reports -------------------------------------------------------------------

const state = {
  jwksFetches: [], // {at, userAgent, kids}
  interactions: [], // {at, prompt, clientId, accountId}
  exchanges: [], // {at, clientId, sub, aud, subjectJti, subjectKid, issuedJti, issuedKid, expiresIn}
  refusedExchanges: [], // {at, error, description}
  reloads: [], // {at, signingKid, kids}
  refuseAllExchanges: false, // POST /admin/exchanges?refuse=1|0
};

// ---- JWS helpers (node:crypto only) --------------------------------------------------------------

function decodeSegment(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

function peek(jwt) {
  const [h, p] = jwt.split('.');
  return { header: decodeSegment(h), payload: decodeSegment(p) };
}

// Verifies an access token this server issued, against the current key set. Throws with a reason.
function verifyOwnAccessToken(jwt) {
  if (typeof jwt !== 'string') throw new Error('not a string');
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  let header;
  let payload;
  try {
    header = decodeSegment(parts[0]);
    payload = decodeSegment(parts[1]);
  } catch {
    throw new Error('not a JWT');
  }
  if (header.alg !== 'RS256') throw new Error(`alg ${header.alg} is not RS256`);
  if (header.typ !== 'at+jwt') throw new Error(`typ ${header.typ} is not at+jwt`);
  const key = keys.find((k) => k.kid === header.kid);
  if (!key) throw new Error(`kid ${header.kid} is not in the current key set`);
  const ok = crypto.verify(
    'sha256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    key.publicKey,
    Buffer.from(parts[2], 'base64url'),
  );
  if (!ok) throw new Error('signature does not verify');
  const now = Math.floor(Date.now() / 1000);
  if (payload.iss !== ISSUER) throw new Error(`iss ${payload.iss} is not ${ISSUER}`);
  if (typeof payload.exp !== 'number' || payload.exp <= now) throw new Error('expired or without exp');
  if (typeof payload.sub !== 'string' || !payload.sub) throw new Error('no sub');
  return { header, payload };
}

// ---- the token exchange grant --------------------------------------------------------------------

const EXCHANGE_PARAMS = [
  'audience', 'resource', 'scope', 'requested_token_type',
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
];

function invalidGrant(description) {
  const error = new errors.InvalidGrant();
  error.error_description = description;
  return error;
}

function asList(v) {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

async function tokenExchange(ctx) {
  const { params, client, provider } = ctx.oidc;
  const refuse = (error) => {
    state.refusedExchanges.push({ at: Date.now(), error: error.error, description: error.error_description });
    log(`EXCHANGE REFUSED client=${client.clientId} error=${error.error} (${error.error_description})`);
    throw error;
  };

  // Only the gateway's confidential client may exchange (the grant is registered for it alone,
  // and oidc-provider has authenticated it before this runs).
  if (client.clientId !== GATEWAY_CLIENT_ID || client.clientAuthMethod !== 'client_secret_basic') {
    refuse(new errors.UnauthorizedClient('only the gateway client may exchange tokens'));
  }
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    refuse(new errors.InvalidRequest('subject_token_type must be urn:ietf:params:oauth:token-type:access_token'));
  }
  if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    refuse(new errors.InvalidRequest('only access tokens can be requested'));
  }
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    refuse(new errors.InvalidRequest('actor tokens are not supported'));
  }
  if (!params.subject_token) refuse(new errors.InvalidRequest('subject_token is required'));
  if (state.refuseAllExchanges) refuse(invalidGrant('exchanges are switched off (POST /admin/exchanges?refuse=1)'));

  const targets = new Set([...asList(params.audience), ...asList(params.resource)]);
  if (targets.size !== 1) refuse(new errors.InvalidTarget('exactly one audience/resource value is required'));
  const [target] = targets;
  if (target !== BACKEND_AUDIENCE) refuse(new errors.InvalidTarget('unknown audience'));

  let subject;
  try {
    subject = verifyOwnAccessToken(params.subject_token);
  } catch (e) {
    refuse(invalidGrant(`subject_token: ${e.message}`));
  }
  const subjectAud = asList(subject.payload.aud);
  if (subjectAud.length !== 1 || subjectAud[0] !== GATEWAY_RESOURCE) {
    refuse(invalidGrant('subject_token: not issued for the gateway'));
  }

  const now = Math.floor(Date.now() / 1000);
  const expiresIn = Math.min(EXCHANGED_TTL, subject.payload.exp - now);
  const token = new provider.AccessToken({
    accountId: subject.payload.sub,
    client,
    gty: EXCHANGE_GTY,
    expiresIn,
  });
  // A resource server record the way oidc-provider's grants attach one (see its ResourceServer):
  // the audience, JWT format, RS256 with the current signing key.
  token.resourceServer = {
    identifier: () => target,
    audience: target,
    scope: '',
    accessTokenFormat: 'jwt',
    accessTokenTTL: expiresIn,
    jwt: { sign: { alg: 'RS256' } },
  };
  const value = await token.save();
  const issued = peek(value);

  state.exchanges.push({
    at: Date.now(),
    clientId: client.clientId,
    sub: issued.payload.sub,
    aud: issued.payload.aud,
    subjectJti: subject.payload.jti,
    subjectKid: subject.header.kid,
    issuedJti: issued.payload.jti,
    issuedKid: issued.header.kid,
    expiresIn,
  });
  log(`EXCHANGE client=${client.clientId} sub=${issued.payload.sub} aud=${issued.payload.aud} `
    + `subject_jti=${subject.payload.jti} (kid ${subject.header.kid}) -> jti=${issued.payload.jti} (kid ${issued.header.kid})`);

  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: expiresIn,
  };
}

// ---- the Provider (rebuilt on every key rotation) ------------------------------------------------

function buildProvider() {
  const provider = new Provider(ISSUER, {
    jwks: { keys: keys.map((k) => k.jwk) },
    cookies: { keys: COOKIE_KEYS },
    clients: [{
      client_id: GATEWAY_CLIENT_ID,
      client_secret: STS_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [TOKEN_EXCHANGE],
      response_types: [],
      redirect_uris: [],
    }],
    scopes: ['openid', GATEWAY_SCOPE],
    claims: { openid: ['sub'] },
    async findAccount(_ctx, id) {
      if (id !== USER) return undefined;
      return { accountId: USER, async claims() { return { sub: USER }; } };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        async getResourceServerInfo(_ctx, resourceIndicator) {
          // Authorization requests get tokens for the gateway only; the backend's audience is
          // reachable through the exchange grant alone.
          if (resourceIndicator !== GATEWAY_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: GATEWAY_SCOPE,
            audience: GATEWAY_RESOURCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims(_ctx, token) {
      if (token.gty === EXCHANGE_GTY) return { act: { sub: token.clientId } };
      return undefined;
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 300,
      Session: 3600,
      IdToken: 600,
    },
  });
  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, EXCHANGE_PARAMS, ['audience', 'resource']);
  for (const event of ['server_error', 'grant.error', 'authorization.error', 'registration_create.error',
    'jwks.error', 'discovery.error']) {
    provider.on(event, (_ctx, err) => {
      log(`EVENT ${event}: ${err.error ?? err.name} ${err.error_description ?? err.message}`
        + `${err.error_detail ? ` (${err.error_detail})` : ''}`);
    });
  }
  state.reloads.push({ at: Date.now(), signingKid: keys[0].kid, kids: keys.map((k) => k.kid) });
  log(`provider (re)built: signing key ${keys[0].kid}, published ${keys.map((k) => k.kid).join(', ')}`);
  return { provider, handle: provider.callback() };
}

let current = buildProvider();

// ---- the automatic interaction: login as alice, consent to what is missing ------------------------

async function interaction(req, res) {
  const { provider } = current;
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: USER } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: `unexpected prompt ${prompt.name}` };
  }
  const accountId = result.login?.accountId ?? session?.accountId;
  state.interactions.push({ at: Date.now(), prompt: prompt.name, clientId: params.client_id, accountId });
  log(`INTERACTION ${prompt.name} client=${params.client_id} account=${accountId}`);
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// ---- admin -----------------------------------------------------------------------------------------

function json(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function admin(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/admin/state') {
    return json(res, 200, {
      version: OIDC_PROVIDER_VERSION,
      issuer: ISSUER,
      signingKid: keys[0].kid,
      kids: keys.map((k) => k.kid),
      ...state,
    });
  }
  if (req.method === 'POST' && url.pathname === '/admin/rotate') {
    const retire = url.searchParams.getAll('retire');
    const unknown = retire.filter((kid) => !keys.some((k) => k.kid === kid));
    if (unknown.length) return json(res, 400, { error: `unknown kid(s) ${unknown.join(', ')}` });
    keys = [newKey(), ...keys.filter((k) => !retire.includes(k.kid))];
    current = buildProvider();
    return json(res, 200, { signingKid: keys[0].kid, kids: keys.map((k) => k.kid), retired: retire });
  }
  if (req.method === 'POST' && url.pathname === '/admin/exchanges') {
    state.refuseAllExchanges = url.searchParams.get('refuse') === '1';
    log(`exchanges ${state.refuseAllExchanges ? 'refused from now on' : 'allowed again'}`);
    return json(res, 200, { refuseAllExchanges: state.refuseAllExchanges });
  }
  return json(res, 404, { error: 'not found' });
}

// ---- the HTTP server -------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const url = new URL(req.url, ISSUER);
  res.on('finish', () => {
    if (!url.pathname.startsWith('/admin/')) log(`HTTP ${req.method} ${url.pathname} -> ${res.statusCode}`);
  });
  const fail = (e) => {
    log(`ERROR ${req.method} ${url.pathname}: ${e.stack ?? e}`);
    if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: String(e.message ?? e) });
  };
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res).catch(fail);
    return;
  }
  if (url.pathname.startsWith('/admin/')) {
    try { admin(req, res, url); } catch (e) { fail(e); }
    return;
  }
  if (req.method === 'GET' && url.pathname === '/jwks') {
    state.jwksFetches.push({ at: Date.now(), userAgent: req.headers['user-agent'] ?? '', kids: keys.map((k) => k.kid) });
  }
  current.handle(req, res);
});
server.listen(PORT, '127.0.0.1', () => {
  log(`oidc-provider ${OIDC_PROVIDER_VERSION} (node ${process.version}) listening on ${ISSUER}; `
    + `resource ${GATEWAY_RESOURCE}, exchange audience ${BACKEND_AUDIENCE}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); process.exit(0); });
}
