//! Building the answer: codec choice and the SDP text (RFC 8829 §5.3.1 JSEP
//! "Initial Answers", RFC 8843 §7.3 BUNDLE answers, RFC 8839 §5 ICE, RFC 8842
//! DTLS, RFC 6184 §8.2.2 H.264 offer/answer).
//!
//! Per offered section, in the offer's order:
//! - audio/video in the BUNDLE group with the expected direction and a codec we
//!   accept: answered (first such section of each kind only);
//! - anything else (data channels, a second video, no common codec,
//!   `inactive`): rejected with port 0 and left out of our BUNDLE group
//!   (RFC 8843 §7.3.3).
//!
//! Codecs: the first entry of [`AnswerOptions::audio_codecs`] /
//! [`AnswerOptions::video_codecs`] that the section offers wins. H.264 needs
//! `packetization-mode=1`; among several H.264 entries the
//! [`AnswerOptions::h264_profiles`] order decides, then the offer's order. The
//! offer's payload type numbers and fmtp are kept (an answerer echoes them).
//! RTX (RFC 4588) is accepted when offered with `apt=` the chosen codec. Feedback
//! answered: `nack`, `nack pli`, `ccm fir` (video). Header extensions: only the
//! MID extension (no congestion-control extensions: we do not send TWCC).

use core::net::SocketAddr;
use std::fmt::Write as _;

use rtc_sdp::description::common::{Address, Attribute, ConnectionInformation};
use rtc_sdp::description::media::{MediaDescription, MediaName, RangedPort};
use rtc_sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};

use super::super::cert::DtlsCertificate;
use super::super::error::WebRtcError;
use super::super::stun::IceCredentials;
use super::offer::{Offer, OfferedCodec, OfferedMedia};
use super::{Codec, Direction, MID_EXTENSION_URI, Negotiated, NegotiatedMedia, PREFERRED_H264_PROFILES, Role, Track};

/// Our SSRCs (RFC 3550 §8: random, distinct, non-zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSsrcs {
    /// Audio stream.
    pub audio: u32,
    /// Video stream.
    pub video: u32,
    /// Video retransmissions (RTX, RFC 4588 §8.1 `ssrc-group:FID`).
    pub video_rtx: u32,
}

impl LocalSsrcs {
    /// Three random, distinct, non-zero SSRCs.
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        let mut pick = |taken: &[u32]| loop {
            let s: u32 = rng.random();
            if s != 0 && !taken.contains(&s) {
                break s;
            }
        };
        let audio = pick(&[]);
        let video = pick(&[audio]);
        let video_rtx = pick(&[audio, video]);
        LocalSsrcs { audio, video, video_rtx }
    }
}

/// What to answer with.
#[derive(Debug, Clone)]
pub struct AnswerOptions {
    /// Publisher (client sends) or subscriber (client receives).
    pub role: Role,
    /// Our ICE credentials.
    pub ice: IceCredentials,
    /// Our certificate's SHA-256 fingerprint (`AB:CD:...`).
    pub fingerprint: String,
    /// Our host candidates (all of them: ICE-lite, no trickle from us).
    pub candidates: Vec<SocketAddr>,
    /// Acceptable audio codecs, preferred first (empty: reject audio).
    pub audio_codecs: Vec<Codec>,
    /// Acceptable video codecs, preferred first (empty: reject video).
    pub video_codecs: Vec<Codec>,
    /// Preferred H.264 `profile-level-id`s (lower-case hex), best first; other
    /// packetization-mode=1 profiles come after them unless
    /// [`h264_listed_only`](Self::h264_listed_only).
    pub h264_profiles: Vec<String>,
    /// Accept only the listed H.264 profiles (a subscriber that must match a
    /// publisher's profile).
    pub h264_listed_only: bool,
    /// Answer RTX when offered.
    pub rtx: bool,
    /// Our SSRCs.
    pub ssrcs: LocalSsrcs,
    /// RTCP CNAME (RFC 7022: random per session).
    pub cname: String,
    /// `msid` stream id for a subscriber's tracks (RFC 8830).
    pub stream_id: String,
    /// `o=` session id.
    pub session_id: u64,
}

impl AnswerOptions {
    /// Defaults: Opus; H.264 then VP8; the preferred H.264 profiles; RTX on;
    /// SSRCs, CNAME and session id drawn from `rng`.
    pub fn new<R: rand::Rng + ?Sized>(
        role: Role,
        ice: IceCredentials,
        cert: &DtlsCertificate,
        candidates: Vec<SocketAddr>,
        rng: &mut R,
    ) -> Self {
        let cname = IceCredentials::random(rng).pwd[..16].to_owned();
        AnswerOptions {
            role,
            ice,
            fingerprint: cert.fingerprint().to_owned(),
            candidates,
            audio_codecs: vec![Codec::Opus],
            video_codecs: vec![Codec::H264, Codec::Vp8],
            h264_profiles: PREFERRED_H264_PROFILES.iter().map(|s| s.to_string()).collect(),
            h264_listed_only: false,
            rtx: true,
            ssrcs: LocalSsrcs::random(rng),
            cname,
            stream_id: "microvibe".to_owned(),
            session_id: rng.random::<u64>() >> 2,
        }
    }

    fn codecs(&self, kind: Track) -> &[Codec] {
        match kind {
            Track::Audio => &self.audio_codecs,
            Track::Video => &self.video_codecs,
        }
    }
}

/// Answers `offer`: the SDP text and the parameters to run the session with.
pub fn build_answer(offer: &Offer, opts: &AnswerOptions) -> Result<(String, Negotiated), WebRtcError> {
    let mut negotiated = Negotiated {
        role: opts.role,
        local_ice: opts.ice.clone(),
        remote_ice: IceCredentials { ufrag: offer.ice_ufrag.clone(), pwd: offer.ice_pwd.clone() },
        remote_fingerprint: offer.fingerprint,
        bundle: Vec::new(),
        audio: None,
        video: None,
        candidates: opts.candidates.clone(),
        rtcp_rsize: false,
    };
    // Decide per section first (the BUNDLE line precedes the sections).
    let mut accepted: Vec<Option<(NegotiatedMedia, &OfferedMedia)>> = Vec::new();
    for m in &offer.media {
        let choice = accept_section(offer, m, opts, &negotiated)?;
        if let Some((nm, _)) = &choice {
            match nm.kind {
                Track::Audio => negotiated.audio = Some(nm.clone()),
                Track::Video => negotiated.video = Some(nm.clone()),
            }
            negotiated.bundle.push(nm.mid.clone());
        }
        accepted.push(choice);
    }
    if negotiated.audio.is_none() && negotiated.video.is_none() {
        return Err(WebRtcError::unsupported(
            "no media section with a common codec (Opus, H.264 packetization-mode=1, VP8)",
        ));
    }
    negotiated.rtcp_rsize = accepted.iter().flatten().all(|(_, om)| om.rtcp_rsize);
    // The BUNDLE tag is the first accepted mid in the offer's group order.
    negotiated.bundle.sort_by_key(|mid| offer.bundle.iter().position(|b| b == mid));

    let mut sd = SessionDescription {
        version: 0,
        origin: Origin {
            username: "-".into(),
            session_id: opts.session_id,
            session_version: 2,
            network_type: "IN".into(),
            address_type: "IP4".into(),
            unicast_address: "127.0.0.1".into(),
        },
        session_name: "-".into(),
        session_information: None,
        uri: None,
        email_address: None,
        phone_number: None,
        connection_information: None,
        bandwidth: vec![],
        time_descriptions: vec![TimeDescription {
            timing: Timing { start_time: 0, stop_time: 0 },
            repeat_times: vec![],
        }],
        time_zones: vec![],
        encryption_key: None,
        attributes: vec![],
        media_descriptions: vec![],
    };
    let a = |k: &str, v: Option<String>| Attribute::new(k.to_owned(), v);
    sd.attributes.push(a("group", Some(format!("BUNDLE {}", negotiated.bundle.join(" ")))));
    sd.attributes.push(a("ice-lite", None));
    if opts.role == Role::Subscriber {
        sd.attributes.push(a("msid-semantic", Some(format!(" WMS {}", opts.stream_id))));
    }

    for (m, choice) in offer.media.iter().zip(accepted.iter()) {
        let md = match choice {
            Some((nm, om)) => accepted_section(nm, om, opts),
            None => rejected_section(m),
        };
        sd.media_descriptions.push(md);
    }
    Ok((sd.marshal(), negotiated))
}

/// `Some` if the section is answered, with what.
fn accept_section<'o>(
    offer: &'o Offer,
    section: &'o OfferedMedia,
    opts: &AnswerOptions,
    so_far: &Negotiated,
) -> Result<Option<(NegotiatedMedia, &'o OfferedMedia)>, WebRtcError> {
    let Some(kind) = section.kind else { return Ok(None) };
    if (section.port == 0 && !section.bundle_only) || !offer.bundle.contains(&section.mid) {
        return Ok(None);
    }
    if so_far.media(kind).is_some() {
        return Ok(None); // one section per kind
    }
    match (opts.role, section.direction) {
        (_, Direction::Inactive) => return Ok(None),
        (Role::Publisher, Direction::RecvOnly) => {
            return Err(WebRtcError::bad_offer(format!(
                "mid '{}' is recvonly: a publisher must offer sendonly or sendrecv",
                section.mid
            )));
        }
        (Role::Subscriber, Direction::SendOnly) => {
            return Err(WebRtcError::bad_offer(format!(
                "mid '{}' is sendonly: a subscriber must offer recvonly or sendrecv",
                section.mid
            )));
        }
        _ => {}
    }
    let Some((codec, offered)) = choose_codec(section, opts.codecs(kind), opts) else {
        return Ok(None);
    };
    let rtx = (opts.rtx && kind == Track::Video)
        .then(|| {
            section.codecs.iter().find(|c| c.name.eq_ignore_ascii_case("rtx") && c.apt() == Some(offered.payload_type))
        })
        .flatten();
    let video = kind == Track::Video;
    let fmtp = match codec {
        Codec::Opus if offered.fmtp.is_empty() => "minptime=10;useinbandfec=1".to_owned(),
        _ => offered.fmtp.clone(),
    };
    let (remote_ssrcs, remote_rtx_ssrc) = match section.fid_groups.first() {
        Some(&(primary, rtx)) => {
            let mut v = vec![primary];
            v.extend(section.ssrcs.iter().copied().filter(|s| *s != primary && *s != rtx));
            (v, Some(rtx))
        }
        None => (section.ssrcs.clone(), None),
    };
    let (local_ssrc, local_rtx_ssrc) = match kind {
        Track::Audio => (opts.ssrcs.audio, None),
        Track::Video => {
            (opts.ssrcs.video, (rtx.is_some() && opts.role == Role::Subscriber).then_some(opts.ssrcs.video_rtx))
        }
    };
    let nm = NegotiatedMedia {
        mid: section.mid.clone(),
        kind,
        codec,
        payload_type: offered.payload_type,
        fmtp,
        rtx_payload_type: rtx.map(|c| c.payload_type),
        mid_extension_id: section
            .extmaps
            .iter()
            .find(|(_, uri)| uri == MID_EXTENSION_URI)
            .map(|(id, _)| *id)
            .filter(|id| *id <= 14),
        nack: video && offered.has_feedback("nack"),
        pli: video && offered.has_feedback("nack pli"),
        fir: video && offered.has_feedback("ccm fir"),
        remote_ssrcs,
        remote_rtx_ssrc,
        local_ssrc,
        local_rtx_ssrc,
    };
    Ok(Some((nm, section)))
}

fn choose_codec<'m>(m: &'m OfferedMedia, wanted: &[Codec], opts: &AnswerOptions) -> Option<(Codec, &'m OfferedCodec)> {
    for &codec in wanted {
        if codec.kind() != m.kind? {
            continue;
        }
        let found = match codec {
            Codec::Opus => m.codecs.iter().find(|c| {
                c.name.eq_ignore_ascii_case("opus") && c.clock_rate == 48_000 && c.channels.unwrap_or(2) == 2
            }),
            Codec::Vp8 => m.codecs.iter().find(|c| c.name.eq_ignore_ascii_case("VP8") && c.clock_rate == 90_000),
            Codec::H264 => {
                let rank = |c: &OfferedCodec| {
                    let plid = c.fmtp_param("profile-level-id").unwrap_or("42001f");
                    opts.h264_profiles.iter().position(|p| p.eq_ignore_ascii_case(plid))
                };
                m.codecs
                    .iter()
                    .filter(|c| {
                        c.name.eq_ignore_ascii_case("H264")
                            && c.clock_rate == 90_000
                            && c.fmtp_param("packetization-mode") == Some("1")
                    })
                    .filter(|c| !opts.h264_listed_only || rank(c).is_some())
                    .enumerate()
                    .min_by_key(|(i, c)| (rank(c).unwrap_or(usize::MAX), *i))
                    .map(|(_, c)| c)
            }
        };
        if let Some(c) = found {
            return Some((codec, c));
        }
    }
    None
}

/// RFC 8445 §5.1.2.1: type preference 126 (host), local preference by order,
/// component 1.
fn host_candidate(i: usize, addr: SocketAddr) -> String {
    let local_pref = 65535u32.saturating_sub(i as u32);
    let priority = (126u32 << 24) | (local_pref << 8) | 255;
    format!("{} 1 udp {priority} {} {} typ host", i + 1, addr.ip(), addr.port())
}

fn connection(addr: Option<SocketAddr>) -> ConnectionInformation {
    let (atype, ip) = match addr {
        Some(SocketAddr::V6(a)) => ("IP6", a.ip().to_string()),
        Some(SocketAddr::V4(a)) => ("IP4", a.ip().to_string()),
        None => ("IP4", "0.0.0.0".to_owned()),
    };
    ConnectionInformation {
        network_type: "IN".into(),
        address_type: atype.into(),
        address: Some(Address { address: ip, ttl: None, range: None }),
    }
}

fn accepted_section(negotiated: &NegotiatedMedia, section: &OfferedMedia, opts: &AnswerOptions) -> MediaDescription {
    let default = opts.candidates.first().copied();
    let mut formats = vec![negotiated.payload_type.to_string()];
    if let Some(rtx) = negotiated.rtx_payload_type {
        formats.push(rtx.to_string());
    }
    let mut attrs: Vec<Attribute> = Vec::new();
    let mut a = |k: &str, v: Option<String>| attrs.push(Attribute::new(k.to_owned(), v));
    a("mid", Some(negotiated.mid.clone()));
    a("ice-ufrag", Some(opts.ice.ufrag.clone()));
    a("ice-pwd", Some(opts.ice.pwd.clone()));
    a("fingerprint", Some(format!("sha-256 {}", opts.fingerprint)));
    a("setup", Some("passive".into()));
    if let Some(id) = negotiated.mid_extension_id {
        a("extmap", Some(format!("{id} {MID_EXTENSION_URI}")));
    }
    let direction = match opts.role {
        Role::Publisher => Direction::RecvOnly,
        Role::Subscriber => Direction::SendOnly,
    };
    a(direction.as_str(), None);
    let track = format!("{}-{}", opts.stream_id, negotiated.kind.as_str());
    if opts.role == Role::Subscriber {
        a("msid", Some(format!("{} {track}", opts.stream_id)));
    }
    a("rtcp-mux", None);
    if section.rtcp_rsize {
        a("rtcp-rsize", None);
    }
    let channels = if negotiated.codec == Codec::Opus { "/2" } else { "" };
    a(
        "rtpmap",
        Some(format!(
            "{} {}/{}{channels}",
            negotiated.payload_type,
            negotiated.codec.rtpmap_name(),
            negotiated.codec.clock_rate()
        )),
    );
    if negotiated.nack {
        a("rtcp-fb", Some(format!("{} nack", negotiated.payload_type)));
    }
    if negotiated.pli {
        a("rtcp-fb", Some(format!("{} nack pli", negotiated.payload_type)));
    }
    if negotiated.fir {
        a("rtcp-fb", Some(format!("{} ccm fir", negotiated.payload_type)));
    }
    if !negotiated.fmtp.is_empty() {
        a("fmtp", Some(format!("{} {}", negotiated.payload_type, negotiated.fmtp)));
    }
    if let Some(rtx) = negotiated.rtx_payload_type {
        a("rtpmap", Some(format!("{rtx} rtx/90000")));
        a("fmtp", Some(format!("{rtx} apt={}", negotiated.payload_type)));
    }
    if opts.role == Role::Subscriber {
        if let Some(rtx) = negotiated.local_rtx_ssrc {
            a("ssrc-group", Some(format!("FID {} {rtx}", negotiated.local_ssrc)));
        }
        let mut ssrcs = vec![negotiated.local_ssrc];
        ssrcs.extend(negotiated.local_rtx_ssrc);
        for s in ssrcs {
            a("ssrc", Some(format!("{s} cname:{}", opts.cname)));
            a("ssrc", Some(format!("{s} msid:{} {track}", opts.stream_id)));
        }
    }
    for (i, c) in opts.candidates.iter().enumerate() {
        a("candidate", Some(host_candidate(i, *c)));
    }
    a("end-of-candidates", None);
    MediaDescription {
        media_name: MediaName {
            media: negotiated.kind.as_str().into(),
            port: RangedPort { value: default.map_or(9, |d| d.port() as isize), range: None },
            protos: vec!["UDP".into(), "TLS".into(), "RTP".into(), "SAVPF".into()],
            formats,
        },
        media_title: None,
        connection_information: Some(connection(default)),
        bandwidth: vec![],
        encryption_key: None,
        attributes: attrs,
    }
}

fn rejected_section(section: &OfferedMedia) -> MediaDescription {
    let mut attrs = Vec::new();
    if !section.mid.is_empty() {
        attrs.push(Attribute::new("mid".into(), Some(section.mid.clone())));
    }
    let mut formats = section.formats.clone();
    if formats.is_empty() {
        formats.push("0".into());
    }
    MediaDescription {
        media_name: MediaName {
            media: section.media_type.clone(),
            port: RangedPort { value: 0, range: None },
            protos: section.protocol.split('/').map(str::to_owned).collect(),
            formats,
        },
        media_title: None,
        connection_information: Some(connection(None)),
        bandwidth: vec![],
        encryption_key: None,
        attributes: attrs,
    }
}

/// A one-line summary of a negotiation, for logs and test dumps.
pub fn summary(n: &Negotiated) -> String {
    let mut s = format!("{:?} bundle={:?}", n.role, n.bundle);
    for m in [&n.audio, &n.video].into_iter().flatten() {
        let _ = write!(
            s,
            " | {} mid={} {:?} pt={} rtx={:?} midext={:?} nack={} pli={} fir={} fmtp='{}' remote={:?}/{:?}",
            m.kind.as_str(),
            m.mid,
            m.codec,
            m.payload_type,
            m.rtx_payload_type,
            m.mid_extension_id,
            m.nack,
            m.pli,
            m.fir,
            m.fmtp,
            m.remote_ssrcs,
            m.remote_rtx_ssrc
        );
    }
    s
}
