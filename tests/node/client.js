// An HTTPS client on Node.js's https module (OpenSSL on memory BIOs), for
// hdrtap's tests (tests/tls.rs): N GETs of /ID/SEQ with X-Seq: SEQ, C at a
// time over keep-alive sockets, after DELAY ms; prints "done OK FAILED".
// Usage: node client.js PORT ID N C [DELAY]
const https = require('https');
const [port, id, n, c, delay] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5], +process.argv[6] || 0];
const agent = new https.Agent({ keepAlive: true, maxSockets: c });
let next = 1, done = 0, failed = 0;
function one() {
  if (next > n) return;
  const seq = next++;
  https.get({ host: '127.0.0.1', port, path: `/${id}/${seq}`, rejectUnauthorized: false, agent, headers: { 'X-Seq': seq } }, (r) => {
    r.resume();
    r.on('end', () => { done++; if (done + failed === n) { console.log(`done ${done} ${failed}`); agent.destroy(); } else one(); });
  }).on('error', (e) => { failed++; console.log('error', e.message); if (done + failed === n) { console.log(`done ${done} ${failed}`); agent.destroy(); process.exitCode = 1; } else one(); });
}
setTimeout(() => { for (let i = 0; i < c; i++) one(); }, delay);
