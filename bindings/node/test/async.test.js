'use strict';
// AsyncSession: Promises off the event loop, AbortSignal, streamed bodies,
// batches, outcomes, nodemailer-shaped results, and the figures (event-loop
// gap beside nodemailer's, cancel latency, RSS, batch throughput), printed
// as "FIGURE ..." lines. Run through bindings/node/test.sh.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');

const smtpc = require(process.env.SMTPC_NODE_PACKAGE || 'libsmtpc');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run bindings/node/test.sh`);
  return v;
}
const num = (name) => Number(env(name));
const figure = (text) => console.log(`FIGURE node ${text}`);
const status = (key) => Number(/^\S+:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8')
  .split('\n').find((l) => l.startsWith(`${key}:`)))[1]) * 1024;

test('the header\'s constants and functions match the binding', () => {
  const header = fs.readFileSync(env('SMTPC_HEADER'), 'utf8');
  let n = 0;
  for (const [, name, value] of header.matchAll(/^#define SMTPC_((?:E|OUTCOME|STEP|TLS)_[A-Z_]+) (-?\d+)$/gm)) {
    assert.equal(smtpc.codes[name], Number(value), `SMTPC_${name}`);
    n++;
  }
  assert.ok(n >= 30, `${n} constants`);
  for (const [, name, value] of header.matchAll(/^#define SMTPC_OUTCOME_([A-Z_]+) (\d+)$/gm)) {
    assert.equal(smtpc.OUTCOMES[Number(value)], name.toLowerCase());
  }
  assert.deepEqual(smtpc.missingFunctions, []);
});

test('index.d.ts declares what index.js exports, and no more', () => {
  const dts = fs.readFileSync(require.resolve(`${process.env.SMTPC_NODE_PACKAGE || 'libsmtpc'}/index.d.ts`), 'utf8');
  for (const name of Object.keys(smtpc)) {
    assert.match(dts, new RegExp(`export (?:declare )?(?:class|function|const) ${name}\\b`), `export ${name}`);
  }
  for (const [, name] of dts.matchAll(/^export (?:declare )?(?:class|function|const) (\w+)/gm)) {
    assert.ok(name in smtpc, `index.d.ts exports ${name}, index.js does not`);
  }
  for (const cls of ['Session', 'AsyncSession', 'Message']) {
    const body = new RegExp(`export class ${cls}\\b[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(dts)[1];
    const declared = new Set([...body.matchAll(/^ {2}(?:static )?(?:async )?(\w+)\s*[(<]/gm)].map((m) => m[1]));
    const isMethod = (obj, m) => typeof (Object.getOwnPropertyDescriptor(obj, m) || {}).value === 'function';
    const protos = [smtpc[cls].prototype, Object.getPrototypeOf(smtpc[cls].prototype)].filter((p) => p !== Object.prototype);
    const proto = protos.flatMap((p) => Object.getOwnPropertyNames(p).filter((m) => isMethod(p, m)))
      .filter((m) => !m.startsWith('_') && m !== 'constructor');
    for (const m of proto) assert.ok(declared.has(m), `${cls}.${m} is not in index.d.ts`);
    for (const m of declared) {
      if (m === 'constructor') continue;
      assert.ok(protos.some((p) => isMethod(p, m)) || typeof smtpc[cls][m] === 'function',
        `index.d.ts declares ${cls}.${m}, index.js has none`);
    }
    if (cls !== 'Message') assert.equal(typeof smtpc[cls].prototype[Symbol.dispose], 'function');
  }
  assert.equal(typeof smtpc.AsyncSession.prototype[Symbol.asyncDispose], 'function');
});

test('AsyncSession: STARTTLS, login, sendMail with accepted/rejected lists', async () => {
  const s = await smtpc.AsyncSession.open(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'), { caFile: env('SMTPC_TEST_CA') });
  try {
    assert.equal(s.greeting.code, 220);
    assert.equal((await s.ehlo()).code, 250);
    assert.equal((await s.starttls()).code, 220);
    assert.equal((await s.ehlo()).code, 250);
    assert.ok(s.isTLS());
    assert.equal((await s.login(env('SMTPC_TEST_USER'), env('SMTPC_TEST_PASS'))).code, 235);
    const reject = env('SMTPC_TEST_REJECT');
    const info = await s.sendMail({
      from: 'me@example.com', to: ['you@example.com', reject], bcc: 'hidden@example.com',
      raw: 'From: me@example.com\nTo: you@example.com\nSubject: async\n\nhello\n',
    });
    assert.deepEqual(info.accepted, ['you@example.com', 'hidden@example.com']);
    assert.deepEqual(info.rejected, [reject]);
    assert.match(info.response, /^250 /);
    assert.equal(info.outcome, 'accepted');
    assert.equal(s.recipients()[1].enhanced, '5.1.1');
    await assert.rejects(s.sendMail({ from: 'me@example.com', to: reject, raw: 'Subject: x\n\nx\n' }),
      (e) => e instanceof smtpc.MessageRefusedError && e.responseCode === 550 && e.code === 'EENVELOPE' && e.outcome === 'refused');
    // XOAUTH2 on a fresh session.
    assert.equal((await s.quit()).code, 221);
    await s.connect(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'));
    await s.starttls();
    assert.equal((await s.auth('XOAUTH2', env('SMTPC_TEST_USER'), env('SMTPC_TEST_TOKEN'))).code, 235);
    // Calls queue one after the other; queries refuse to run meanwhile.
    const a = s.noop();
    const b = s.noop();
    assert.throws(() => s.lastCode(), smtpc.BusyError);
    assert.deepEqual([(await a).code, (await b).code], [250, 250]);
    await s.quit();
  } finally {
    s.close();
  }
});

test('AbortSignal and cancel() stop a call within 100 ms', async () => {
  const s = new smtpc.AsyncSession();
  try {
    const ac = new AbortController();
    const p = s.connect('127.0.0.1', num('SMTPC_TEST_MUTE_PORT'), { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    ac.abort();
    await assert.rejects(p, (e) => e.name === 'AbortError' && e instanceof smtpc.CancelledError && e.code === -18);
    const latency = performance.now() - t0;
    figure(`AbortSignal latency ${latency.toFixed(1)} ms`);
    assert.ok(latency < 100, `${latency} ms`);

    const q = s.connect('127.0.0.1', num('SMTPC_TEST_MUTE_PORT'), { signal: AbortSignal.timeout(150) });
    await assert.rejects(q, (e) => e.name === 'AbortError' && e.cause && e.cause.name === 'TimeoutError');

    const r = s.connect('127.0.0.1', num('SMTPC_TEST_MUTE_PORT'));
    await new Promise((res) => setTimeout(res, 150));
    const t1 = performance.now();
    s.cancel();
    await assert.rejects(r, smtpc.CancelledError);
    figure(`cancel() latency ${(performance.now() - t1).toFixed(1)} ms`);
    // An aborted signal: nothing starts. The session stays usable.
    await assert.rejects(s.noop({ signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal((await s.connect(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'))).code, 220);
    await s.quit();
  } finally {
    s.close();
  }
});

test('outcomes: accepted, refused, not sent, unknown', async () => {
  const s = await smtpc.AsyncSession.open(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'));
  try {
    assert.equal(s.outcome(), 'none');
    assert.equal((await s.sendmail('a@example.com', 'b@example.com', 'Subject: ok\n\nok\n')).code, 250);
    assert.equal(s.outcome(), 'accepted');
    assert.equal((await s.sendmail('a@example.com', env('SMTPC_TEST_REJECT'), 'Subject: no\n\nno\n')).code, 550);
    assert.equal(s.outcome(), 'refused');
    assert.equal(s.failedStep(), smtpc.codes.STEP_RCPT);
    async function* failing() {
      yield 'Subject: partial\n\nfirst line\n';
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('disk on fire');
    }
    await assert.rejects(s.sendmail('a@example.com', 'b@example.com', failing()),
      (e) => e.message === 'disk on fire' && e.outcome === 'not_sent');
    assert.equal(s.outcome(), 'not_sent');
  } finally {
    s.close();
  }
  // Unknown: cancelled after the body went out, before the final reply.
  const slow = new smtpc.AsyncSession({ debuglevel: 1 });
  try {
    slow.setTrace((line) => {
      if (line.startsWith('data: (354')) setTimeout(() => slow.cancel(), 100);
    });
    await slow.connect('127.0.0.1', num('SMTPC_TEST_SLOW_PORT'));
    await assert.rejects(slow.sendmail('a@example.com', 'b@example.com', 'Subject: u\n\nu\n'), smtpc.CancelledError);
    assert.equal(slow.outcome(), 'unknown');
  } finally {
    slow.close();
  }
});

async function loopGap(fn) {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  await new Promise((r) => setTimeout(r, 50));
  last = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return worst;
}

test('the event loop keeps ticking (beside nodemailer)', async () => {
  const port = num('SMTPC_TEST_SLOW_PORT');
  const raw = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: gap\r\n\r\nslow\r\n';
  const nodemailer = require('nodemailer');
  const ours1 = async () => {
    const s = await smtpc.AsyncSession.open('127.0.0.1', port);
    await s.sendMail({ from: 'a@example.com', to: 'b@example.com', raw });
    await s.quit();
    s.close();
  };
  const theirs1 = async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    await t.sendMail({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, raw });
    t.close();
  };
  // One send each first, so that neither side's figure includes loading
  // and compiling its code; then the measured sends.
  await Promise.all([ours1(), theirs1()]);
  if (global.gc) global.gc();
  let took = performance.now();
  const ours = await loopGap(ours1);
  took = performance.now() - took;
  if (global.gc) global.gc();
  const theirs = await loopGap(theirs1);
  figure(`event-loop gap (10 ms setInterval) during a send to the slow server (${took.toFixed(0)} ms): ` +
    `libsmtpc ${ours.toFixed(1)} ms, nodemailer ${theirs.toFixed(1)} ms`);
  assert.ok(ours < 50, `longest gap ${ours} ms`);
});

test('a 16 MiB Readable body streams in constant memory', async () => {
  const size = 16 << 20;
  const file = path.join(env('SMTPC_WORK'), 'node-16mib.eml');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, 'From: a@example.com\r\nSubject: 16 MiB\r\n\r\n');
  const block = Buffer.from(`${'x'.repeat(76)}\r\n`.repeat(1024));
  for (let n = 0; n < size; n += block.length) fs.writeSync(fd, block);
  fs.closeSync(fd);
  const s = await smtpc.AsyncSession.open('127.0.0.1', num('SMTPC_TEST_SINK_PORT'));
  try {
    await s.ehlo();
    if (global.gc) global.gc();
    fs.writeFileSync('/proc/self/clear_refs', '5');
    let base = status('VmRSS');
    let t0 = performance.now();
    const r = await s.sendmail('a@example.com', 'b@example.com', fs.createReadStream(file), { size: fs.statSync(file).size });
    let growth = status('VmHWM') - base;
    figure(`16 MiB fs.ReadStream in ${(performance.now() - t0).toFixed(0)} ms, peak RSS growth ${(growth / 1048576).toFixed(2)} MiB`);
    assert.equal(r.code, 250);
    assert.equal(s.outcome(), 'accepted');
    assert.ok(growth < 8 << 20, `RSS grew ${growth} bytes`);

    // Any other Readable goes through a socketpair the library reads
    // from; here one that produces the same chunk again and again, so
    // that only the binding's own memory shows.
    const chunk = Buffer.from(`${'y'.repeat(76)}\r\n`.repeat(840));
    const gen = Readable.from((function* produce() {
      yield 'From: a@example.com\r\nSubject: 16 MiB generated\r\n\r\n';
      for (let n = 0; n < size; n += chunk.length) yield chunk;
    })());
    if (global.gc) global.gc();
    fs.writeFileSync('/proc/self/clear_refs', '5');
    base = status('VmRSS');
    t0 = performance.now();
    assert.equal((await s.sendmail('a@example.com', 'b@example.com', gen)).code, 250);
    growth = status('VmHWM') - base;
    figure(`16 MiB generated Readable in ${(performance.now() - t0).toFixed(0)} ms, peak RSS growth ${(growth / 1048576).toFixed(2)} MiB`);
    assert.ok(growth < 8 << 20, `RSS grew ${growth} bytes`);
    // A Buffer and a string work the same; so does Readable.from.
    assert.equal((await s.sendmail('a@example.com', 'b@example.com', Readable.from(['Subject: it\n\n', 'x\n']))).code, 250);
    await s.quit();
  } finally {
    s.close();
    fs.unlinkSync(file);
  }
});

test('5,000 messages through one batch call', async () => {
  const n = 5000;
  function* messages() {
    for (let i = 0; i < n; i++) {
      yield { from: 'bulk@example.com', to: [`r${i}@example.com`], raw: `Subject: batch ${i}\n\nmessage ${i}\n` };
    }
  }
  const s = await smtpc.AsyncSession.open('127.0.0.1', num('SMTPC_TEST_SINK_PORT'));
  try {
    const t0 = performance.now();
    const results = await s.sendBatch(messages());
    const dt = performance.now() - t0;
    assert.equal(results.length, n);
    assert.ok(results.every((r) => r.outcome === 'accepted' && r.code === 250 && r.accepted.length === 1 && r.rejected.length === 0));
    figure(`batch: ${n} messages in ${dt.toFixed(0)} ms (${(n / (dt / 1000)).toFixed(0)} msg/s, ${s.waits()} waits)`);
    await s.quit();
  } finally {
    s.close();
  }
  const q = await smtpc.AsyncSession.open(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'));
  try {
    q.batchAdd('a@example.com', ['b@example.com', env('SMTPC_TEST_REJECT')], 'Subject: 1\n\none\n');
    q.batchAdd('a@example.com', [env('SMTPC_TEST_REJECT')], 'Subject: 2\n\ntwo\n');
    const r = await q.batchSend();
    assert.deepEqual(r.map((x) => x.outcome), ['accepted', 'refused']);
    assert.deepEqual(r[0].rejected, [env('SMTPC_TEST_REJECT')]);
    q.batchClear();
    assert.deepEqual(q.batchResults(), []);
  } finally {
    q.close();
  }
});

test('Message builder, send_message and the low-level verbs', async () => {
  const m = new smtpc.Message();
  m.setFrom('me@example.com', 'Mé').addTo('you@example.com').addBcc('hidden@example.com')
    .setSubject('built in Node').addHeader('X-Binding', 'node').setText('Hello from the builder.\n')
    .attach(Buffer.from('a,b\n1,2\n'), 'data.csv', 'text/csv');
  assert.throws(() => m.addHeader('X-Bad', 'a\r\nBcc: evil@example.com'), smtpc.InvalidArgumentError);
  const raw = m.render().toString();
  assert.match(raw, /Subject: built in Node/);
  assert.doesNotMatch(raw, /hidden@/);
  const s = await smtpc.AsyncSession.open(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'));
  try {
    await s.ehlo();
    assert.equal(s.extensions().SIZE, '33554432');
    assert.equal((await s.sendMessage(m)).code, 250);
    assert.equal(s.recipients().length, 2);
    assert.equal((await s.sendMessage('From: a@example.com\nTo: b@example.com\nSubject: raw\n\nraw\n')).code, 250);
    s.setMailOptions([]);
    s.setRcptOptions([]);
    assert.equal((await s.mail('a@example.com')).code, 250);
    assert.equal((await s.rcpt('b@example.com')).code, 250);
    assert.equal((await s.data('Subject: verbs\n\nlow level\n')).code, 250);
    s.putcmd('NOOP');
    s.putcmd('NOOP');
    assert.deepEqual([(await s.getreply()).code, (await s.getreply()).code], [250, 250]);
    s.setTLSMinVersion(smtpc.codes.TLS_1_2);
    s.setTLSServerName('localhost');
    s.setCADir(null);
    s.setClientCert(null);
    await s.quit();
  } finally {
    s.close();
    m.close();
  }
});

test('authCallback runs a mechanism of the caller\'s (PLAIN)', async () => {
  for (const initial of [true, false]) {
    const s = new smtpc.AsyncSession({ caFile: env('SMTPC_TEST_CA'), tlsPolicy: 'required' });
    try {
      s.setInitialResponse(initial);
      await s.connect(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'));
      let calls = 0;
      const r = await s.authCallback('PLAIN', () => {
        calls++;
        return `\0${env('SMTPC_TEST_USER')}\0${env('SMTPC_TEST_PASS')}`;
      });
      assert.equal(r.code, 235);
      assert.ok(calls > 0);
    } finally {
      s.close();
    }
  }
  const s = new smtpc.Session({ caFile: env('SMTPC_TEST_CA'), tlsPolicy: 'required' });
  try {
    s.connect(env('SMTPC_TEST_HOST'), num('SMTPC_TEST_PORT'));
    assert.throws(() => s.authCallback('PLAIN', () => { throw new RangeError('no token today'); }), RangeError);
  } finally {
    s.close();
  }
});
