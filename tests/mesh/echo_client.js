#!/usr/bin/env node
// A @grpc/grpc-js client of the mesh tests: calls mesh.v1.Echo (and grpc.health.v1.Health)
// through Envoy, as any non-Python client would, and reports what it got.
//
//   BEARER_GRPC_TOKEN=<token> node tests/mesh/echo_client.js --target 127.0.0.1:PORT \
//       [--calls Unary,ServerStream,ClientStream,Bidi,Health] [--header 'name: value' ...]
//
// The token (if any) goes as `authorization: Bearer <token>`; each --header adds one more
// metadata entry as given (repeat it to send a name twice). Prints one JSON object per
// call: {"rpc", "ok", "replies": [...]} or {"rpc", "ok": false, "code", "status",
// "details", "wwwAuthenticate", "statusDetailsBin"} where statusDetailsBin is the
// base64 of each grpc-status-details-bin value received (the test decodes ErrorInfo).
// Exit status: 0 if every call succeeded, 1 if one failed, 2 for a usage error.
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.join(__dirname, 'protos');
const DEADLINE_MS = 10000;

function load(file) {
  const options = { includeDirs: [PROTOS], keepCase: true, defaults: true, enums: String };
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, options));
}

function unary(start) {
  return new Promise((resolve, reject) => {
    start((error, reply) => (error ? reject(error) : resolve([reply])));
  });
}

function collect(call) {
  return new Promise((resolve, reject) => {
    const replies = [];
    call.on('data', (reply) => replies.push(reply));
    call.on('error', reject);
    call.on('end', () => resolve(replies));
  });
}

const CALLS = {
  Unary: (echo, _health, md, options) =>
    unary((done) => echo.Unary({ text: 'one' }, md, options, done)),
  ServerStream: (echo, _health, md, options) => collect(echo.ServerStream({ text: 'many' }, md, options)),
  ClientStream: (echo, _health, md, options) =>
    unary((done) => {
      const call = echo.ClientStream(md, options, done);
      call.on('error', () => {}); // reported through `done`
      call.write({ text: 'first' });
      call.write({ text: 'last' });
      call.end();
    }),
  Bidi: (echo, _health, md, options) => {
    const call = echo.Bidi(md, options);
    const replies = collect(call);
    call.write({ text: 'ping' });
    call.write({ text: 'pong' });
    call.end();
    return replies;
  },
  Health: (_echo, health, md, options) => unary((done) => health.Check({ service: '' }, md, options, done)),
};

function usage(message) {
  process.stderr.write(`echo_client.js: ${message}\n`);
  process.exit(2);
}

function failure(name, error) {
  const trailers = error.metadata || new grpc.Metadata();
  return {
    rpc: name,
    ok: false,
    code: error.code,
    status: grpc.status[error.code],
    details: error.details,
    wwwAuthenticate: trailers.get('www-authenticate').map(String),
    statusDetailsBin: trailers.get('grpc-status-details-bin').map((v) => Buffer.from(v).toString('base64')),
  };
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        calls: { type: 'string', default: 'Unary,ServerStream,ClientStream,Bidi' },
        header: { type: 'string', multiple: true, default: [] },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  if (!values.target) usage('--target is required');
  const names = values.calls.split(',');
  for (const name of names) if (!(name in CALLS)) usage(`unknown call ${name}`);

  const metadata = new grpc.Metadata();
  const token = process.env.BEARER_GRPC_TOKEN || '';
  if (token) metadata.add('authorization', `Bearer ${token}`);
  for (const header of values.header) {
    const at = header.indexOf(':');
    if (at < 1) usage(`--header must be 'name: value': ${header}`);
    metadata.add(header.slice(0, at).trim().toLowerCase(), header.slice(at + 1).trim());
  }
  const credentials = grpc.credentials.createInsecure();
  const echo = new (load('mesh/v1/echo.proto').mesh.v1.Echo)(values.target, credentials);
  const health = new (load('grpc/health/v1/health.proto').grpc.health.v1.Health)(values.target, credentials);

  let failed = false;
  for (const name of names) {
    const options = { deadline: Date.now() + DEADLINE_MS };
    let result;
    try {
      result = { rpc: name, ok: true, replies: await CALLS[name](echo, health, metadata, options) };
    } catch (error) {
      failed = true;
      result = failure(name, error);
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  echo.close();
  health.close();
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`echo_client.js: ${error.stack || error}\n`);
  process.exitCode = 1;
});
