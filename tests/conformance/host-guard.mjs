#!/usr/bin/env node
// Loopback reverse proxy that adds DNS-rebinding protection (Host/Origin
// validation) in front of supergateway, which has none.
//
// The conformance scenario `dns-rebinding-protection` checks a property of the
// HTTP endpoint, not of the stdio server behind it, so the bridge has to
// provide it. Requests whose Host (or Origin, when sent) is not localhost,
// 127.0.0.1 or [::1] get HTTP 403; everything else is piped unchanged, both
// ways, streaming (SSE responses are not buffered).
//
// usage: host-guard.mjs LISTEN_PORT TARGET_PORT

import http from 'node:http';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
if (!listenPort || !targetPort) {
  console.error('usage: host-guard.mjs LISTEN_PORT TARGET_PORT');
  process.exit(2);
}

const LOCAL = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function hostnameOf(hostHeader) {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

function allowed(req) {
  const host = req.headers.host;
  if (!host || !LOCAL.has(hostnameOf(host))) return false;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let h;
    try {
      h = new URL(origin).hostname.toLowerCase();
    } catch {
      return false;
    }
    if (!LOCAL.has(h)) return false;
  }
  return true;
}

const server = http.createServer((req, res) => {
  if (!allowed(req)) {
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Forbidden: non-localhost Host or Origin header' },
        id: null,
      }),
    );
    req.resume();
    return;
  }
  const up = http.request(
    { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers);
      res.flushHeaders();
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    },
  );
  up.on('error', (err) => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bad gateway: ${err.message}`);
    } else {
      res.destroy();
    }
  });
  // Client went away (e.g. cancelled an SSE stream): drop the upstream request too.
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
});

server.listen(listenPort, '127.0.0.1');
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
