// A real OAuth 2.0 server to compare with: node oidc-provider issuing JWT access tokens
// (ES256, typ at+jwt) for the client-credentials grant, in memory, on 127.0.0.1:PORT.
//
//   node scripts/benchkit/oidc_provider.mjs PORT CLIENT_ID
// reads the client secret on stdin (one line), prints "READY" once listening, and
// stops when stdin closes.
import * as jose from 'jose';
import Provider from 'oidc-provider';
import readline from 'node:readline';

const [port, clientId] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin });
const secret = await new Promise((resolve) => lines.once('line', resolve));

const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const key = { ...(await jose.exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench' };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [key] },
  scopes: ['a'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:bench:orders',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'a',
        audience: 'orders',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 900,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
const server = provider.listen(Number(port), '127.0.0.1', () => console.log('READY'));
lines.on('close', () => server.close(() => process.exit(0)));
