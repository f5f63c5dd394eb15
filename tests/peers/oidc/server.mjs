// A real OpenID Connect provider on loopback for deskgate's tests: npm oidc-provider with
// one confidential client (three client ids that differ only in the ID token signing
// algorithm), PKCE required, Google-like claims in the ID token, and a password form.
//
//   node server.mjs [PORT]        (or OIDC_PORT; default 19380)
//
// Environment: OIDC_CLIENT_ID (default deskgate-test; the ES256 and EdDSA clients add
// -es256 / -eddsa), OIDC_CLIENT_SECRET (default deskgate-test-secret), OIDC_REDIRECT_URIS
// (comma-separated; default http://127.0.0.1:9/callback).
//
// Signing keys are generated at every start, so a restart means a new key set.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 19380);
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.OIDC_CLIENT_ID || 'deskgate-test';
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'deskgate-test-secret';
const redirectUris = (process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:9/callback')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);

// Passwords are "Passw0rd-<local part>". Groups are an array for alice and a single string
// for dave, as real providers send both shapes. Erin's sign-ins say she used a second factor
// (the ID token's `amr` is ["pwd", "otp", "mfa"]); nobody else's say how.
const accounts = new Map(
  [
    {
      sub: '1001', email: 'alice@corp.example.com', email_verified: true, name: 'Alice Example',
      given_name: 'Alice', family_name: 'Example', hd: 'corp.example.com',
      groups: ['helpdesk-agents', 'vips'],
    },
    {
      sub: '1002', email: 'bob@gmail.example', email_verified: true, name: 'Bob Personal',
      given_name: 'Bob', family_name: 'Personal',
    },
    {
      sub: '1003', email: 'carol@corp.example.com', email_verified: false, name: 'Carol Unverified',
      hd: 'corp.example.com', groups: ['helpdesk-agents'],
    },
    {
      sub: '1004', email: 'dave@other.example.com', email_verified: true, name: 'Dave Other',
      hd: 'other.example.com', groups: 'other-staff',
    },
    {
      sub: '1005', email: 'erin@corp.example.com', email_verified: true, name: 'Erin Strong',
      hd: 'corp.example.com', groups: ['helpdesk-agents'], amr: ['pwd', 'otp', 'mfa'],
    },
    {
      // Rex is the re-check test's alone: it changes his groups and revokes his grants.
      sub: '1006', email: 'rex@corp.example.com', email_verified: true, name: 'Rex Recheck',
      given_name: 'Rex', family_name: 'Recheck', hd: 'corp.example.com',
      groups: ['helpdesk-agents', 'vips'],
    },
  ].map((account) => [account.email, account]),
);
const bySub = new Map([...accounts.values()].map((account) => [account.sub, account]));

function signingKey(type, options) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig' };
}

const keys = [
  signingKey('rsa', { modulusLength: 2048 }),
  signingKey('ec', { namedCurve: 'P-256' }),
  signingKey('ed25519'),
];

const client = (id, alg) => ({
  client_id: id,
  client_secret: clientSecret,
  redirect_uris: redirectUris,
  post_logout_redirect_uris: redirectUris,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  id_token_signed_response_alg: alg,
});

const allClaims = ['sub', 'email', 'email_verified', 'name', 'given_name', 'family_name', 'hd', 'groups'];

const provider = new Provider(issuer, {
  clients: [
    client(clientId, 'RS256'),
    client(`${clientId}-es256`, 'ES256'),
    client(`${clientId}-eddsa`, 'EdDSA'),
    // The client of the outage test: /test/outage cuts off only requests made as it.
    client(`${clientId}-outage`, 'RS256'),
  ],
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  // Google puts profile and email claims into the ID token itself.
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: {
    // `amr`: how the person signed in, in the ID token whenever the login said (Erin's does).
    openid: ['sub', 'hd', 'groups', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = bySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const { sub: id, email, email_verified, name, given_name, family_name, hd, groups } = account;
        return { sub: id, email, email_verified, name, given_name, family_name, hd, groups };
      },
    };
  },
  // Consent is granted without asking: every scope and claim the client asks for.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    const grant = (grantId && (await oidc.provider.Grant.find(grantId)))
      || new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope([...oidc.requestParamScopes].join(' '));
    grant.addOIDCClaims(allClaims);
    grantsOf(oidc.session.accountId).add(await grant.save());
    return grant;
  },
});

// Test-only controls, for sessions that read the person again with a refresh token:
//   POST /test/groups?email=E&group=G…   the person's groups from now on (none: no groups)
//   POST /test/revoke?email=E   destroys every grant of the person: refreshes get invalid_grant
//   POST /test/outage?on=1|0    while on, every request made as the client <id>-outage (its
//                               Basic credentials, or client_id in the query) is answered 503;
//                               other clients, and the tests using them, are not touched
const grants = new Map();
function grantsOf(accountId) {
  if (!grants.has(accountId)) grants.set(accountId, new Set());
  return grants.get(accountId);
}
let outage = false;
// The client a request is made as: HTTP Basic credentials, or client_id in the query.
function asClient(ctx) {
  const basic = /^Basic\s+(.+)$/i.exec(ctx.get('authorization') || '');
  if (basic) {
    const pair = Buffer.from(basic[1], 'base64').toString();
    return decodeURIComponent(pair.split(':')[0].replace(/\+/g, ' '));
  }
  return ctx.query.client_id;
}
provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.on('grant.error', (ctx, error) => console.error('grant.error', error.message, error.error_detail));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, message) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to the test provider</title></head>
<body>
<h1>Sign in</h1>
${message ? `<p class="error">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Email <input name="email" type="email" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit">Cancel</button></form>
</body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/test/')) {
    if (outage && asClient(ctx) === `${clientId}-outage`) {
      ctx.status = 503;
      ctx.body = 'simulated outage';
      return undefined;
    }
    return next();
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  const url = new URL(ctx.href);
  if (ctx.path === '/test/outage') {
    outage = url.searchParams.get('on') === '1';
    console.log(`outage ${outage ? 'on' : 'off'}`);
    ctx.status = 204;
    return undefined;
  }
  const account = accounts.get(url.searchParams.get('email') ?? '');
  if (!account) ctx.throw(404, 'no such person');
  if (ctx.path === '/test/groups') {
    account.groups = url.searchParams.getAll('group');
    console.log(`groups of ${account.email}: ${JSON.stringify(account.groups)}`);
  } else if (ctx.path === '/test/revoke') {
    for (const id of grantsOf(account.sub)) {
      const grant = await provider.Grant.find(id);
      if (grant) await grant.destroy();
    }
    grants.delete(account.sub);
    console.log(`revoked the grants of ${account.email}`);
  } else {
    ctx.throw(404);
  }
  ctx.status = 204;
  return undefined;
});

// The login form, ahead of the provider's own routes.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|abort))?$/.exec(ctx.path);
  if (!match) return next();
  const [, uid, action] = match;
  ctx.set('cache-control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');

  if (!action && ctx.method === 'GET' && details.prompt.name === 'consent') {
    // Consent asked for explicitly (prompt=consent, as a refresh token needs): granted
    // without a page, every scope and claim asked for.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    grant.addOIDCClaims(allClaims);
    const grantId = await grant.save();
    grantsOf(details.session.accountId).add(grantId);
    ctx.respond = false;
    return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (!action && ctx.method === 'GET') {
    if (details.prompt.name !== 'login') ctx.throw(500, `unexpected prompt ${details.prompt.name}`);
    ctx.type = 'html';
    ctx.body = loginPage(uid);
    return undefined;
  }
  if (!action || ctx.method !== 'POST') ctx.throw(405);
  if (action === 'abort') {
    console.log('sign-in cancelled');
    ctx.respond = false;
    return provider.interactionFinished(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'the person cancelled the sign-in',
    }, { mergeWithLastSubmission: false });
  }
  const form = await readForm(ctx.req);
  const account = accounts.get(form.get('email') ?? '');
  const expected = account && `Passw0rd-${account.email.split('@')[0]}`;
  if (!account || form.get('password') !== expected) {
    console.log(`sign-in refused for ${JSON.stringify(form.get('email'))}`);
    ctx.type = 'html';
    ctx.body = loginPage(uid, 'Wrong email or password.');
    return undefined;
  }
  console.log(`signed in ${account.email}`);
  // The provider answers on the raw response itself.
  ctx.respond = false;
  const login = { accountId: account.sub, ...(account.amr ? { amr: account.amr } : {}) };
  return provider.interactionFinished(ctx.req, ctx.res, { login }, { mergeWithLastSubmission: false });
});

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening, issuer ${issuer}`);
  console.log(`keys: ${keys.map((key) => `${key.kty}/${key.kid}`).join(' ')}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
