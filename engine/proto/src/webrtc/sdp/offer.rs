//! Parsing and validating a client's SDP offer.
//!
//! `rtc-sdp` splits the text into session and media sections with their
//! attributes; this module reads the attributes WebRTC needs and checks the
//! rules this server depends on:
//!
//! - every audio/video section is `UDP/TLS/RTP/SAVPF` with `a=mid` and
//!   `a=rtcp-mux` (RFC 8829 §5.1.1, §5.1.3: the rtcp-mux policy "require");
//! - more than one section means an `a=group:BUNDLE` containing all of them
//!   (RFC 8843 §7.2; we serve one transport per session);
//! - no two sections share an `a=mid` (RFC 5888 §4: it is unique within the
//!   session description);
//! - `a=ice-ufrag` / `a=ice-pwd` at session or media level (RFC 8839 §5.4),
//!   with the lengths RFC 8839 requires;
//! - an `a=fingerprint` with `sha-256` (RFC 8122 §5, RFC 8827 §6.5);
//! - `a=setup:actpass` or `active` (RFC 8842 §5.2; we are the DTLS server).
//!
//! Session-level attributes apply to every section unless a section has its
//! own (OBS/libdatachannel puts ICE and DTLS attributes at session level;
//! browsers repeat them per section). Within a BUNDLE group the attributes of
//! the group's first section ("BUNDLE-tag" section, RFC 8843 §7.2.1) win.

use std::io::Cursor;

use rtc_sdp::description::common::Attribute;
use rtc_sdp::description::session::SessionDescription;

use super::super::cert::parse_sha256_fingerprint;
use super::super::error::WebRtcError;
use super::{Direction, Setup, Track};

/// Longest offer accepted (bytes). Real offers are 2–12 KiB.
pub const MAX_OFFER_LEN: usize = 64 * 1024;

/// One codec of a media section: `a=rtpmap` + `a=fmtp` + `a=rtcp-fb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCodec {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (`H264`, `VP8`, `opus`, `rtx`, ...).
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels (audio), if given.
    pub channels: Option<u16>,
    /// The `a=fmtp` parameter string ("" if none).
    pub fmtp: String,
    /// `a=rtcp-fb` values for this payload type (and for `*`).
    pub rtcp_fb: Vec<String>,
}

impl OfferedCodec {
    /// The value of one `key=value` fmtp parameter (keys compare case-insensitively).
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
        })
    }

    /// `apt=` of an RTX codec (RFC 4588 §8.1).
    pub fn apt(&self) -> Option<u8> {
        self.fmtp_param("apt")?.parse().ok()
    }

    /// True if `a=rtcp-fb` lists `value` (e.g. `nack`, `nack pli`, `ccm fir`).
    pub fn has_feedback(&self, value: &str) -> bool {
        self.rtcp_fb.iter().any(|f| f.eq_ignore_ascii_case(value))
    }
}

/// One `m=` section of the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    /// Position in the offer (the answer keeps the order).
    pub index: usize,
    /// The media type as written (`audio`, `video`, `application`, ...).
    pub media_type: String,
    /// `Some` for audio and video sections.
    pub kind: Option<Track>,
    /// `a=mid` ("" if absent, which only a lone section may do).
    pub mid: String,
    /// Port of the `m=` line (0 = rejected by the offerer, or bundle-only).
    pub port: u16,
    /// Transport protocol, e.g. `UDP/TLS/RTP/SAVPF`.
    pub protocol: String,
    /// The `m=` line's format list, verbatim.
    pub formats: Vec<String>,
    /// Direction (default sendrecv).
    pub direction: Direction,
    /// Codecs in `m=` line order (formats without `a=rtpmap` get the static
    /// RFC 3551 meaning only for 0 and 8, which we never choose).
    pub codecs: Vec<OfferedCodec>,
    /// `a=extmap` entries: (id, URI).
    pub extmaps: Vec<(u8, String)>,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize` present.
    pub rtcp_rsize: bool,
    /// SSRCs from `a=ssrc` lines, in order of first appearance.
    pub ssrcs: Vec<u32>,
    /// `a=ssrc-group:FID primary rtx` pairs.
    pub fid_groups: Vec<(u32, u32)>,
    /// `a=rid` / `a=simulcast` present (simulcast: not supported, ignored).
    pub simulcast: bool,
    /// `a=bundle-only` present.
    pub bundle_only: bool,
}

/// A validated offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `o=` session id, as written.
    pub origin_session_id: u64,
    /// The client's `ice-ufrag`.
    pub ice_ufrag: String,
    /// The client's `ice-pwd`.
    pub ice_pwd: String,
    /// `a=ice-options` tokens (`trickle`, `ice2`, ...).
    pub ice_options: Vec<String>,
    /// The client is ICE-lite too (then nobody would send checks: rejected).
    pub ice_lite: bool,
    /// SHA-256 digest of the client's certificate.
    pub fingerprint: [u8; 32],
    /// The client's `a=setup`.
    pub setup: Setup,
    /// The BUNDLE group's mids (tag first), or the lone section's mid.
    pub bundle: Vec<String>,
    /// All `m=` sections in order.
    pub media: Vec<OfferedMedia>,
    /// `a=candidate` values found anywhere (informational: we are ICE-lite and
    /// learn addresses from the checks).
    pub candidates: Vec<String>,
}

fn attr<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs.iter().find(|a| a.key.eq_ignore_ascii_case(key)).map(|a| a.value.as_deref().unwrap_or("").trim())
}

fn attrs<'a>(attrs: &'a [Attribute], key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    attrs.iter().filter(move |a| a.key.eq_ignore_ascii_case(key)).map(|a| a.value.as_deref().unwrap_or("").trim())
}

fn has(attrs: &[Attribute], key: &str) -> bool {
    attrs.iter().any(|a| a.key.eq_ignore_ascii_case(key))
}

impl Offer {
    /// Parses and validates an offer (see the module docs for the rules).
    pub fn parse(text: &str) -> Result<Offer, WebRtcError> {
        if text.len() > MAX_OFFER_LEN {
            return Err(WebRtcError::bad_offer(format!("offer is {} bytes, more than {MAX_OFFER_LEN}", text.len())));
        }
        if !text.trim_start().starts_with("v=") {
            return Err(WebRtcError::bad_offer("not SDP (must start with v=)"));
        }
        let sd = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
            .map_err(|e| WebRtcError::bad_offer(format!("SDP syntax: {e}")))?;
        if sd.media_descriptions.is_empty() {
            return Err(WebRtcError::bad_offer("no m= sections"));
        }

        let session_attrs = &sd.attributes;
        let mut media = Vec::with_capacity(sd.media_descriptions.len());
        let mut candidates: Vec<String> = Vec::new();
        let mut mids = std::collections::HashSet::new();
        for (index, md) in sd.media_descriptions.iter().enumerate() {
            let m = parse_media(index, md)?;
            if !m.mid.is_empty() && !mids.insert(m.mid.clone()) {
                return Err(WebRtcError::bad_offer(format!("mid '{}' names more than one m= section", m.mid)));
            }
            candidates.extend(attrs(&md.attributes, "candidate").map(str::to_owned));
            media.push(m);
        }

        // BUNDLE (RFC 8843 §7.2).
        let bundle: Vec<String> = attrs(session_attrs, "group")
            .find_map(|g| {
                let mut it = g.split_whitespace();
                it.next().filter(|sem| sem.eq_ignore_ascii_case("BUNDLE")).map(|_| it.map(str::to_owned).collect())
            })
            .unwrap_or_default();
        let live: Vec<&OfferedMedia> =
            media.iter().filter(|m| m.kind.is_some() && (m.port != 0 || m.bundle_only)).collect();
        if live.is_empty() {
            return Err(WebRtcError::bad_offer("no audio or video section"));
        }
        let bundle = if bundle.is_empty() {
            if media.len() > 1 {
                return Err(WebRtcError::bad_offer("several m= sections without a=group:BUNDLE (RFC 8843 required)"));
            }
            vec![media[0].mid.clone()]
        } else {
            for m in &live {
                if !bundle.contains(&m.mid) {
                    return Err(WebRtcError::bad_offer(format!(
                        "m= section mid '{}' is not in the BUNDLE group",
                        m.mid
                    )));
                }
            }
            bundle
        };
        let tag = media
            .iter()
            .find(|m| m.mid == bundle[0])
            .ok_or_else(|| WebRtcError::bad_offer(format!("BUNDLE names unknown mid '{}'", bundle[0])))?
            .index;
        let tag_attrs = &sd.media_descriptions[tag].attributes;
        let lookup = |key: &str| attr(tag_attrs, key).or_else(|| attr(session_attrs, key));

        // ICE credentials (RFC 8839 §5.4).
        let ice_ufrag = lookup("ice-ufrag").ok_or_else(|| WebRtcError::bad_offer("no a=ice-ufrag"))?.to_owned();
        let ice_pwd = lookup("ice-pwd").ok_or_else(|| WebRtcError::bad_offer("no a=ice-pwd"))?.to_owned();
        if !(4..=256).contains(&ice_ufrag.len()) || !ice_ufrag.chars().all(is_ice_char) {
            return Err(WebRtcError::bad_offer("a=ice-ufrag must be 4-256 ice-chars"));
        }
        if !(22..=256).contains(&ice_pwd.len()) || !ice_pwd.chars().all(is_ice_char) {
            return Err(WebRtcError::bad_offer("a=ice-pwd must be 22-256 ice-chars"));
        }
        let ice_options =
            lookup("ice-options").map(|o| o.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        let ice_lite = has(session_attrs, "ice-lite");
        if ice_lite {
            return Err(WebRtcError::unsupported("the offerer is ICE-lite too: nobody would send connectivity checks"));
        }

        // Fingerprint (RFC 8122 §5): media-level lines of the tag section win.
        let mut fps: Vec<&str> = attrs(tag_attrs, "fingerprint").collect();
        if fps.is_empty() {
            fps = attrs(session_attrs, "fingerprint").collect();
        }
        if fps.is_empty() {
            return Err(WebRtcError::bad_offer("no a=fingerprint"));
        }
        let fingerprint = fps
            .iter()
            .find_map(|fp| {
                let (alg, value) = fp.split_once(' ')?;
                alg.eq_ignore_ascii_case("sha-256").then(|| parse_sha256_fingerprint(value)).flatten()
            })
            .ok_or_else(|| WebRtcError::unsupported("no valid a=fingerprint:sha-256"))?;

        // DTLS role (RFC 8842 §5.2). Absent: treat as actpass.
        let setup = match lookup("setup").map(str::to_ascii_lowercase).as_deref() {
            None | Some("actpass") => Setup::ActPass,
            Some("active") => Setup::Active,
            Some("passive") => {
                return Err(WebRtcError::unsupported(
                    "a=setup:passive: the server is always the DTLS server (answer passive)",
                ));
            }
            Some(other) => {
                return Err(WebRtcError::bad_offer(format!("a=setup:{other}")));
            }
        };

        for m in &live {
            if !m.protocol.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF") {
                return Err(WebRtcError::bad_offer(format!(
                    "mid '{}': protocol {} (need UDP/TLS/RTP/SAVPF)",
                    m.mid, m.protocol
                )));
            }
            if !m.rtcp_mux {
                return Err(WebRtcError::bad_offer(format!("mid '{}' has no a=rtcp-mux (RFC 8829 §5.1.3)", m.mid)));
            }
        }

        Ok(Offer {
            origin_session_id: sd.origin.session_id,
            ice_ufrag,
            ice_pwd,
            ice_options,
            ice_lite,
            fingerprint,
            setup,
            bundle,
            media,
            candidates,
        })
    }
}

fn is_ice_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

fn parse_media(index: usize, md: &rtc_sdp::description::media::MediaDescription) -> Result<OfferedMedia, WebRtcError> {
    let a = &md.attributes;
    let media_type = md.media_name.media.clone();
    let kind = match media_type.as_str() {
        "audio" => Some(Track::Audio),
        "video" => Some(Track::Video),
        _ => None,
    };
    let port = u16::try_from(md.media_name.port.value).unwrap_or(0);
    let direction = if has(a, "sendonly") {
        Direction::SendOnly
    } else if has(a, "recvonly") {
        Direction::RecvOnly
    } else if has(a, "inactive") {
        Direction::Inactive
    } else {
        Direction::SendRecv
    };
    let mid = attr(a, "mid").unwrap_or("").to_owned();
    if kind.is_some() && mid.is_empty() && port != 0 {
        // JSEP always writes mids; a lone legacy section gets checked later.
        tracing::debug!(index, "media section without a=mid");
    }

    let mut codecs: Vec<OfferedCodec> = Vec::new();
    for f in &md.media_name.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        if pt > 127 {
            return Err(WebRtcError::bad_offer(format!("payload type {pt} > 127")));
        }
        codecs.push(OfferedCodec {
            payload_type: pt,
            name: String::new(),
            clock_rate: 0,
            channels: None,
            fmtp: String::new(),
            rtcp_fb: Vec::new(),
        });
    }
    let find = |codecs: &mut Vec<OfferedCodec>, pt: u8| codecs.iter().position(|c| c.payload_type == pt);
    for v in attrs(a, "rtpmap") {
        // <pt> <name>/<clock>[/<channels>]
        let Some((pt, rest)) = v.split_once(' ') else {
            continue;
        };
        let Ok(pt) = pt.trim().parse::<u8>() else {
            continue;
        };
        let Some(i) = find(&mut codecs, pt) else {
            continue;
        };
        let mut parts = rest.trim().split('/');
        codecs[i].name = parts.next().unwrap_or("").to_owned();
        codecs[i].clock_rate = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        codecs[i].channels = parts.next().and_then(|c| c.parse().ok());
    }
    for v in attrs(a, "fmtp") {
        let Some((pt, rest)) = v.split_once(' ') else {
            continue;
        };
        let Ok(pt) = pt.trim().parse::<u8>() else {
            continue;
        };
        let Some(i) = find(&mut codecs, pt) else {
            continue;
        };
        codecs[i].fmtp = rest.trim().to_owned();
    }
    for v in attrs(a, "rtcp-fb") {
        let Some((pt, rest)) = v.split_once(' ') else {
            continue;
        };
        let rest = rest.trim().to_owned();
        if pt == "*" {
            for c in codecs.iter_mut() {
                c.rtcp_fb.push(rest.clone());
            }
        } else if let Ok(pt) = pt.trim().parse::<u8>()
            && let Some(i) = find(&mut codecs, pt)
        {
            codecs[i].rtcp_fb.push(rest);
        }
    }

    let mut extmaps = Vec::new();
    for v in attrs(a, "extmap") {
        // <id>[/<direction>] <uri> [<attributes>]
        let mut it = v.split_whitespace();
        let (Some(id), Some(uri)) = (it.next(), it.next()) else {
            continue;
        };
        let id = id.split('/').next().unwrap_or("");
        if let Ok(id) = id.parse::<u8>()
            && (1..=255).contains(&id)
        {
            extmaps.push((id, uri.to_owned()));
        }
    }

    let mut ssrcs = Vec::new();
    for v in attrs(a, "ssrc") {
        let id = v.split_whitespace().next().and_then(|s| s.parse::<u32>().ok());
        if let Some(id) = id
            && !ssrcs.contains(&id)
        {
            ssrcs.push(id);
        }
    }
    let mut fid_groups = Vec::new();
    for v in attrs(a, "ssrc-group") {
        let mut it = v.split_whitespace();
        if it.next().is_some_and(|s| s.eq_ignore_ascii_case("FID"))
            && let (Some(p), Some(r)) = (it.next(), it.next())
            && let (Ok(p), Ok(r)) = (p.parse::<u32>(), r.parse::<u32>())
        {
            fid_groups.push((p, r));
        }
    }

    Ok(OfferedMedia {
        index,
        media_type,
        kind,
        mid,
        port,
        protocol: md.media_name.protos.join("/"),
        formats: md.media_name.formats.clone(),
        direction,
        codecs,
        extmaps,
        rtcp_mux: has(a, "rtcp-mux"),
        rtcp_rsize: has(a, "rtcp-rsize"),
        ssrcs,
        fid_groups,
        simulcast: has(a, "simulcast") || has(a, "rid"),
        bundle_only: has(a, "bundle-only"),
    })
}
