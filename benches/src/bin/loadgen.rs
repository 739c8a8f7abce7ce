//! `loadgen`: N players of one stream from one thread (see `benches::loadgen`).
//!
//! ```text
//! loadgen --url rtmp://127.0.0.1:1935/live/NAME --players 1000 --ramp 200 \
//!         --duration 20 [--warmup 2] [--read-interval 200] [--parser lean|engine] \
//!         [--watch-pid PID]... [--json]
//! ```

use benches::loadgen::{Config, ParserKind, Target, run};
use std::io::Write;
use std::time::Duration;

const USAGE: &str = "usage: loadgen --url URL [--players N] [--ramp PER_S] [--duration S] [--warmup S]
               [--read-interval MS] [--parser lean|engine] [--setup-timeout S]
               [--watch-pid PID]... [--json] [--quiet]

  URL: rtmp://host:port/app/name | http://host:port/path.flv | ws://host:port/path.flv
       (loopback addresses only); --url again adds a stream: players are spread
       round-robin over all the URLs given
  --players N        players to open (default 100)
  --ramp R           players started per second (default 100; 0 = all at once)
  --duration S       length of the measured window in seconds (default 20)
  --warmup S         wait between the last player's start and the window (default 2)
  --read-interval MS once media flows, each socket is read every MS ms (default 200)
  --parser P         lean (default): own chunk/tag scanners after setup;
                     engine: the engine's ClientSession / FlvReader throughout
  --watch-pid PID    also record this process's CPU (utime/stime) and RSS over the window
  --json             print one JSON object per second and a JSON summary (else a table)
  --quiet            no per-second lines";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut url = None;
    let mut more = vec![];
    let mut json = false;
    let mut quiet = false;
    let mut players = 100usize;
    let mut ramp = 100f64;
    let mut duration = 20f64;
    let mut warmup = 2f64;
    let mut interval = 200u64;
    let mut parser = ParserKind::Lean;
    let mut setup_timeout = 15f64;
    let mut watch = vec![];
    let mut i = 0;
    let die = |m: String| -> ! {
        eprintln!("loadgen: {m}\n{USAGE}");
        std::process::exit(2)
    };
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || {
            i += 1;
            args.get(i).cloned().unwrap_or_else(|| die(format!("{a} needs a value")))
        };
        match a {
            "--url" if url.is_none() => url = Some(val()),
            "--url" => more.push(val()),
            "--players" | "-n" => players = val().parse().unwrap_or_else(|_| die("bad --players".into())),
            "--ramp" => ramp = val().parse().unwrap_or_else(|_| die("bad --ramp".into())),
            "--duration" => duration = val().parse().unwrap_or_else(|_| die("bad --duration".into())),
            "--warmup" => warmup = val().parse().unwrap_or_else(|_| die("bad --warmup".into())),
            "--read-interval" => interval = val().parse().unwrap_or_else(|_| die("bad --read-interval".into())),
            "--setup-timeout" => setup_timeout = val().parse().unwrap_or_else(|_| die("bad --setup-timeout".into())),
            "--parser" => {
                parser = match val().as_str() {
                    "lean" => ParserKind::Lean,
                    "engine" => ParserKind::Engine,
                    p => die(format!("unknown parser {p}")),
                }
            }
            "--watch-pid" => watch.push(val().parse().unwrap_or_else(|_| die("bad --watch-pid".into()))),
            "--json" => json = true,
            "--quiet" | "-q" => quiet = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            _ => die(format!("unknown argument {a}")),
        }
        i += 1;
    }
    let url = url.unwrap_or_else(|| die("--url is required".into()));
    let mut cfg = Config::new(&url).unwrap_or_else(|e| die(e));
    for u in &more {
        cfg.more.push(Target::parse(u).unwrap_or_else(|e| die(e)));
    }
    cfg.players = players;
    cfg.ramp = ramp;
    cfg.duration = Duration::from_secs_f64(duration);
    cfg.warmup = Duration::from_secs_f64(warmup);
    cfg.read_interval = Duration::from_millis(interval.max(1));
    cfg.parser = parser;
    cfg.setup_timeout = Duration::from_secs_f64(setup_timeout);
    cfg.watch_pids = watch;
    let out = std::io::stdout();
    let report = run(&cfg, |t| {
        if quiet {
            return;
        }
        let mut o = out.lock();
        if json {
            let _ = writeln!(o, "{}", t.json);
        } else {
            let _ = writeln!(o, "{}", t.line);
        }
        let _ = o.flush();
    });
    match report {
        Ok(r) => {
            if json {
                println!("{}", r.json);
            } else {
                print!("{}", r.table);
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}
