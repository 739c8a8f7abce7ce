// Shared by play.mjs and webrtc.mjs: argument parsing, the tool checks, a static file
// server on 127.0.0.1 and headless Chromium (playwright-core driving /usr/bin/chromium)
// with a fresh profile, all torn down by `cleanup` or by a hard time limit.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Exits 2 with `name: msg` (a setup problem, not a test failure). */
export const dieAs = (name) => (msg) => {
  console.error(`${name}: ${msg}`);
  process.exit(2);
};

/** The one JSON argument of a script; `usage` says what it should look like. */
export function parseArgs(die, usage) {
  try {
    return JSON.parse(process.argv[2] ?? '');
  } catch (e) {
    die(`expects one JSON argument ${usage}: ${e.message}`);
  }
}

/**
 * Starts the file server and Chromium.
 * - `routes`: path → () => ({ type, body }) where body is a string or a file path
 *   (`file: true`); everything else is 404.
 * - `limitMs`: after this long everything is stopped and the process exits 3.
 * Returns `{ origin, context, cleanup }`; call `await cleanup()` when done.
 */
export async function launch({ name, die, executablePath, routes, limitMs }) {
  if (!fs.existsSync(executablePath)) die(`${executablePath} is missing (apt-get install chromium; .ci/run installs it)`);
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    die(`playwright-core is missing (npm ci --prefix tests/browser; .ci/run does it): ${e.message}`);
  }
  const server = http.createServer((req, res) => {
    const r = routes[new URL(req.url, 'http://x').pathname];
    if (!r) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': r.type, 'cache-control': 'no-store' });
    return r.file ? fs.createReadStream(r.body).pipe(res) : res.end(r.body);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvibe-chromium-'));
  const flags = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--autoplay-policy=no-user-gesture-required',
  ];
  // Whatever happens, never leave the browser or the profile behind.
  let context;
  let hardStop;
  const cleanup = async () => {
    clearTimeout(hardStop);
    try { await context?.close(); } catch {}
    try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch {}
    server.close();
  };
  hardStop = setTimeout(async () => {
    console.error(`${name}: overall time limit reached`);
    await cleanup();
    process.exit(3);
  }, limitMs);
  // headless: playwright adds --headless itself; the profile is the fresh temp dir.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath, headless: true, args: flags, timeout: 30_000,
  });
  return { origin, context, cleanup };
}
