#!/usr/bin/env node
// Real-browser WebRTC check: headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) runs tests/browser/webrtc.html, the browser example of
// docs/webrtc.md. One page publishes its fake camera + microphone, another watches;
// both through the server's API on 127.0.0.1 (run this inside a network namespace:
// WebRTC peers gather every interface address).
//
// Usage: node tests/browser/webrtc.mjs '{"api":"http://127.0.0.1:PORT",
//          "whip":{"name":STREAM_NAME,"key":STREAM_KEY},
//          "ws":{"room_id":ID,"token":OWNER_JWT[,"viewer_api":URL,"publisher_api":URL]},
//          "errors":{"room_id":ID,"token":OWNER_JWT,"other_token":JWT}}'
// Each scenario runs when its key is present (each needs its own fresh room: a room
// ends when its publisher stops):
//   whip   - page A publishes over WHIP, page B plays over WHEP, both stop (DELETE).
//   ws     - the same over the WebSocket signaling (/api/v1/live/ws); the viewer
//            connects first and offers when told the stream is live.
//   errors - the WebSocket signaling's refusals and error messages.
//   whep   - {"name":STREAM_NAME}: only a viewer, over WHEP, of a stream published by
//            someone else (e.g. ffmpeg over RTMP: control/tests/bridge_e2e.rs).
//   tabclose - {"name","key","room_id"}: a WHIP publisher's tab is closed without a
//            DELETE; reports how long the room stays live after (idle_after_secs).
// Optional: "timeout_secs" per wait (default 30), "chromium" (default /usr/bin/chromium).
//
// Prints one JSON line per scenario, {"scenario":…,"ok":bool,…}, and exits 0 only if
// all are ok.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dieAs, launch, parseArgs, sleep } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const die = dieAs('webrtc.mjs');
const args = parseArgs(die, '{"api":URL,"whip":{…},"ws":{…},"errors":{…}}');
if (!args.api) die('"api" is required');
const api = args.api.replace(/\/$/, '');
const timeoutSecs = Number(args.timeout_secs ?? 30);
const executablePath = args.chromium ?? '/usr/bin/chromium';
const pageFile = path.join(here, 'webrtc.html');
const html = { type: 'text/html; charset=utf-8', body: pageFile, file: true };
const { origin, context, cleanup } = await launch({
  name: 'webrtc.mjs', die, executablePath,
  routes: { '/': html, '/webrtc.html': html },
  limitMs: (timeoutSecs * 8 + 60) * 1000,
});

const t0 = Date.now();
const secs = (t) => Math.round((Date.now() - t) / 100) / 10;

async function newPage(label, consoleLines) {
  const p = await context.newPage();
  p.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${label} ${m.type()}: ${m.text()}`);
  });
  p.on('pageerror', (e) => consoleLines.push(`${label} pageerror: ${e.message}`));
  p.on('requestfailed', (r) => consoleLines.push(`${label} requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  await p.goto(`${origin}/webrtc.html`);
  return p;
}

const stats = (p) => p.evaluate(() => (window.session ? mv.mediaStats(window.session.pc) : null));

// Polls `get()` until `pred(value)` or the timeout; the last value and whether it held.
async function until(get, pred, what, secsMax = timeoutSecs) {
  const start = Date.now();
  let v = await get();
  while (!pred(v)) {
    if (Date.now() - start > secsMax * 1000) return { ok: false, value: v, what };
    await sleep(250);
    v = await get();
  }
  return { ok: true, value: v, secs: secs(start) };
}

// Publisher sending: ICE+DTLS connected and video packets going out.
const sending = (s) => s && s.connection === 'connected' && (s.sent.video?.packetsSent ?? 0) > 0 && (s.sent.audio?.packetsSent ?? 0) > 0;

// Watches a viewer until it decoded >= 30 frames and its audio sample count grew over
// at least a second.
async function playback(p) {
  const start = Date.now();
  let firstFrame = null;
  let audio0 = null;
  let s = null;
  while (Date.now() - start < timeoutSecs * 1000) {
    s = await stats(p);
    const frames = s?.video?.framesDecoded ?? 0;
    const samples = s?.audio?.totalSamplesReceived ?? 0;
    if (frames > 0 && firstFrame === null) firstFrame = secs(start);
    if (samples > 0 && audio0 === null) audio0 = { samples, at: Date.now() };
    const audioGrew = audio0 !== null && Date.now() - audio0.at >= 1000 && samples > audio0.samples;
    if (frames >= 30 && audioGrew) break;
    await sleep(250);
  }
  const frames = s?.video?.framesDecoded ?? 0;
  const samples = s?.audio?.totalSamplesReceived ?? 0;
  return {
    ok: frames > 0 && audio0 !== null && samples > audio0.samples,
    first_frame_secs: firstFrame,
    frames_decoded: frames,
    width: s?.video?.width ?? 0,
    height: s?.video?.height ?? 0,
    audio_samples: [audio0?.samples ?? 0, samples],
    stats: s,
  };
}

async function scenarioWhip(a) {
  const consoleLines = [];
  const r = { scenario: 'whip', ok: false, console: consoleLines };
  const pub = await newPage('publisher', consoleLines);
  await pub.evaluate(async ({ api, name, key }) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    document.getElementById('local').srcObject = stream;
    window.session = await mv.whipPublish(api, name, key, stream);
  }, { api, ...a });
  r.publisher = await until(() => stats(pub), sending, 'publisher connected and sending');
  if (!r.publisher.ok) return r;
  const view = await newPage('viewer', consoleLines);
  const joined = Date.now();
  await view.evaluate(async ({ api, name }) => {
    window.session = await mv.whepPlay(api, name, document.getElementById('remote'));
  }, { api, ...a });
  r.viewer = await playback(view);
  r.viewer.join_secs = secs(joined);
  const v = await view.evaluate(() => {
    const e = document.getElementById('remote');
    return { width: e.videoWidth, height: e.videoHeight, currentTime: e.currentTime };
  });
  r.viewer.element = v;
  r.whep_delete_status = await view.evaluate(() => window.session.stop());
  r.whip_delete_status = await pub.evaluate(() => window.session.stop());
  await view.close();
  await pub.close();
  r.ok = r.publisher.ok && r.viewer.ok && r.whep_delete_status === 200 && r.whip_delete_status === 200;
  return r;
}

async function scenarioWhep(a) {
  const consoleLines = [];
  const r = { scenario: 'whep', ok: false, console: consoleLines };
  const view = await newPage('viewer', consoleLines);
  const joined = Date.now();
  await view.evaluate(async ({ api, name }) => {
    window.session = await mv.whepPlay(api, name, document.getElementById('remote'));
  }, { api, ...a });
  r.viewer = await playback(view);
  r.viewer.join_secs = secs(joined);
  r.whep_delete_status = await view.evaluate(() => window.session.stop());
  await view.close();
  r.ok = r.viewer.ok && r.whep_delete_status === 200;
  return r;
}

async function scenarioWs(a) {
  const consoleLines = [];
  const r = { scenario: 'ws', ok: false, console: consoleLines };
  // Cluster: the viewer's and the publisher's sockets may go to different nodes.
  const viewerApi = (a.viewer_api ?? api).replace(/\/$/, '');
  const publisherApi = (a.publisher_api ?? api).replace(/\/$/, '');
  // The viewer connects first: it is told the stream is idle, then live, and offers.
  const view = await newPage('viewer', consoleLines);
  await view.evaluate(({ api, room_id }) => {
    window.msgs = [];
    window.playing = mv.wsPlay(api, room_id, document.getElementById('remote'), (m) => window.msgs.push(m))
      .then((s) => { window.session = s; }, (e) => { window.playError = String(e); });
  }, { api: viewerApi, room_id: a.room_id });
  // The messages each page got (answers shortened to their SDP's size).
  const msgs = (p) => p.evaluate(() => window.msgs.map((m) => (m.type === 'answer' ? { type: 'answer', sdp_bytes: m.sdp.length } : m)));
  r.viewer_idle = await until(() => msgs(view), (m) => m.some((x) => x.type === 'stream_state'), 'viewer told the state', 10);
  const pub = await newPage('publisher', consoleLines);
  await pub.evaluate(async ({ api, room_id, token }) => {
    window.msgs = [];
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    document.getElementById('local').srcObject = stream;
    window.session = await mv.wsPublish(api, room_id, token, stream, (m) => window.msgs.push(m));
  }, { ...a, api: publisherApi });
  r.publisher = await until(() => stats(pub), sending, 'publisher connected and sending');
  if (!r.publisher.ok) return r;
  const joined = Date.now();
  const started = await until(() => view.evaluate(() => ({ session: !!window.session, error: window.playError ?? null })),
    (s) => s.session || s.error, 'viewer negotiated');
  if (!started.ok || started.value.error) {
    r.viewer = { ok: false, error: started.value };
    return r;
  }
  r.viewer = await playback(view);
  r.viewer.join_secs = secs(joined);
  const counted = (m) => m.some((x) => x.type === 'viewer_count' && x.count >= 1);
  const live = (m) => m.some((x) => x.type === 'stream_state' && x.state === 'live');
  r.viewer_messages = await until(() => msgs(view), (m) => counted(m) && live(m), 'viewer got viewer_count >= 1 and live', 10);
  r.publisher_messages = await until(() => msgs(pub), (m) => counted(m) && live(m), 'publisher got viewer_count >= 1 and live', 10);
  // Leave (socket open): the room ends and the publisher's socket is told so.
  await view.evaluate(() => window.session.stop());
  await pub.evaluate(() => { window.session.sig.leave(); window.session.pc.close(); });
  r.publisher_ended = await until(() => msgs(pub), (m) => m.some((x) => x.type === 'stream_state' && x.state === 'ended'),
    'publisher told the stream ended', 20);
  const errors = [...(await msgs(view)), ...(await msgs(pub))].filter((m) => m.type === 'error');
  r.error_messages = errors;
  await pub.evaluate(() => window.session.sig.close());
  await view.close();
  await pub.close();
  r.ok = r.publisher.ok && r.viewer.ok && r.viewer_idle.ok && r.viewer_messages.ok && r.publisher_messages.ok
    && r.publisher_ended.ok && errors.length === 0;
  return r;
}

// Runs in the page: each check opens a raw WebSocket and looks at what comes back.
async function errorChecks({ api, room_id, token, other_token }) {
  const open = (q) => new Promise((ok, fail) => {
    const u = new URL('/api/v1/live/ws', api);
    u.protocol = 'ws:';
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    const ws = new WebSocket(u.href);
    const c = { ws, msgs: [], close: null };
    ws.onmessage = (e) => c.msgs.push(JSON.parse(e.data));
    ws.onclose = (e) => { c.close = { code: e.code, reason: e.reason }; };
    ws.onopen = () => ok(c);
    ws.onerror = () => { if (ws.readyState !== WebSocket.OPEN) setTimeout(() => fail(new Error('no open')), 100); };
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // The next message of `type` after index `from`.
  const next = async (c, type, from, ms = 5000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = c.msgs.slice(from).find((x) => x.type === type);
      if (m) return m;
      await sleep(25);
    }
    return null;
  };
  const closed = async (c, ms = 5000) => {
    const end = Date.now() + ms;
    while (!c.close && Date.now() < end) await sleep(25);
    return c.close;
  };
  const checks = [];
  const check = (name, ok, got) => checks.push({ name, ok: !!ok, got });

  // Refusals: an error message, then the close code 4000 + status.
  for (const [name, q, code] of [
    ['publisher without token', { room_id, role: 'publisher' }, 401],
    ['publisher with a bad token', { room_id, role: 'publisher', token: 'garbage' }, 401],
    ['publisher not the owner', { room_id, role: 'publisher', token: other_token }, 403],
    ['no such room', { room_id: 999999999, role: 'viewer' }, 404],
    ['bad room_id', { room_id: 'abc', role: 'viewer' }, 400],
    ['bad role', { room_id, role: 'admin' }, 400],
  ]) {
    const c = await open(q);
    const e = await next(c, 'error', 0);
    const cl = await closed(c);
    check(name, e?.code === code && cl?.code === 4000 + code, { error: e, close: cl });
  }

  // A viewer of an idle room: told the state and count, then message errors.
  const v = await open({ room_id, role: 'viewer' });
  const st = await next(v, 'stream_state', 0);
  const vc = await next(v, 'viewer_count', 0);
  check('viewer told idle and count 0', st?.state === 'idle' && vc?.count === 0, { st, vc });
  const expectError = async (name, text, code) => {
    const from = v.msgs.length;
    v.ws.send(text);
    const e = await next(v, 'error', from);
    check(name, e?.code === code, e);
  };
  await expectError('bad JSON', 'not json', 400);
  await expectError('unknown type', JSON.stringify({ type: 'bogus' }), 400);
  await expectError('offer without sdp', JSON.stringify({ type: 'offer' }), 400);
  // A candidate is accepted silently: the next error is the offer's.
  v.ws.send(JSON.stringify({ type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' } }));
  await expectError('viewer offer while not live', JSON.stringify({ type: 'offer', sdp: 'v=0\r\n' }), 404);
  for (let i = 2; i <= 8; i++) await expectError(`offer ${i} not live`, JSON.stringify({ type: 'offer', sdp: 'v=0\r\n' }), 404);
  await expectError('too many offers', JSON.stringify({ type: 'offer', sdp: 'v=0\r\n' }), 429);
  check('closed after too many offers', (await closed(v))?.code === 1008, v.close);

  // A message over 64 KiB closes the socket.
  const big = await open({ room_id, role: 'viewer' });
  big.ws.send(JSON.stringify({ type: 'offer', sdp: 'x'.repeat(70 * 1024) }));
  const bigClose = await closed(big);
  check('oversized message closes', bigClose && bigClose.code !== 1000, { close: bigClose, msgs: big.msgs.filter((m) => m.type === 'error') });

  // The owner: bad SDP is a 400; a real offer is answered; a second publisher is a 409.
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const p1 = await open({ room_id, role: 'publisher', token });
  let from = p1.msgs.length;
  p1.ws.send(JSON.stringify({ type: 'offer', sdp: 'v=0\r\nnot sdp' }));
  const bad = await next(p1, 'error', from);
  check('bad SDP', bad?.code === 400 && /SDP/.test(bad?.message ?? ''), bad);
  const offerOf = async () => {
    const pc = new RTCPeerConnection();
    for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    return pc;
  };
  const pc1 = await offerOf();
  from = p1.msgs.length;
  p1.ws.send(JSON.stringify({ type: 'offer', sdp: pc1.localDescription.sdp }));
  const ans = await next(p1, 'answer', from);
  check('publisher answered', ans && /a=ice-lite/.test(ans.sdp) && /a=setup:passive/.test(ans.sdp), ans && { sdp_bytes: ans.sdp.length });
  if (ans) await pc1.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
  const live = await next(p1, 'stream_state', from);
  check('publisher told live', live?.state === 'live', live);
  from = p1.msgs.length;
  p1.ws.send(JSON.stringify({ type: 'offer', sdp: pc1.localDescription.sdp }));
  const again = await next(p1, 'error', from);
  check('second offer on the same socket', again?.code === 409, again);
  const p2 = await open({ room_id, role: 'publisher', token });
  const pc2 = await offerOf();
  p2.ws.send(JSON.stringify({ type: 'offer', sdp: pc2.localDescription.sdp }));
  const conflict = await next(p2, 'error', 0);
  check('second publisher', conflict?.code === 409, conflict);
  p2.ws.close();
  pc2.close();
  // Closing the socket ends the session, and the room.
  p1.ws.close();
  pc1.close();
  stream.getTracks().forEach((t) => t.stop());
  return checks;
}

async function scenarioErrors(a) {
  const consoleLines = [];
  const p = await newPage('errors', consoleLines);
  const checks = await p.evaluate(errorChecks, { api, ...a });
  await p.close();
  return { scenario: 'errors', ok: checks.every((c) => c.ok), failed: checks.filter((c) => !c.ok), checks, console: consoleLines };
}

async function scenarioTabClose(a) {
  const consoleLines = [];
  const r = { scenario: 'tabclose', ok: false, console: consoleLines };
  const pub = await newPage('publisher', consoleLines);
  await pub.evaluate(async ({ api, name, key }) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    window.session = await mv.whipPublish(api, name, key, stream);
  }, { api, ...a });
  r.publisher = await until(() => stats(pub), sending, 'publisher connected and sending');
  if (!r.publisher.ok) return r;
  const status = async () => (await (await fetch(`${api}/api/v1/live/${a.room_id}`)).json()).data.status;
  r.live = await until(status, (s) => s === 'live', 'room live', 10);
  // The tab goes away as a user closes it: no DELETE, no pc.close() from the page.
  const closed = Date.now();
  await pub.close();
  r.idle = await until(status, (s) => s === 'idle', 'room idle after the tab closed', 30);
  r.idle_after_secs = secs(closed);
  r.ok = r.live.ok && r.idle.ok;
  return r;
}

let allOk = true;
try {
  for (const [key, f] of [['whip', scenarioWhip], ['ws', scenarioWs], ['errors', scenarioErrors], ['whep', scenarioWhep], ['tabclose', scenarioTabClose]]) {
    if (!args[key]) continue;
    const start = Date.now();
    let r;
    try {
      r = await f(args[key]);
    } catch (e) {
      r = { scenario: key, ok: false, error: String(e?.stack ?? e) };
    }
    r.secs = secs(start);
    r.since_start_secs = secs(t0);
    allOk &&= r.ok;
    console.log(JSON.stringify(r));
  }
} finally {
  await cleanup();
}
process.exit(allOk ? 0 : 1);
