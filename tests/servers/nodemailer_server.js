#!/usr/bin/env node
'use strict';
/*
 * Nodemailer smtp-server (3.21.6) test server for the libsmtpc harness.
 *
 *   node nodemailer_server.js --port-file FILE --capture-dir DIR
 *        [--host 127.0.0.1] [--port 0] [--tls-cert C --tls-key K] [--secure]
 *        [--auth USER:PASS]... [--xoauth2 USER:TOKEN]... [--size BYTES] [--lmtp] [--verbose]
 *
 * Port 0 (default) picks a free port; the bound port is written to --port-file
 * (temp file + rename) once the server listens.  Without --tls-cert STARTTLS is
 * not offered; with it STARTTLS is offered, or with --secure the whole
 * listener is TLS (implicit TLS).  Offers PIPELINING 8BITMIME SMTPUTF8
 * ENHANCEDSTATUSCODES DSN SIZE and AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 (AUTH
 * optional, allowed in cleartext too).
 *
 * Each message is captured as DIR/NNNN.eml (exact bytes after dot-unstuffing)
 * and then DIR/NNNN.json:
 *   {"mail_from", "rcpt_tos", "mail_options": ["KEY=VALUE"|"KEY"...],
 *    "rcpt_options": [[...] per recipient], "smtp_utf8", "user", "secure",
 *    "envelope": {mailFrom:{address,args}, rcptTo:[{address,args}], dsn, bodyType, ...}}
 * The .json appearing means the message is complete.  Runs until SIGTERM.
 */
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const nodeRequire = createRequire(path.join(__dirname, 'node', 'package.json'));
const { SMTPServer } = nodeRequire('smtp-server');

function usage(msg) {
    if (msg) console.error('nodemailer_server: ' + msg);
    console.error('usage: nodemailer_server.js --port-file FILE --capture-dir DIR [--tls-cert C --tls-key K] [--secure] [--auth USER:PASS] [--xoauth2 USER:TOKEN]');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 0, auth: [], xoauth2: [], size: 10 * 1024 * 1024, secure: false, lmtp: false, verbose: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(a + ' needs a value');
            return argv[++i];
        };
        const pair = v => {
            const k = v.indexOf(':');
            if (k < 0) usage(a + ' wants NAME:SECRET');
            return [v.slice(0, k), v.slice(k + 1)];
        };
        switch (a) {
            case '--host': o.host = val(); break;
            case '--port': o.port = parseInt(val(), 10); break;
            case '--port-file': o.portFile = val(); break;
            case '--capture-dir': o.captureDir = val(); break;
            case '--tls-cert': o.tlsCert = val(); break;
            case '--tls-key': o.tlsKey = val(); break;
            case '--secure': o.secure = true; break;
            case '--auth': o.auth.push(pair(val())); break;
            case '--xoauth2': o.xoauth2.push(pair(val())); break;
            case '--size': o.size = parseInt(val(), 10); break;
            case '--lmtp': o.lmtp = true; break;
            case '--verbose': o.verbose = true; break;
            default: usage('unknown argument ' + a);
        }
    }
    if (!o.portFile || !o.captureDir) usage('--port-file and --capture-dir are required');
    if (!!o.tlsCert !== !!o.tlsKey) usage('--tls-cert and --tls-key go together');
    if (o.secure && !o.tlsCert) usage('--secure needs --tls-cert/--tls-key');
    return o;
}

function writeAtomic(file, data) {
    const tmp = file + '.tmp.' + process.pid;
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
}

function argsToOptions(args) {
    if (!args || typeof args !== 'object') return [];
    return Object.keys(args).map(k => (args[k] === true ? k : k + '=' + args[k]));
}

function log(...m) {
    console.error(new Date().toISOString(), ...m);
}

const opts = parseArgs(process.argv.slice(2));
fs.mkdirSync(opts.captureDir, { recursive: true });

const passwords = new Map(opts.auth);
const tokens = new Map(opts.xoauth2);
let counter = 0;

const serverOptions = {
    name: 'localhost',
    banner: 'libsmtpc test server (smtp-server)',
    lmtp: opts.lmtp,
    secure: opts.secure,
    size: opts.size,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'],
    authOptional: true,
    allowInsecureAuth: true,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    hidePIPELINING: false,
    hide8BITMIME: false,
    hideSMTPUTF8: false,
    hideSTARTTLS: !opts.tlsCert,
    logger: opts.verbose,
    // no reverse DNS lookups of 127.0.0.1: fast and offline
    disableReverseLookup: true,
    onAuth(auth, session, cb) {
        const user = auth.username;
        if (auth.method === 'XOAUTH2') {
            if (tokens.has(user) && tokens.get(user) === auth.accessToken) {
                return cb(null, { user });
            }
            return cb(null, { data: { status: '401', schemes: 'Bearer', scope: 'https://mail.google.com/' } });
        }
        const pw = passwords.get(user);
        let ok = false;
        if (pw !== undefined) {
            ok = auth.method === 'CRAM-MD5' ? auth.validatePassword(pw) : auth.password === pw;
        }
        if (ok) return cb(null, { user });
        const err = new Error('Authentication credentials invalid');
        err.responseCode = 535;
        return cb(err);
    },
    onData(stream, session, cb) {
        const chunks = [];
        stream.on('data', c => chunks.push(c));
        stream.on('error', e => cb(e));
        stream.on('end', () => {
            if (stream.sizeExceeded) {
                const err = new Error('Error: message exceeds fixed maximum message size ' + opts.size);
                err.responseCode = 552;
                return cb(err);
            }
            const data = Buffer.concat(chunks);
            counter += 1;
            const base = path.join(opts.captureDir, String(counter).padStart(4, '0'));
            const env = session.envelope;
            const meta = {
                mail_from: env.mailFrom ? env.mailFrom.address : '',
                rcpt_tos: env.rcptTo.map(r => r.address),
                mail_options: argsToOptions(env.mailFrom && env.mailFrom.args),
                rcpt_options: env.rcptTo.map(r => argsToOptions(r.args)),
                smtp_utf8: !!env.smtpUtf8,
                user: session.user || null,
                secure: !!session.secure,
                transmission_type: session.transmissionType,
                envelope: env
            };
            try {
                writeAtomic(base + '.eml', data);
                writeAtomic(base + '.json', JSON.stringify(meta));
            } catch (e) {
                log('capture failed', e);
                return cb(e);
            }
            log('captured', base, data.length, 'bytes from', meta.mail_from, 'to', meta.rcpt_tos.join(','));
            cb(null, 'OK: message queued as ' + String(counter).padStart(4, '0'));
        });
    }
};
if (opts.tlsCert) {
    serverOptions.key = fs.readFileSync(opts.tlsKey);
    serverOptions.cert = fs.readFileSync(opts.tlsCert);
}

const server = new SMTPServer(serverOptions);
// Connection errors (a port probe that hangs up, a failed TLS handshake) are
// reported here; without a listener they would kill the process.
server.on('error', err => log('server error (ignored):', err && (err.code || ''), err && err.message));

server.listen(opts.port, opts.host, () => {
    const port = server.server.address().port;
    writeAtomic(opts.portFile, port + '\n');
    log('listening on', opts.host + ':' + port, opts.secure ? '(implicit TLS)' : opts.tlsCert ? '(STARTTLS)' : '(cleartext)');
});

function shutdown(sig) {
    log('got', sig, 'stopping');
    setTimeout(() => process.exit(0), 1000).unref();
    server.close(() => process.exit(0));
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('uncaughtException', err => log('uncaught exception (ignored):', err && err.stack));
