#!/usr/bin/env node
// The protected service of the mesh tests, written with @grpc/grpc-js (not Python): it
// serves mesh.v1.Echo (protos/mesh/v1/echo.proto, one method of each RPC kind) and
// grpc.health.v1.Health/Check, plaintext on 127.0.0.1, and trusts whatever Envoy forwards.
// Every answer carries the x-bearer-* headers the call arrived with.
//
//   node tests/mesh/echo_server.js [PORT]       (default 0: a free port)
//
// Prints one JSON line once listening, {"port": N}, then serves until SIGTERM.
'use strict';

const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.join(__dirname, 'protos');

function load(file) {
  const definition = protoLoader.loadSync(file, {
    includeDirs: [PROTOS],
    keepCase: true,
    defaults: true,
    enums: String,
  });
  return grpc.loadPackageDefinition(definition);
}

function identity(metadata) {
  const seen = {};
  for (const key of Object.keys(metadata.getMap())) {
    if (key.startsWith('x-bearer-')) seen[key] = metadata.get(key).map(String).join(',');
  }
  return seen;
}

const echo = {
  Unary(call, callback) {
    callback(null, { text: call.request.text, identity: identity(call.metadata) });
  },
  ServerStream(call) {
    const seen = identity(call.metadata);
    for (let i = 0; i < 3; i += 1) call.write({ text: `${call.request.text} ${i}`, identity: seen });
    call.end();
  },
  ClientStream(call, callback) {
    let text = '';
    call.on('data', (request) => {
      text = request.text;
    });
    call.on('end', () => callback(null, { text, identity: identity(call.metadata) }));
  },
  Bidi(call) {
    const seen = identity(call.metadata);
    call.on('data', (request) => call.write({ text: request.text, identity: seen }));
    call.on('end', () => call.end());
  },
};

function main() {
  const port = Number(process.argv[2] || 0);
  const server = new grpc.Server();
  server.addService(load('mesh/v1/echo.proto').mesh.v1.Echo.service, echo);
  server.addService(load('grpc/health/v1/health.proto').grpc.health.v1.Health.service, {
    Check(_call, callback) {
      callback(null, { status: 'SERVING' });
    },
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
    if (error) {
      process.stderr.write(`echo_server.js: ${error.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ port: bound })}\n`);
  });
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

main();
