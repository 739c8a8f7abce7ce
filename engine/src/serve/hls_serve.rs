//! Serving HLS from the stream's home shard: the playlist and segments live in the
//! home's segmenter (muxed once per stream); other shards ask for them.

use crate::fanout::hls_viewers::HlsClient;
use crate::proto::http::{Response, StreamName};
use crate::shard::{HlsAnswer, Shard, ShardMsg};
use std::rc::Rc;
use std::time::{Duration, Instant};

async fn ask(shard: &Rc<Shard>, name: &StreamName, seq: Option<u64>, client: Option<HlsClient>) -> HlsAnswer {
    let home = shard.shared.home_of(name);
    let (tx, rx) = futures_channel::oneshot::channel();
    let msg = ShardMsg::Hls { name: name.clone(), seq, client, reply: tx };
    if home == shard.index {
        shard.handle(msg);
    } else if !shard.shared.send(home, msg) {
        return HlsAnswer::NoStream;
    }
    match monoio::time::timeout(Duration::from_secs(2), rx).await {
        Ok(Ok(a)) => a,
        _ => HlsAnswer::NoStream,
    }
}

fn answer(a: HlsAnswer, playlist: bool) -> Response {
    match a {
        HlsAnswer::Found(b) if playlist => {
            Response::new(200, "application/vnd.apple.mpegurl", b).header("Cache-Control", "no-cache")
        }
        HlsAnswer::Found(b) => Response::new(200, "video/mp2t", b).header("Cache-Control", "public, max-age=120"),
        HlsAnswer::NoStream => Response::text(404, "stream not found or not live"),
        HlsAnswer::Unsupported(why) => Response::text(404, &format!("HLS is not available for this stream: {why}")),
        HlsAnswer::NoSegment if playlist => Response::text(404, "no segment yet"),
        HlsAnswer::NoSegment => Response::text(404, "segment not found"),
    }
}

pub async fn playlist(shard: &Rc<Shard>, name: &StreamName, client: Option<HlsClient>) -> Response {
    if let Some(why) = shard.shared.tags_unavailable(name) {
        return Response::text(404, &format!("HLS is not available for this stream: {why}"));
    }
    // A room about to go live: wait briefly (`http_wait`) for it (an unknown name is
    // a 404 at once). A live stream whose first segment is still being cut: wait for
    // it (a keyframe, then a target duration of media), so that a player opened at
    // the start of a broadcast gets a playlist, not an error. Players such as hls.js
    // allow a manifest request far longer than this.
    let started = Instant::now();
    let idle_deadline = started + shard.shared.cfg.http_wait;
    let live_deadline =
        started + shard.shared.cfg.http_wait.max(2 * shard.shared.cfg.hls_fragment + FIRST_SEGMENT_SLACK);
    let mut known = false;
    loop {
        let a = ask(shard, name, None, client.clone()).await;
        if matches!(a, HlsAnswer::NoStream) && !known {
            if !shard.stream_known(name).await {
                return Response::text(404, "no such stream");
            }
            known = true;
        }
        let now = Instant::now();
        match a {
            HlsAnswer::NoStream if now < idle_deadline => {}
            HlsAnswer::NoSegment if now < live_deadline => {}
            a => return answer(a, true),
        }
        monoio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Beyond two target durations, how long a playlist request waits for a live
/// stream's first segment (the publisher's next keyframe may take that long).
const FIRST_SEGMENT_SLACK: Duration = Duration::from_secs(3);

pub async fn segment(shard: &Rc<Shard>, name: &StreamName, seq: u64, client: Option<HlsClient>) -> Response {
    answer(ask(shard, name, Some(seq), client).await, false)
}
