//! `whep-load`: one WHIP publisher and N WHEP subscribers of one stream from one
//! thread (see `benches::whep`).
//!
//! ```text
//! whep-load --api http://127.0.0.1:8080 --stream NAME --key KEY --subscribers 500 \
//!           [--ramp 100] [--duration 15] [--warmup 3] [--bitrate-kbps 1000] \
//!           [--watch-pid PID] [--json]
//! ```

use benches::whep::{Config, run};
use std::io::Write;
use std::time::Duration;

const USAGE: &str = "usage: whep-load --api URL (--stream NAME --key KEY | --create-room) [--subscribers N]
                 [--ramp PER_S] [--duration S] [--warmup S] [--bitrate-kbps K] [--gop S]
                 [--sample-every K] [--no-audio] [--setup-timeout S] [--signal-threads T]
                 [--watch-pid PID]... [--json] [--quiet]

  URL: the control plane, http://127.0.0.1:PORT (loopback only); WHIP goes to
       URL/whip/NAME with the stream key, WHEP to URL/whep/NAME
  --create-room      register a user and create a room first (instead of --stream/--key)
  --subscribers N    WHEP subscribers (default 100)
  --ramp R           subscribers started per second (default 100; 0 = all at once)
  --duration S       measured window in seconds (default 15)
  --warmup S         wait after every subscriber receives media (default 3)
  --bitrate-kbps K   publisher video bitrate (default 1000; audio adds ~40)
  --gop S            keyframe interval (default 2)
  --sample-every K   one subscriber in K decrypts and verifies every packet and
                     measures latency (default 16; 1 = all)
  --watch-pid PID    record this process's CPU over the window (the server):
                     gives server us per outbound packet
  --json             JSON lines (one per second and a summary) instead of a table
  --quiet            no per-second lines";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let die = |m: String| -> ! {
        eprintln!("whep-load: {m}\n{USAGE}");
        std::process::exit(2)
    };
    let mut api = None;
    let mut stream = None;
    let mut key = None;
    let mut create = false;
    let mut json = false;
    let mut quiet = false;
    let mut subscribers = 100usize;
    let mut ramp = 100f64;
    let mut duration = 15f64;
    let mut warmup = 3f64;
    let mut bitrate = 1000u32;
    let mut gop = 2f64;
    let mut sample_every = 16usize;
    let mut audio = true;
    let mut setup_timeout = 15f64;
    let mut threads = 4usize;
    let mut watch = vec![];
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || {
            i += 1;
            args.get(i).cloned().unwrap_or_else(|| die(format!("{a} needs a value")))
        };
        macro_rules! num {
            ($name:literal) => {
                val().parse().unwrap_or_else(|_| die(format!("bad {}", $name)))
            };
        }
        match a {
            "--api" => api = Some(val()),
            "--stream" => stream = Some(val()),
            "--key" => key = Some(val()),
            "--create-room" => create = true,
            "--subscribers" | "-n" => subscribers = num!("--subscribers"),
            "--ramp" => ramp = num!("--ramp"),
            "--duration" => duration = num!("--duration"),
            "--warmup" => warmup = num!("--warmup"),
            "--bitrate-kbps" => bitrate = num!("--bitrate-kbps"),
            "--gop" => gop = num!("--gop"),
            "--sample-every" => sample_every = num!("--sample-every"),
            "--no-audio" => audio = false,
            "--setup-timeout" => setup_timeout = num!("--setup-timeout"),
            "--signal-threads" => threads = num!("--signal-threads"),
            "--watch-pid" => watch.push(num!("--watch-pid")),
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
    let api = api.unwrap_or_else(|| die("--api is required".into()));
    let mut cfg = Config::new(&api).unwrap_or_else(|e| die(e));
    cfg.room = match (stream, key, create) {
        (Some(s), Some(k), false) => Some((s, k)),
        (None, None, true) => None,
        _ => die("give --stream and --key, or --create-room".into()),
    };
    cfg.subscribers = subscribers;
    cfg.ramp = ramp;
    cfg.duration = Duration::from_secs_f64(duration);
    cfg.warmup = Duration::from_secs_f64(warmup);
    cfg.bitrate_kbps = bitrate.max(16);
    cfg.gop = Duration::from_secs_f64(gop.max(0.04));
    cfg.sample_every = sample_every.max(1);
    cfg.audio = audio;
    cfg.setup_timeout = Duration::from_secs_f64(setup_timeout);
    cfg.signal_threads = threads.max(1);
    cfg.watch_pids = watch;
    let out = std::io::stdout();
    let report = run(&cfg, |t| {
        if quiet {
            return;
        }
        let mut o = out.lock();
        let _ = writeln!(o, "{}", if json { t.json.to_string() } else { t.line.clone() });
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
            eprintln!("whep-load: {e}");
            std::process::exit(1);
        }
    }
}
