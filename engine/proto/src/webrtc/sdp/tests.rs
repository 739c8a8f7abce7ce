//! Answers to real and real-shaped offers kept in `engine/testdata/webrtc/`
//! (each `.sdp` has a `.txt` saying where it came from).

use core::net::SocketAddr;

use super::super::cert::DtlsCertificate;
use super::super::client::parse_answer;
use super::*;

macro_rules! offer {
    ($name:literal) => {
        include_str!(concat!("../../../../testdata/webrtc/", $name, ".sdp"))
    };
}

fn cert() -> DtlsCertificate {
    use std::sync::OnceLock;
    static CERT: OnceLock<DtlsCertificate> = OnceLock::new();
    CERT.get_or_init(|| DtlsCertificate::generate().unwrap()).clone()
}

fn opts(role: Role) -> AnswerOptions {
    let candidates: Vec<SocketAddr> = vec!["127.0.0.1:5000".parse().unwrap(), "[::1]:5000".parse().unwrap()];
    let mut o = AnswerOptions::new(
        role,
        IceCredentials { ufrag: "srvufrag".into(), pwd: "server-password-0123456789".replace('-', "x") },
        &cert(),
        candidates,
        &mut rand::rng(),
    );
    o.ssrcs = LocalSsrcs { audio: 1111, video: 2222, video_rtx: 3333 };
    o.cname = "cname1".into();
    o
}

fn answer(text: &str, role: Role) -> (String, Negotiated) {
    let offer = Offer::parse(text).unwrap_or_else(|e| panic!("{e}"));
    build_answer(&offer, &opts(role)).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks every answer for the rules of an ICE-lite, passive, bundled server.
fn check_common(sdp: &str, n: &Negotiated, dir: &str) {
    assert!(sdp.contains("a=ice-lite\r\n"), "{sdp}");
    assert!(sdp.contains(&format!("a=group:BUNDLE {}\r\n", n.bundle.join(" "))));
    assert!(sdp.contains("a=ice-ufrag:srvufrag\r\n"));
    assert!(sdp.contains(&format!("a=fingerprint:sha-256 {}\r\n", cert().fingerprint())));
    assert!(sdp.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"));
    assert!(sdp.contains("a=candidate:2 1 udp 2130706175 ::1 5000 typ host\r\n"));
    assert!(sdp.contains("a=end-of-candidates\r\n"));
    assert!(!sdp.contains("transport-cc"));
    assert!(!sdp.contains("goog-remb"));
    let sections = sdp.matches("\r\nm=").count();
    assert_eq!(sdp.matches("a=setup:passive\r\n").count(), n.bundle.len());
    assert_eq!(sdp.matches("a=rtcp-mux\r\n").count(), n.bundle.len());
    assert_eq!(sdp.matches(&format!("a={dir}\r\n")).count(), n.bundle.len());
    assert!(sections >= n.bundle.len());
    // Our own client parser (and rtc-sdp underneath) reads it back.
    let parsed = parse_answer(sdp).unwrap();
    assert!(parsed.ice_lite);
    assert_eq!(parsed.setup, "passive");
    assert_eq!(parsed.fingerprint.len(), 32);
    assert_eq!(parsed.candidates[0], "127.0.0.1:5000".parse::<SocketAddr>().unwrap());
}

#[test]
fn chromium_publisher() {
    let (sdp, n) = answer(offer!("chromium_publisher_offer"), Role::Publisher);
    check_common(&sdp, &n, "recvonly");
    let a = n.audio.as_ref().unwrap();
    let v = n.video.as_ref().unwrap();
    assert_eq!((a.mid.as_str(), a.codec, a.payload_type), ("0", Codec::Opus, 111));
    assert_eq!((v.mid.as_str(), v.codec, v.payload_type), ("1", Codec::H264, 108));
    assert!(v.fmtp.contains("profile-level-id=42e01f") && v.fmtp.contains("packetization-mode=1"));
    assert_eq!(v.rtx_payload_type, Some(109));
    assert_eq!(v.mid_extension_id, Some(4));
    assert!(v.nack && v.pli && v.fir);
    assert!(n.rtcp_rsize);
    assert_eq!(a.remote_ssrcs.len(), 1);
    assert!(v.remote_rtx_ssrc.is_some());
    assert!(sdp.contains("m=video 5000 UDP/TLS/RTP/SAVPF 108 109\r\n"));
    assert!(sdp.contains("a=fmtp:109 apt=108\r\n"));
    assert!(sdp.contains("a=rtcp-fb:108 nack pli\r\n"));
    assert!(sdp.contains("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"));
    assert!(!sdp.contains("a=ssrc:"), "a publisher answer declares no SSRCs");
    assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"));
}

#[test]
fn chromium_subscriber() {
    let (sdp, n) = answer(offer!("chromium_subscriber_offer"), Role::Subscriber);
    check_common(&sdp, &n, "sendonly");
    let v = n.video.as_ref().unwrap();
    assert_eq!((v.codec, v.payload_type, v.rtx_payload_type), (Codec::H264, 108, Some(109)));
    assert_eq!((v.local_ssrc, v.local_rtx_ssrc), (2222, Some(3333)));
    assert!(sdp.contains("a=ssrc-group:FID 2222 3333\r\n"));
    assert!(sdp.contains("a=ssrc:2222 cname:cname1\r\n"));
    assert!(sdp.contains("a=ssrc:1111 msid:microvibe microvibe-audio\r\n"));
    assert!(sdp.contains("a=msid:microvibe microvibe-video\r\n"));
    assert!(sdp.contains("a=msid-semantic: WMS microvibe\r\n"));
}

#[test]
fn chromium_vp8_only_when_asked() {
    let offer = Offer::parse(offer!("chromium_subscriber_offer")).unwrap();
    let mut o = opts(Role::Subscriber);
    o.video_codecs = vec![Codec::Vp8];
    let (sdp, n) = build_answer(&offer, &o).unwrap();
    let v = n.video.unwrap();
    assert_eq!((v.codec, v.payload_type, v.rtx_payload_type), (Codec::Vp8, 96, Some(97)));
    assert!(sdp.contains("a=rtpmap:96 VP8/90000\r\n"));
}

#[test]
fn aiortc_publisher_and_subscriber() {
    let (sdp, n) = answer(offer!("aiortc_publisher_offer"), Role::Publisher);
    check_common(&sdp, &n, "recvonly");
    let a = n.audio.as_ref().unwrap();
    let v = n.video.as_ref().unwrap();
    assert_eq!((a.codec, a.payload_type), (Codec::Opus, 96));
    assert_eq!((v.codec, v.payload_type, v.rtx_payload_type), (Codec::H264, 101, Some(102)));
    assert!(!v.fir, "aiortc offers no ccm fir");
    assert!(v.nack && v.pli);
    assert_eq!(v.mid_extension_id, Some(1));
    assert_eq!(v.remote_ssrcs, vec![297764490]);
    assert_eq!(v.remote_rtx_ssrc, Some(1208517419));
    assert!(!n.rtcp_rsize);
    assert!(sdp.contains("a=fmtp:96 minptime=10;useinbandfec=1\r\n"), "Opus fmtp filled in");

    let (sdp, n) = answer(offer!("aiortc_subscriber_offer"), Role::Subscriber);
    check_common(&sdp, &n, "sendonly");
    assert_eq!(n.video.unwrap().payload_type, 101);
}

#[test]
fn obs30_whip() {
    let offer = Offer::parse(offer!("obs30_whip_offer")).unwrap();
    assert_eq!(offer.ice_ufrag, "8hhY");
    assert_eq!(offer.ice_options, vec!["ice2,trickle".to_string()]);
    assert!(offer.candidates.is_empty());
    assert_eq!(offer.setup, Setup::ActPass);
    let (sdp, n) = build_answer(&offer, &opts(Role::Publisher)).unwrap();
    check_common(&sdp, &n, "recvonly");
    let a = n.audio.as_ref().unwrap();
    let v = n.video.as_ref().unwrap();
    assert_eq!((a.mid.as_str(), a.payload_type), ("0", 111));
    assert_eq!((v.mid.as_str(), v.codec, v.payload_type), ("1", Codec::H264, 96));
    assert_eq!(v.rtx_payload_type, None);
    assert_eq!(v.mid_extension_id, None);
    assert_eq!(a.remote_ssrcs, vec![1398305958]);
    assert_eq!(v.remote_ssrcs, vec![1398305959]);
    assert!(!sdp.contains("a=group:LS"), "only BUNDLE is answered");
    assert!(sdp.contains("a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1\r\n"));
}

#[test]
fn firefox_publisher() {
    let offer = Offer::parse(offer!("firefox_publisher_offer")).unwrap();
    assert_eq!(offer.ice_ufrag, "6c1f8a3e");
    let (sdp, n) = build_answer(&offer, &opts(Role::Publisher)).unwrap();
    check_common(&sdp, &n, "recvonly");
    let v = n.video.as_ref().unwrap();
    assert_eq!((v.codec, v.payload_type, v.rtx_payload_type), (Codec::H264, 126, Some(127)));
    assert_eq!(v.mid_extension_id, Some(3));
    assert_eq!(v.remote_ssrcs, vec![3306104217]);
    assert_eq!(v.remote_rtx_ssrc, Some(1573617040));
    assert_eq!(n.audio.as_ref().unwrap().payload_type, 109);
}

#[test]
fn safari_subscriber_prefers_42e01f() {
    let (sdp, n) = answer(offer!("safari_subscriber_offer"), Role::Subscriber);
    check_common(&sdp, &n, "sendonly");
    let v = n.video.as_ref().unwrap();
    assert_eq!((v.payload_type, v.rtx_payload_type), (98, Some(99)));
    // Listed-only profiles: a subscriber of a 640c1f publisher.
    let offer = Offer::parse(offer!("safari_subscriber_offer")).unwrap();
    let mut o = opts(Role::Subscriber);
    o.h264_profiles = vec!["640c1f".into()];
    o.h264_listed_only = true;
    let (_, n) = build_answer(&offer, &o).unwrap();
    assert_eq!(n.video.unwrap().payload_type, 96);
}

#[test]
fn unsupported_sections_are_rejected_with_port_zero() {
    let text = offer!("chromium_publisher_offer").replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
        + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n";
    let (sdp, n) = answer(&text, Role::Publisher);
    assert_eq!(n.bundle, vec!["0", "1"]);
    assert!(sdp.contains("m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"), "{sdp}");
    // Audio only with PCMU: audio rejected, video kept.
    let offer = Offer::parse(offer!("obs30_whip_offer")).unwrap();
    let mut o = opts(Role::Publisher);
    o.audio_codecs.clear();
    let (sdp, n) = build_answer(&offer, &o).unwrap();
    assert!(n.audio.is_none());
    assert_eq!(n.bundle, vec!["1"]);
    assert!(sdp.contains("m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n"));
}

fn expect_err(text: &str, role: Role, want: &str) {
    let res = Offer::parse(text).and_then(|o| build_answer(&o, &opts(role)));
    let err = res.expect_err("must fail");
    assert!(err.to_string().contains(want), "{err} does not contain {want}");
    assert_eq!(err.http_status(), 400);
}

#[test]
fn bad_offers_get_clear_errors() {
    let obs = offer!("obs30_whip_offer");
    expect_err("hello", Role::Publisher, "not SDP");
    expect_err(&obs.replace("a=group:BUNDLE 0 1\r\n", ""), Role::Publisher, "BUNDLE");
    expect_err(&obs.replace("a=rtcp-mux\r\n", ""), Role::Publisher, "rtcp-mux");
    expect_err(&obs.replace("a=ice-ufrag:8hhY\r\n", ""), Role::Publisher, "ice-ufrag");
    expect_err(&obs.replace("a=ice-pwd:Iu7SHkaVHosS3D5Hdt9q7fVP", "a=ice-pwd:short"), Role::Publisher, "ice-pwd");
    expect_err(&obs.replace("sha-256 5B", "sha-1 5B"), Role::Publisher, "sha-256");
    let no_fp: String = obs.lines().filter(|l| !l.starts_with("a=fingerprint")).map(|l| format!("{l}\r\n")).collect();
    expect_err(&no_fp, Role::Publisher, "fingerprint");
    expect_err(&obs.replace("a=setup:actpass", "a=setup:passive"), Role::Publisher, "passive");
    expect_err(obs, Role::Subscriber, "sendonly");
    expect_err(offer!("chromium_subscriber_offer"), Role::Publisher, "recvonly");
    expect_err(
        &obs.replace("H264/90000", "H265/90000").replace("opus/48000/2", "PCMU/8000"),
        Role::Publisher,
        "no media section with a common codec",
    );
    expect_err(
        &obs.replace("packetization-mode=1", "packetization-mode=0").replace("opus/48000/2", "PCMU/8000"),
        Role::Publisher,
        "common codec",
    );
    expect_err(&obs.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), Role::Publisher, "protocol");
    expect_err(
        &format!("{obs}a=ice-lite\r\n").replace("a=msid-semantic", "a=ice-lite\r\na=msid-semantic"),
        Role::Publisher,
        "ICE-lite",
    );
}

#[test]
fn setup_active_is_accepted_and_lf_only_offers_parse() {
    let obs = offer!("obs30_whip_offer").replace("a=setup:actpass", "a=setup:active");
    let o = Offer::parse(&obs).unwrap();
    assert_eq!(o.setup, Setup::Active);
    let lf = offer!("chromium_publisher_offer").replace("\r\n", "\n");
    let (_, n) = answer(&lf, Role::Publisher);
    assert_eq!(n.video.unwrap().payload_type, 108);
}

#[test]
fn garbage_never_panics() {
    let base = offer!("chromium_publisher_offer");
    for cut in (0..base.len()).step_by(97) {
        let _ = Offer::parse(&base[..cut]).map(|o| build_answer(&o, &opts(Role::Publisher)));
    }
    let _ = Offer::parse("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 300\r\n");
}
