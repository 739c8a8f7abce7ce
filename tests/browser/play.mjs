#!/usr/bin/env node
// Real-browser playback check: headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core) plays a live stream with hls.js (HLS), mpegts.js (HTTP-FLV) and
// mpegts.js (WebSocket-FLV), one after the other.
//
// Usage: node tests/browser/play.mjs '{"hls":"http://…/hls/NAME.m3u8",
//          "flv":"http://…/flv/NAME.flv","ws":"ws://…/flv/NAME.flv"}'
// Optional keys: "advance_secs" (default 3), "timeout_secs" per player (default 40),
// "chromium" (default /usr/bin/chromium). A player whose URL is missing is not run.
// "watch_end_secs": after advancing, keep playing up to this long until the player
// sees the broadcast end (hls.js: the playlist's #EXT-X-ENDLIST; mpegts.js: the
// loading completed) and report "ended" and any fatal error meanwhile.
// "progress_file": written ("advanced") once a player has advanced, for a caller
// that ends the broadcast then.
//
// Prints one JSON line per player:
//   {"player":"hls","url":…,"ok":true,"advance":3.2,"start_time":…,"wall_secs":…,
//    "width":1280,"height":720,"frames":…,"dropped":…,"errors":[…],"console":[…]}
// and exits 0 only if every player advanced currentTime by advance_secs with a video
// size and no fatal error. Nothing is loaded from outside 127.0.0.1: the test page
// and the hls.js/mpegts.js builds are served from node_modules by a local server.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dieAs, launch, parseArgs, sleep } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const die = dieAs('play.mjs');
const args = parseArgs(die, '{"hls":URL,"flv":URL,"ws":URL}');
const advanceSecs = Number(args.advance_secs ?? 3);
const timeoutSecs = Number(args.timeout_secs ?? 40);
const watchEndSecs = Number(args.watch_end_secs ?? 0);
const progressFile = args.progress_file ?? null;
const executablePath = args.chromium ?? '/usr/bin/chromium';

const files = {
  '/hls.js': path.join(here, 'node_modules/hls.js/dist/hls.js'),
  '/mpegts.js': path.join(here, 'node_modules/mpegts.js/dist/mpegts.js'),
};
for (const f of Object.values(files)) {
  if (!fs.existsSync(f)) die(`${f} is missing (npm ci --prefix tests/browser; .ci/run does it)`);
}

const page = `<!doctype html>
<meta charset="utf-8"><title>MicroVibe playback</title><link rel="icon" href="data:,">
<script src="/hls.js"></script><script src="/mpegts.js"></script>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script>
const q = new URLSearchParams(location.search);
const kind = q.get('kind'), url = q.get('url');
const v = document.getElementById('v');
const st = window.__state = { errors: [], fatal: false, startTime: null, startWall: null, ended: false, endedAt: null };
const markEnded = () => { if (!st.ended) { st.ended = true; st.endedAt = performance.now(); } };
v.addEventListener('ended', markEnded);
const err = (fatal, e) => { st.errors.push(Object.assign({ fatal }, e)); if (fatal) st.fatal = true; };
v.addEventListener('playing', () => {
  if (st.startTime === null) { st.startTime = v.currentTime; st.startWall = performance.now(); }
});
v.addEventListener('error', () => err(true, { source: 'video', code: v.error && v.error.code, message: v.error && v.error.message }));
try {
  if (kind === 'hls') {
    if (!Hls.isSupported()) throw new Error('hls.js: MSE not supported');
    const hls = window.__player = new Hls({ debug: false });
    hls.on(Hls.Events.ERROR, (_, d) => err(!!d.fatal, {
      source: 'hls.js', type: d.type, details: d.details, reason: d.reason,
      response: d.response && { code: d.response.code, text: d.response.text },
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || undefined,
      error: d.error ? String(d.error) : undefined,
    }));
    hls.on(Hls.Events.LEVEL_UPDATED, (_, d) => { if (d.details && !d.details.live) markEnded(); });
    hls.loadSource(url);
    hls.attachMedia(v);
  } else {
    if (!mpegts.isSupported()) throw new Error('mpegts.js: MSE not supported');
    const p = window.__player = mpegts.createPlayer({ type: 'flv', isLive: true, url });
    p.on(mpegts.Events.ERROR, (type, details, info) => err(true, { source: 'mpegts.js', type, details, info }));
    p.on(mpegts.Events.LOADING_COMPLETE, markEnded);
    p.attachMediaElement(v);
    p.load();
    const r = p.play();
    if (r && r.catch) r.catch(e => err(false, { source: 'play()', message: String(e) }));
  }
} catch (e) {
  err(true, { source: 'page', message: String(e) });
}
</script>`;

const js = (f) => ({ type: 'text/javascript; charset=utf-8', body: f, file: true });
const html = { type: 'text/html; charset=utf-8', body: page };
const { origin, context, cleanup } = await launch({
  name: 'play.mjs', die, executablePath,
  routes: { '/': html, '/index.html': html, '/hls.js': js(files['/hls.js']), '/mpegts.js': js(files['/mpegts.js']) },
  limitMs: (timeoutSecs * 3 + 60) * 1000,
});

async function run(kind, url) {
  const p = await context.newPage();
  const consoleLines = [];
  p.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${m.type()}: ${m.text()}`); });
  p.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  p.on('requestfailed', (r) => consoleLines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  p.on('response', (r) => { if (r.status() >= 400) consoleLines.push(`response: ${r.status()} ${r.url()}`); });
  const t0 = Date.now();
  await p.goto(`${origin}/?kind=${kind}&url=${encodeURIComponent(url)}`);
  const snap = () => p.evaluate(() => {
    const v = document.getElementById('v');
    const s = window.__state;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
    return {
      currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight, paused: v.paused,
      readyState: v.readyState, startTime: s.startTime, fatal: s.fatal, errors: s.errors, ended: s.ended,
      frames: q.totalVideoFrames ?? null, dropped: q.droppedVideoFrames ?? null,
      audioBytes: v.webkitAudioDecodedByteCount ?? null,
      wall: s.startWall === null ? null : (performance.now() - s.startWall) / 1000,
    };
  });
  let s = await snap();
  while (Date.now() - t0 < timeoutSecs * 1000) {
    if (s.fatal) break;
    if (s.startTime !== null && s.currentTime - s.startTime >= advanceSecs && s.width > 0) break;
    await sleep(250);
    s = await snap();
  }
  const advance = s.startTime === null ? 0 : s.currentTime - s.startTime;
  const advanced = !s.fatal && advance >= advanceSecs && s.width > 0 && s.height > 0;
  let endSecs = null;
  if (advanced && watchEndSecs > 0) {
    if (progressFile) fs.writeFileSync(progressFile, 'advanced');
    const t1 = Date.now();
    while (Date.now() - t1 < watchEndSecs * 1000) {
      s = await snap();
      if (s.fatal || s.ended) break;
      await sleep(250);
    }
    endSecs = (Date.now() - t1) / 1000;
  }
  const result = {
    player: kind, url,
    ok: advanced && !s.fatal && (watchEndSecs === 0 || s.ended),
    ended: s.ended, secs_to_end: endSecs,
    advance: Math.round(advance * 1000) / 1000,
    start_time: s.startTime, current_time: s.currentTime,
    wall_secs: s.wall === null ? null : Math.round(s.wall * 1000) / 1000,
    secs_to_done: (Date.now() - t0) / 1000,
    width: s.width, height: s.height, frames: s.frames, dropped: s.dropped, audio_bytes: s.audioBytes,
    paused: s.paused, ready_state: s.readyState,
    errors: s.errors, console: consoleLines.slice(0, 50),
  };
  try { await p.evaluate(() => window.__player && window.__player.destroy()); } catch {}
  await p.close();
  return result;
}

let allOk = true;
try {
  for (const kind of ['hls', 'flv', 'ws']) {
    if (!args[kind]) continue;
    let r;
    try {
      r = await run(kind, args[kind]);
    } catch (e) {
      r = { player: kind, url: args[kind], ok: false, advance: 0, width: 0, height: 0, errors: [{ fatal: true, source: 'play.mjs', message: String(e) }] };
    }
    allOk &&= r.ok;
    console.log(JSON.stringify(r));
  }
} finally {
  await cleanup();
}
process.exit(allOk ? 0 : 1);
