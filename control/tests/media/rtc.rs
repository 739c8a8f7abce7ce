//! WebRTC test helpers shared by the e2e binaries: the network namespace each test
//! re-runs itself in, the aiortc interpreter, a server with WebRTC on loopback, and
//! the aiortc WHIP/WHEP peer (control/tests/webrtc/whip_peer.py).

use super::{Proc, Server, free_port};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const NETNS_ENV: &str = "MICROVIBE_TEST_IN_NETNS";

/// The Python that can `import aiortc` (`AIORTC_PYTHON`, else /tmp/aiortc-venv).
pub fn python() -> PathBuf {
    let py = std::env::var_os("AIORTC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/aiortc-venv/bin/python"));
    let ok = Command::new(&py).args(["-c", "import aiortc, av"]).status().map(|s| s.success()).unwrap_or(false);
    assert!(
        ok,
        "aiortc is required and was not found with {py:?}: run .ci/run, or \
         python3 -m venv /tmp/aiortc-venv && /tmp/aiortc-venv/bin/pip install aiortc"
    );
    py
}

/// Re-runs `test` inside a fresh network namespace with only `lo` (`unshare -n`,
/// bounded by a timeout); true when the body should run here (already inside).
pub fn enter_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "WebRTC tests need root for `unshare -n` (CI runs as root)");
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("timeout")
        .args(["-k", "10", "300", "unshare", "-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("run unshare");
    assert!(status.success(), "{test} failed inside its network namespace ({status})");
    false
}

/// Loss on every UDP datagram sent in the test's network namespace (both ways on
/// loopback), removed on drop. Deterministic: every `n`th datagram is dropped
/// (nftables `numgen inc`; this kernel has no netem). A random rule made the
/// "NACK was used" assertions flaky: a low-bitrate publisher sends ~100 video
/// packets in a few seconds, and 2 % random loss then misses all of them often
/// enough to fail CI.
pub struct UdpLoss;

impl UdpLoss {
    /// Drops one UDP datagram in `n`.
    pub fn one_in(n: u32) -> UdpLoss {
        Self::install(n, "")
    }

    /// Drops one in `n` of the UDP datagrams longer than `bytes` (UDP length): video
    /// RTP, not Opus. A test of the publisher-side NACK path needs video lost; with
    /// `one_in` the every-`n`th datagram can keep landing on audio for a few seconds.
    pub fn one_in_larger_than(n: u32, bytes: u32) -> UdpLoss {
        Self::install(n, &format!("udp length gt {bytes} "))
    }

    fn install(n: u32, filter: &str) -> UdpLoss {
        let rule = format!(
            "nft add table inet loss && nft add chain inet loss out '{{ type filter hook output priority 0; }}' \
             && nft add rule inet loss out meta l4proto udp {filter}numgen inc mod {n} 0 drop"
        );
        let st = Command::new("sh")
            .args(["-c", &rule])
            .status()
            .expect("nft (apt-get install nftables; .ci/run installs it)");
        assert!(st.success(), "could not install the UDP loss rule");
        UdpLoss
    }
}

impl Drop for UdpLoss {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", "loss"]).status();
    }
}

/// One-way delay on the WebRTC path (this kernel has no netem): the server binds
/// 127.0.0.1 and advertises 127.0.0.2, where a relay on the same ports holds every
/// datagram `delay` in each direction, keeping the order. Stops on drop.
pub struct UdpDelay(Vec<tokio::task::JoinHandle<()>>, Arc<AtomicU64>);

impl Drop for UdpDelay {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Sends what `rx` yields from `sock` to its address, each at its due time.
async fn send_due(sock: Arc<UdpSocket>, mut rx: mpsc::UnboundedReceiver<(tokio::time::Instant, Vec<u8>, SocketAddr)>) {
    while let Some((due, data, to)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        let _ = sock.send_to(&data, to).await;
    }
}

impl UdpDelay {
    /// Datagrams relayed so far (both directions).
    pub fn relayed(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }

    async fn relay(
        front: SocketAddr,
        back: SocketAddr,
        delay: Duration,
        count: Arc<AtomicU64>,
    ) -> tokio::task::JoinHandle<()> {
        let front_sock = Arc::new(UdpSocket::bind(front).await.expect("bind the delay relay"));
        tokio::spawn(async move {
            let (to_client, rx) = mpsc::unbounded_channel();
            let mut tasks = vec![tokio::spawn(send_due(front_sock.clone(), rx))];
            let mut upstream: HashMap<SocketAddr, mpsc::UnboundedSender<_>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            while let Ok((n, client)) = front_sock.recv_from(&mut buf).await {
                count.fetch_add(1, Ordering::Relaxed);
                let due = tokio::time::Instant::now() + delay;
                if !upstream.contains_key(&client) {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else { break };
                    let sock = Arc::new(sock);
                    tasks.push(tokio::spawn(send_due(sock.clone(), rx)));
                    // The server's answers to this client, back through the front.
                    let (to_client, count) = (to_client.clone(), count.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok((n, _)) = sock.recv_from(&mut buf).await {
                            count.fetch_add(1, Ordering::Relaxed);
                            let due = tokio::time::Instant::now() + delay;
                            let _ = to_client.send((due, buf[..n].to_vec(), client));
                        }
                    }));
                    upstream.insert(client, tx);
                }
                let tx = &upstream[&client];
                let _ = tx.send((due, buf[..n].to_vec(), back));
            }
            for t in tasks {
                t.abort();
            }
        })
    }
}

/// [`start_rtc`] behind a [`UdpDelay`] of `delay` each way (the ports of both of
/// [`Server::start`]'s shards).
pub async fn start_rtc_delayed(delay: Duration, extra: &[(&str, &str)]) -> (Server, UdpDelay) {
    let base = free_port();
    let (mut relays, count) = (vec![], Arc::new(AtomicU64::new(0)));
    for port in [base, base + 1] {
        let front: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
        let back: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        relays.push(UdpDelay::relay(front, back, delay, count.clone()).await);
    }
    let base = base.to_string();
    let mut env = vec![
        ("MICROVIBE__WEBRTC__UDP_PORT_BASE", base.as_str()),
        ("MICROVIBE__WEBRTC__BIND", "127.0.0.1"),
        ("MICROVIBE__WEBRTC__CANDIDATES", "127.0.0.2"),
    ];
    env.extend_from_slice(extra);
    (Server::start(&env).await, UdpDelay(relays, count))
}

/// A server with WebRTC on a free UDP port base, candidates 127.0.0.1, plus `extra` env.
pub async fn start_rtc(extra: &[(&str, &str)]) -> Server {
    let base = free_port().to_string();
    let mut env =
        vec![("MICROVIBE__WEBRTC__UDP_PORT_BASE", base.as_str()), ("MICROVIBE__WEBRTC__CANDIDATES", "127.0.0.1")];
    env.extend_from_slice(extra);
    Server::start(&env).await
}

/// An aiortc peer (control/tests/webrtc/whip_peer.py) and its JSON lines.
pub struct Peer {
    pub proc: Proc,
    lines: Receiver<Value>,
}

impl Peer {
    pub fn spawn(args: &[&str]) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webrtc/whip_peer.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Peer { proc: Proc(child), lines: rx }
    }

    /// The next line of `type`, within `t`.
    pub fn wait(&self, ty: &str, t: Duration) -> Value {
        self.try_wait(ty, t).unwrap_or_else(|| panic!("no {ty:?} from the aiortc peer within {t:?}"))
    }

    pub fn try_wait(&self, ty: &str, t: Duration) -> Option<Value> {
        let deadline = Instant::now() + t;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["type"] == ty => return Some(v),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}
