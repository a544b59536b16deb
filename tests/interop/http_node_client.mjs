// Node OAuth clients against bearer_grpc's HTTP face: openid-client (discovery, client
// credentials with client_secret_basic, introspection and revocation with
// client_secret_post) and jose (createRemoteJWKSet + jwtVerify with typ at+jwt).
//
//   node http_node_client.mjs ISSUER AUDIENCE
// with CLIENT_ID, CLIENT_SECRET, INTROSPECTOR_ID, INTROSPECTOR_SECRET in the environment
// (secrets never on the command line). Prints one JSON object of results.
import * as client from 'openid-client';
import * as jose from 'jose';

const [issuer, audience] = process.argv.slice(2);
const env = process.env;
const insecure = issuer.startsWith('http://') ? { execute: [client.allowInsecureRequests] } : {};

const service = await client.discovery(
  new URL(issuer), env.CLIENT_ID, undefined, client.ClientSecretBasic(env.CLIENT_SECRET), insecure);
const resourceServer = await client.discovery(
  new URL(issuer), env.INTROSPECTOR_ID, undefined, client.ClientSecretPost(env.INTROSPECTOR_SECRET),
  insecure);
const metadata = service.serverMetadata();

const tokens = await client.clientCredentialsGrant(service, { scope: 'orders.read', audience });
const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
const verified = await jose.jwtVerify(tokens.access_token, jwks, { issuer, audience, typ: 'at+jwt' });

let wrongTyp = null;
try {
  await jose.jwtVerify(tokens.access_token, jwks, { issuer, audience, typ: 'JWT' });
} catch (error) {
  wrongTyp = error.code;
}

const before = await client.tokenIntrospection(resourceServer, tokens.access_token);
await client.tokenRevocation(service, tokens.access_token);
const after = await client.tokenIntrospection(resourceServer, tokens.access_token);

let refused = null;
try {
  await client.clientCredentialsGrant(
    await client.discovery(new URL(issuer), env.CLIENT_ID, undefined,
      client.ClientSecretBasic('wrong-secret'), insecure), { scope: 'orders.read' });
} catch (error) {
  refused = { error: error.error ?? error.cause?.[0]?.parameters?.error ?? null, code: error.code, status: error.status };
}

console.log(JSON.stringify({
  issuer: metadata.issuer,
  token_type: tokens.token_type,
  scope: tokens.scope,
  verified: { sub: verified.payload.sub, typ: verified.protectedHeader.typ, alg: verified.protectedHeader.alg },
  wrongTyp,
  before: { active: before.active, sub: before.sub, client_id: before.client_id },
  after,
  refused,
}));
