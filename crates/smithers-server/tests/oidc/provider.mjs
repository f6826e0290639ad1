// The OpenID provider the sign-in tests run against: panva's oidc-provider
// (the certified implementation), with its development login and consent
// pages, which a test fills in over plain HTTP. It listens on a free
// loopback port and prints `issuer <URL>` once it answers.
//
//   SMITHERS_TEST_OIDC_MODULES=<node_modules> node provider.mjs '<clients>' ['<options>']
//
// The clients are oidc-provider client metadata (client_id, client_secret,
// redirect_uris, id_token_signed_response_alg, ...), as JSON; the options,
// a JSON object, are more of its configuration (conformIdTokenClaims:
// false puts the profile claims in the ID token, not only at the user
// info endpoint). Every login is an
// account whose sub and preferred_username are the login typed and whose
// email is <login>@example.test. PKCE (RFC 7636, S256) is required of
// every client, so the provider checks the verifier itself.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.SMITHERS_TEST_OIDC_MODULES;
if (!modules) {
  console.error('SMITHERS_TEST_OIDC_MODULES names no node_modules (scripts/lib.sh ensure_oidc_provider installs one)');
  process.exit(2);
}
const packageDir = join(modules, 'oidc-provider');
const { main } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const { default: Provider } = await import(pathToFileURL(join(packageDir, main)).href);

const clients = JSON.parse(process.argv[2] ?? '[]');
const options = JSON.parse(process.argv[3] ?? '{}');

// A signing key of each kind the clients may ask for, new at each start.
const key = (kid, alg, pair) => ({
  ...generateKeyPairSync(...pair).privateKey.export({ format: 'jwk' }),
  kid,
  alg,
  use: 'sig',
});
const jwks = {
  keys: [
    key('rs256', 'RS256', ['rsa', { modulusLength: 2048 }]),
    key('es256', 'ES256', ['ec', { namedCurve: 'P-256' }]),
  ],
};

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks,
    cookies: { keys: ['smithers-test-provider-cookie-key'] },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username'],
      email: ['email', 'email_verified'],
    },
    pkce: { required: () => true },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            preferred_username: id,
            email: `${id}@example.test`,
            email_verified: true,
          };
        },
      };
    },
    ...options,
  });
  server.on('request', provider.callback());
  console.log(`issuer ${issuer}`);
});
