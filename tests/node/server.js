// An HTTPS server on Node.js's https module (OpenSSL on memory BIOs), for
// hdrtap's tests (tests/tls.rs): echoes X-Seq as X-Seen-Seq; prints
// "listening PORT" once ready. Usage: node server.js CERT KEY
const https = require('https');
const fs = require('fs');
const [cert, key] = [process.argv[2], process.argv[3]];
const srv = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  res.setHeader('X-Seen-Seq', req.headers['x-seq'] || '');
  res.end('ok ' + req.url + '\n');
});
srv.listen(0, '127.0.0.1', () => { console.log('listening ' + srv.address().port); });
