#!/usr/bin/env node
// File: tests/origin/s3/s3_server.js
//
// Starts s3rver (the npm package pinned in package.json) on loopback for
// tests/origin, the way origin_servers.cc's S3Server expects:
//
//   node s3_server.js --modules NODE_MODULES --directory DIR [--port N]
//                     [--bucket NAME]... [--log FILE] [--allow-anonymous]
//
// Prints "ready PORT" on stdout once listening. With --log, appends one line
// per request in the tab-separated format all the tests/origin servers share:
// method, path, status, bytes sent ("-": not known), body bytes sent (the
// Content-Length), Range header, cache status (empty).
//
// s3rver 3.7.1 checks that a SigV4 request names a known access key but does
// not verify the signature ("Signature version 4 calculation is
// unimplemented" in its authentication middleware). A broker test must see
// a wrong signature fail as real S3 fails it, so this script puts a SigV4
// verifier (AWS "Signature Version 4 signing process", header form) in front
// of s3rver's routes. Credentials are s3rver's documented S3RVER/S3RVER.
// s3rver also serves unsigned requests, which S3 refuses for a private
// bucket; here they get 403 AccessDenied unless --allow-anonymous. Presigned
// (query-string) requests go to s3rver, which does not verify them.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const opts = { port: 0, buckets: [], log: '', modules: '', directory: '', anonymous: false };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--modules': opts.modules = value; i++; break;
      case '--directory': opts.directory = value; i++; break;
      case '--port': opts.port = Number(value); i++; break;
      case '--bucket': opts.buckets.push(value); i++; break;
      case '--log': opts.log = value; i++; break;
      case '--allow-anonymous': opts.anonymous = true; break;
      default: throw new Error('s3_server.js: unknown argument ' + argv[i]);
    }
  }
  if (!opts.modules || !opts.directory) throw new Error('s3_server.js: --modules and --directory are required');
  return opts;
}

const kSecrets = new Map([['S3RVER', 'S3RVER']]);
const kMaxSkewMs = 15 * 60 * 1000;  // S3's RequestTimeTooSkewed bound

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// RFC 3986 unreserved characters stay, everything else is %XX (upper case).
function uriEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalUri(rawPath) {
  // S3 does not normalise the path and encodes each segment once.
  return rawPath.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/') || '/';
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  return rawQuery.split('&').filter((p) => p.length > 0).map((p) => {
    const eq = p.indexOf('=');
    const k = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? '' : p.slice(eq + 1);
    return [uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => k + '=' + v).join('&');
}

function parseAmzDate(text) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text || '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

// Koa middleware: verifies an "Authorization: AWS4-HMAC-SHA256 ..." header;
// other requests go on to s3rver unchanged.
function sigV4Verifier(S3Error, allowAnonymous) {
  return async function verifySigV4(ctx, next) {
    const auth = ctx.get('authorization');
    if (!auth && !allowAnonymous && !('X-Amz-Algorithm' in ctx.query) && !('Signature' in ctx.query)) {
      throw new S3Error('AccessDenied', 'Access Denied');
    }
    if (!auth.startsWith('AWS4-HMAC-SHA256')) return next();
    const fields = new Map(auth.slice('AWS4-HMAC-SHA256'.length).split(',').map((part) => {
      const [k, ...v] = part.trim().split('=');
      return [k, v.join('=')];
    }));
    const credential = (fields.get('Credential') || '').split('/');
    const signedHeaders = fields.get('SignedHeaders') || '';
    const provided = fields.get('Signature') || '';
    if (credential.length !== 5 || credential[4] !== 'aws4_request' || !signedHeaders || !provided) {
      throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed.');
    }
    const [accessKey, day, region, service] = credential;
    const secret = kSecrets.get(accessKey);
    if (secret === undefined) {
      throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.',
        { AWSAccessKeyId: accessKey });
    }
    const amzDate = ctx.get('x-amz-date');
    const when = parseAmzDate(amzDate);
    if (Number.isNaN(when) || !amzDate.startsWith(day)) {
      throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; bad x-amz-date.');
    }
    if (Math.abs(Date.now() - when) > kMaxSkewMs) {
      throw new S3Error('RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.');
    }
    const payloadHash = ctx.get('x-amz-content-sha256');
    if (!payloadHash) {
      throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    }
    const names = signedHeaders.split(';');
    if (!names.includes('host')) {
      throw new S3Error('AuthorizationHeaderMalformed', 'The host header must be signed.');
    }
    const [rawPath, rawQuery] = ctx.req.url.split(/\?(.*)/s);
    const headerBlock = names.map((n) => {
      const value = ctx.req.headers[n];
      return n + ':' + (value === undefined ? '' : String(value).trim().replace(/\s+/g, ' ')) + '\n';
    }).join('');
    const canonicalRequest = [ctx.method, canonicalUri(rawPath), canonicalQuery(rawQuery), headerBlock,
      signedHeaders, payloadHash].join('\n');
    const scope = [day, region, service, 'aws4_request'].join('/');
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
    const key = hmac(hmac(hmac(hmac('AWS4' + secret, day), region), service), 'aws4_request');
    const expected = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
    if (expected !== provided) {
      throw new S3Error('SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. ' +
        'Check your key and signing method.',
        { AWSAccessKeyId: accessKey, StringToSign: stringToSign, CanonicalRequest: canonicalRequest });
    }
    return next();
  };
}

function requestLogger(file) {
  const fd = fs.openSync(file, 'a');  // one synchronous append per line
  const clean = (s) => String(s === undefined ? '' : s).replace(/[\t\n]/g, ' ');
  return (req, res) => {
    res.on('finish', () => {
      fs.writeSync(fd, [req.method, req.url, res.statusCode, '-', res.getHeader('content-length') || 0,
        req.headers.range, ''].map(clean).join('\t') + '\n');
    });
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const S3rver = require(path.join(opts.modules, 's3rver'));
  const S3Error = require(path.join(opts.modules, 's3rver', 'lib', 'models', 'error'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port,
    silent: true,
    directory: opts.directory,
    vhostBuckets: false,
    configureBuckets: opts.buckets.map((name) => ({ name, configs: [] })),
  });
  // After s3rver's logger and XML encoder (so errors render as S3 XML),
  // before its routes.
  server.middleware.splice(2, 0, sigV4Verifier(S3Error, opts.anonymous));
  const { port } = await server.run();
  if (opts.log) server.httpServer.on('request', requestLogger(opts.log));
  process.stdout.write('ready ' + port + '\n');
  // The store is the directory, so there is nothing to flush.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write('s3_server.js: ' + (err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
