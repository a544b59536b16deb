// oidc-provider (npm) issuing certificate-bound access tokens (RFC 8705), for the tests.
//
//   node provider_mtls.mjs CERT KEY CA
//
// Serves HTTPS on 127.0.0.1 (a free port) with CERT and KEY, and asks every client for a
// certificate without requiring one (the verifier fetches discovery and keys without).
// A certificate counts only when CA signed it. Prints one JSON line once listening:
// {"issuer": "https://localhost:PORT"}.
//
// Clients (client_credentials, client_secret_basic): "bound-svc" gets tokens bound to the
// certificate it presents at the token endpoint (tls_client_certificate_bound_access_tokens)
// and cannot get one without; "plain-svc" gets unbound tokens. Both get JWTs for the
// resource https://orders.test and opaque tokens for urn:opaque, which "orders-api" (no
// grants) introspects; the answer for a bound token carries its cnf (RFC 8705 §3.2).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const [certFile, keyFile, caFile] = process.argv.slice(2);
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };

function clientCertificate(ctx) {
  const socket = ctx.req.socket;
  // a certificate the TLS layer did not verify against CA is no certificate
  return socket.authorized ? socket.getPeerX509Certificate() : undefined;
}

function client(clientId, bound, grants = ['client_credentials']) {
  return {
    client_id: clientId,
    client_secret: `${clientId}-secret-0123456789abcdef0123456789abcdef`,
    grant_types: grants,
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    tls_client_certificate_bound_access_tokens: bound,
  };
}

const server = https.createServer({
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
  ca: readFileSync(caFile),
  requestCert: true,
  rejectUnauthorized: false,
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `https://localhost:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [client('bound-svc', true), client('plain-svc', false), client('orders-api', false, [])],
    jwks: { keys: [signingKey] },
    clientBasedCORS: () => false,
    clientDefaults: { id_token_signed_response_alg: 'ES256' }, // the only key it has
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      mTLS: { enabled: true, certificateBoundAccessTokens: true, getCertificate: clientCertificate },
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource === 'urn:opaque') {
            return { scope: 'orders.read', audience: resource, accessTokenTTL: 600, accessTokenFormat: 'opaque' };
          }
          if (resource !== 'https://orders.test') {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'orders.read',
            audience: resource,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
