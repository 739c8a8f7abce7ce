//! `srtp-floor`: the SRTP encrypt + `sendto` floor per outbound packet (see
//! `benches::srtp_floor`).
//!
//! ```text
//! srtp-floor --subscribers 500 [--duration 15] [--warmup 2] [--bitrate-kbps 1000]
//!            [--profile gcm|cm] [--sender-cpu 1] [--receiver-cpu 0] [--json]
//! ```

use benches::srtp_floor::{FloorConfig, run};
use engine::proto::webrtc::srtp::SrtpProfile;
use std::time::Duration;

const USAGE: &str = "usage: srtp-floor [--subscribers N] [--duration S] [--warmup S] [--bitrate-kbps K]
                  [--gop S] [--no-audio] [--profile gcm|gcm256|cm] [--sender-cpu C]
                  [--receiver-cpu C] [--spin-receiver] [--sendmmsg] [--json]

  One sender thread: the whep-load publisher's stream, and for every packet and every
  subscriber: RTP header write + SRTP encrypt (rtc-srtp, own context per subscriber) +
  sendto from one UDP socket. One receiver thread drains the N sockets. Prints the
  sender's CPU per packet (the floor) and the crypto-only cost.
  --profile      SRTP profile (default gcm = AEAD_AES_128_GCM, what the server negotiates
                 with whep-load; cm = AES_CM_128_HMAC_SHA1_80)
  --sender-cpu   pin the sender thread; --receiver-cpu the receiver thread
  --spin-receiver  the receiver busy-polls its sockets instead of sleeping in epoll
                 (no wake-ups for the sender to pay; a diagnostic, it burns a core)
  --sendmmsg     send each packet's copies to all subscribers with sendmmsg (one system
                 call per 1024) instead of one sendto each";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let die = |m: String| -> ! {
        eprintln!("srtp-floor: {m}\n{USAGE}");
        std::process::exit(2)
    };
    let mut cfg = FloorConfig::default();
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || {
            i += 1;
            args.get(i).cloned().unwrap_or_else(|| die(format!("{a} needs a value")))
        };
        macro_rules! num {
            () => {
                val().parse().unwrap_or_else(|_| die(format!("bad {a}")))
            };
        }
        match a {
            "--subscribers" | "-n" => cfg.subscribers = num!(),
            "--duration" => cfg.duration = Duration::from_secs_f64(num!()),
            "--warmup" => cfg.warmup = Duration::from_secs_f64(num!()),
            "--bitrate-kbps" => cfg.bitrate_kbps = num!(),
            "--gop" => cfg.gop = Duration::from_secs_f64(num!()),
            "--no-audio" => cfg.audio = false,
            "--profile" => {
                cfg.profile = match val().as_str() {
                    "gcm" => SrtpProfile::AeadAes128Gcm,
                    "gcm256" => SrtpProfile::AeadAes256Gcm,
                    "cm" => SrtpProfile::Aes128CmHmacSha1_80,
                    p => die(format!("unknown profile {p}")),
                }
            }
            "--sender-cpu" => cfg.sender_cpu = Some(num!()),
            "--receiver-cpu" => cfg.receiver_cpu = Some(num!()),
            "--spin-receiver" => cfg.spin_receiver = true,
            "--sendmmsg" => cfg.sendmmsg = true,
            "--json" => json = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            _ => die(format!("unknown argument {a}")),
        }
        i += 1;
    }
    match run(&cfg) {
        Ok((j, t)) => {
            if json {
                println!("{j}");
            } else {
                print!("{t}");
            }
        }
        Err(e) => {
            eprintln!("srtp-floor: {e}");
            std::process::exit(1);
        }
    }
}
