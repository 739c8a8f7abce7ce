//! `floor`: the minimal fan-out writer (see `benches::floor`).
//!
//! ```text
//! floor --fixture FILE.flv --interval 50 [--listen 127.0.0.1:0] [--duration S] [--nodelay]
//! ```
//! `--nodelay` sets TCP_NODELAY on the players' sockets (as microvibe does unless
//! `engine.tcp_nodelay = false`); without it Nagle's algorithm holds each
//! tick's write back until the reader acknowledges the previous one.
//! Prints `listening on PORT` first, a status line every 10 s and totals at the end.
//! Players connect with `loadgen --url http://127.0.0.1:PORT/any.flv`.

use benches::floor::{Fixture, run};
use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut fixture = None;
    let mut interval = 50u64;
    let mut listen = "127.0.0.1:0".to_owned();
    let mut duration = None;
    let mut nodelay = false;
    let mut i = 0;
    let die = |m: &str| -> ! {
        eprintln!(
            "floor: {m}\nusage: floor --fixture FILE.flv [--interval MS] [--listen ADDR] [--duration S] [--nodelay]"
        );
        std::process::exit(2)
    };
    while i < args.len() {
        let v = args.get(i + 1).cloned();
        match args[i].as_str() {
            "--fixture" => fixture = v,
            "--interval" => interval = v.and_then(|v| v.parse().ok()).unwrap_or_else(|| die("bad --interval")),
            "--listen" => listen = v.unwrap_or_else(|| die("bad --listen")),
            "--duration" => {
                duration = Some(v.and_then(|v| v.parse::<f64>().ok()).unwrap_or_else(|| die("bad --duration")))
            }
            "--nodelay" => {
                nodelay = true;
                i += 1;
                continue;
            }
            a => die(&format!("unknown argument {a}")),
        }
        i += 2;
    }
    let fixture = fixture.unwrap_or_else(|| die("--fixture is required"));
    let fx = Fixture::load(std::path::Path::new(&fixture)).unwrap_or_else(|e| die(&e));
    let addr: std::net::SocketAddr = listen.parse().unwrap_or_else(|_| die("bad --listen"));
    if !addr.ip().is_loopback() {
        die("--listen must be a loopback address");
    }
    eprintln!(
        "floor: {} media tags, loop {} ms, {:.2} Mbit/s, write every {interval} ms",
        fx.media.len(),
        fx.loop_ms,
        fx.bitrate() / 1e6
    );
    let r = run(
        addr,
        Duration::from_millis(interval.max(1)),
        &fx,
        duration.map(Duration::from_secs_f64),
        nodelay,
        |port| {
            println!("listening on {port}");
            let _ = std::io::stdout().flush();
        },
        |s| {
            println!(
                "status conns {} ticks {} writes {} partial {} bytes {} closed {}",
                s.conns, s.ticks, s.writes, s.partial, s.bytes, s.closed
            );
            let _ = std::io::stdout().flush();
        },
    );
    match r {
        Ok(s) => println!(
            "done conns {} ticks {} writes {} partial {} bytes {} closed {}",
            s.conns, s.ticks, s.writes, s.partial, s.bytes, s.closed
        ),
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::exit(1);
        }
    }
}
