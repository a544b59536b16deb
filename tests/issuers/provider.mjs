// A real OpenID provider for the tests (the npm package oidc-provider), on loopback.
//
//   node provider.mjs PORT [CERT KEY]
//
// PORT 0 picks a free port. With CERT and KEY (PEM files) it serves HTTPS. Every start
// makes a new ES256 signing key, so a restart on the same port is a key rotation. When it
// listens it prints one JSON line: {"issuer": ..., "kid": ...}.
//
// Clients: "svc" (client_credentials, client_secret_basic) and "orders-api" (a resource
// server that introspects). Resource indicators (RFC 8707) decide the access token format:
// https://orders.test and https://other.test get JWTs for that audience, urn:opaque gets an
// opaque token.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const [portArg = '0', certFile, keyFile] = process.argv.slice(2);
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };

const JWT_RESOURCES = new Set(['https://orders.test', 'https://other.test']);

const server = certFile
  ? https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) })
  : http.createServer();

server.listen(Number(portArg), '127.0.0.1', () => {
  const scheme = certFile ? 'https' : 'http';
  const host = certFile ? 'localhost' : '127.0.0.1';
  const issuer = `${scheme}://${host}:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'svc',
        client_secret: 'svc-secret-0123456789abcdef0123456789abcdef',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'orders-api',
        client_secret: 'api-secret-0123456789abcdef0123456789abcdef',
        grant_types: [],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey] },
    clientBasedCORS: () => false,
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (JWT_RESOURCES.has(resource)) {
            return {
              scope: 'orders.read orders.write',
              audience: resource,
              accessTokenTTL: 600,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          }
          if (resource === 'urn:opaque') {
            return { scope: 'orders.read', audience: resource, accessTokenTTL: 600, accessTokenFormat: 'opaque' };
          }
          throw new errors.InvalidTarget();
        },
      },
    },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, kid: signingKey.kid })}\n`);
});
