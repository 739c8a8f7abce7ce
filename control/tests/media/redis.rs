//! A Redis server of a test's own on a spare port (`redis-server --save "" --appendonly
//! no`), killed by its PID on drop: restart it to lose every key, as a Redis without
//! persistence does.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    pub fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server is needed for this test: {e}"));
        // Killed (by its PID) on drop, whatever happens below.
        let redis = OwnRedis { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
                s.write_all(b"PING\r\n").ok()?;
                let mut b = [0u8; 7];
                s.read_exact(&mut b).ok()?;
                Some(b == *b"+PONG\r\n")
            });
            if pong == Some(true) {
                return redis;
            }
            assert!(Instant::now() < deadline, "redis-server on port {port} did not answer PING");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
