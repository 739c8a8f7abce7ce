//! The shard's listeners: every shard accepts on the RTMP and HTTP media addresses
//! with SO_REUSEPORT, so the kernel spreads connections over the shards.

use crate::shard::Shard;
use crate::shard::StartError;
use monoio::net::{ListenerOpts, TcpListener};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// The listening sockets of one shard; `close` makes the accept loops end.
pub struct Listeners {
    fds: Vec<i32>,
}

impl Listeners {
    pub fn close(&self) {
        for fd in &self.fds {
            // Our own listening socket: a pending accept wakes.
            crate::net::sys::shutdown(*fd);
        }
    }
}

fn bind(addr: std::net::SocketAddr, key: &'static str) -> Result<TcpListener, StartError> {
    let opts = ListenerOpts::new().reuse_port(true).reuse_addr(true).backlog(4096);
    TcpListener::bind_with_config(addr, &opts).map_err(|source| StartError::Bind { addr, key, source })
}

pub fn start(shard: &Rc<Shard>) -> Result<Listeners, StartError> {
    let cfg = &shard.shared.cfg;
    let rtmp = bind(cfg.rtmp_listen, "rtmp.listen")?;
    let http = bind(cfg.http_listen, "http_media.listen")?;
    let fds = vec![rtmp.as_raw_fd(), http.as_raw_fd()];
    spawn_accept(shard.clone(), rtmp, Kind::Rtmp);
    spawn_accept(shard.clone(), http, Kind::Http);
    Ok(Listeners { fds })
}

#[derive(Clone, Copy)]
enum Kind {
    Rtmp,
    Http,
}

fn spawn_accept(shard: Rc<Shard>, listener: TcpListener, kind: Kind) {
    monoio::spawn(async move {
        loop {
            let (stream, addr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    if shard.shared.shutting_down.load(Ordering::Relaxed) {
                        break;
                    }
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(shard = shard.index, error = %e, "accept failed");
                    monoio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            shard.stats().accepted.fetch_add(1, Ordering::Relaxed);
            let Some(admission) = shard.shared.admit(addr.ip()) else {
                tracing::debug!(%addr, "connection refused: limits or shutdown");
                drop(stream);
                continue;
            };
            if shard.shared.cfg.tcp_nodelay {
                let _ = stream.set_nodelay(true);
            }
            let shard = shard.clone();
            monoio::spawn(async move {
                shard.stats().connections.fetch_add(1, Ordering::Relaxed);
                match kind {
                    Kind::Rtmp => crate::serve::rtmp_conn::serve(&shard, stream, addr).await,
                    Kind::Http => crate::serve::http::serve(&shard, stream, addr).await,
                }
                shard.stats().connections.fetch_sub(1, Ordering::Relaxed);
                drop(admission);
            });
        }
    });
}
