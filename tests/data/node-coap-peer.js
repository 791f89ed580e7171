// SPDX-License-Identifier: MIT
// An independent CoAP peer for the integration tests: node-coap (npm "coap" 1.5.0), which does
// block-wise transfers its own way. Listens on 127.0.0.1, on an ephemeral port it prints first.
//   PUT|POST /echo  answers with the request's body (2.04 / 2.05), block-wise when it is big
//   GET /big        4,000 bytes 'A'..'Z' repeated, block-wise
//   GET /small      "hello from node-coap"
'use strict';
const coap = require('coap');

function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 0x41 + (i % 26);
  return b;
}
const BIG = pattern(4000);

const server = coap.createServer({ type: 'udp4' });
server.on('request', (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/echo' && (req.method === 'PUT' || req.method === 'POST')) {
    res.code = req.method === 'PUT' ? '2.04' : '2.05';
    return res.end(req.payload);
  }
  if (path === '/big' && req.method === 'GET') return res.end(BIG);
  if (path === '/small' && req.method === 'GET') return res.end('hello from node-coap');
  res.code = '4.04';
  res.end();
});
server.listen(0, '127.0.0.1', () => console.log(server._sock.address().port));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
