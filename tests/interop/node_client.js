#!/usr/bin/env node
// Calls the example shop.v1.OrdersService (examples/protos/shop/v1/orders.proto) from Node
// with @grpc/grpc-js: a client bearer_grpc did not write, loading the .proto at run time.
//
//   BEARER_GRPC_TOKEN=<access token> node tests/interop/node_client.js --target 127.0.0.1:50061
//   BEARER_GRPC_TOKEN=... node tests/interop/node_client.js --target localhost:50062 --tls-ca cert.pem
//
// Plaintext: the token goes as `authorization: Bearer <token>` call metadata (grpc-js
// refuses to compose call credentials onto insecure channel credentials). With --tls-ca:
// TLS channel credentials composed with call credentials that add the same metadata.
// Without BEARER_GRPC_TOKEN no token is sent.
//
// Options: --calls GetOrder,ListOrders,UploadOrders,Chat (default: all four, in that order).
// Prints one JSON object per call on stdout, e.g.
//   {"rpc":"GetOrder","ok":true,"response":{"order":{"order_id":"order-1",...}}}
//   {"rpc":"GetOrder","ok":false,"code":16,"status":"UNAUTHENTICATED",
//    "details":"missing bearer token","errorInfo":[{"reason":"TOKEN_MISSING",...}]}
// where errorInfo is every google.rpc.ErrorInfo decoded from grpc-status-details-bin.
// Exit status: 0 if every call succeeded, 1 if one failed, 2 for a usage error.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'examples', 'protos');
const DEADLINE_MS = 10000;
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';

// google.rpc.Status and google.rpc.ErrorInfo, as googleapis defines them.
const RPC_TYPES = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 },
              },
            },
          },
        },
      },
    },
  },
});
const Status = RPC_TYPES.lookupType('google.rpc.Status');
const ErrorInfo = RPC_TYPES.lookupType('google.rpc.ErrorInfo');

function errorInfos(error) {
  const infos = [];
  const values = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  for (const value of values) {
    const status = Status.decode(value);
    for (const detail of status.details) {
      if (detail.type_url === ERROR_INFO_TYPE) {
        infos.push(ErrorInfo.toObject(ErrorInfo.decode(detail.value), { defaults: true }));
      }
    }
  }
  return infos;
}

function unary(method) {
  return new Promise((resolve, reject) => {
    method((error, response) => (error ? reject(error) : resolve(response)));
  });
}

function collect(call) {
  return new Promise((resolve, reject) => {
    const responses = [];
    call.on('data', (response) => responses.push(response));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
  });
}

const CALLS = {
  GetOrder: (client, metadata, options) =>
    unary((done) => client.GetOrder({ order_id: 'order-1' }, metadata, options, done)),
  ListOrders: (client, metadata, options) =>
    collect(client.ListOrders({ page_size: 3 }, metadata, options)),
  UploadOrders: (client, metadata, options) =>
    unary((done) => {
      const call = client.UploadOrders(metadata, options, done);
      call.on('error', () => {}); // reported through `done`
      call.write({ item: 'green lamp', quantity: 1 });
      call.write({ item: 'grey rug', quantity: 3 });
      call.end();
    }),
  Chat: (client, metadata, options) => {
    const call = client.Chat(metadata, options);
    const responses = collect(call);
    call.write({ text: 'hello' });
    call.write({ text: 'anything new?' });
    call.end();
    return responses;
  },
};

function usage(message) {
  process.stderr.write(`node_client.js: ${message}\n`);
  process.stderr.write('usage: node_client.js --target HOST:PORT [--tls-ca FILE] [--calls A,B]\n');
  process.exit(2);
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        'tls-ca': { type: 'string' },
        calls: { type: 'string', default: Object.keys(CALLS).join(',') },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  if (!values.target) usage('--target is required');
  const names = values.calls.split(',');
  for (const name of names) if (!(name in CALLS)) usage(`unknown call ${name}`);

  const definition = protoLoader.loadSync('shop/v1/orders.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const { OrdersService } = grpc.loadPackageDefinition(definition).shop.v1;

  const token = process.env.BEARER_GRPC_TOKEN || '';
  const metadata = new grpc.Metadata();
  let credentials;
  if (values['tls-ca']) {
    credentials = grpc.credentials.createSsl(fs.readFileSync(values['tls-ca']));
    if (token) {
      const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
        const added = new grpc.Metadata();
        added.add('authorization', `Bearer ${token}`);
        callback(null, added);
      });
      credentials = grpc.credentials.combineChannelCredentials(credentials, bearer);
    }
  } else {
    credentials = grpc.credentials.createInsecure();
    if (token) metadata.add('authorization', `Bearer ${token}`);
  }
  const client = new OrdersService(values.target, credentials);

  let failed = false;
  for (const name of names) {
    const options = { deadline: Date.now() + DEADLINE_MS };
    let result;
    try {
      const response = await CALLS[name](client, metadata, options);
      result = { rpc: name, ok: true, response };
    } catch (error) {
      failed = true;
      result = {
        rpc: name,
        ok: false,
        code: error.code,
        status: grpc.status[error.code],
        details: error.details,
        errorInfo: errorInfos(error),
      };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  client.close();
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`node_client.js: ${error.stack || error}\n`);
  process.exitCode = 1;
});
