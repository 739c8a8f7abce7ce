use super::{AppError, ErrorKind};
use engine::proto::webrtc::WebRtcError;
use engine::serve::rtc::RtcError;

/// Each refusal gets its status from the engine's typed reason, and the client
/// reads the reason's text.
#[test]
fn webrtc_refusals_map_by_kind_not_by_text() {
    let cases = [
        (RtcError::Offer(WebRtcError::BadOffer("no BUNDLE".into())), ErrorKind::BadRequest, "bad SDP offer: no BUNDLE"),
        (RtcError::Offer(WebRtcError::Unsupported("no common codec".into())), ErrorKind::BadRequest, "unsupported"),
        (RtcError::NothingAccepted, ErrorKind::BadRequest, "bad SDP offer: no audio or video"),
        (RtcError::AlreadyPublishing, ErrorKind::Conflict, "already has a live publisher"),
        (RtcError::NotLive, ErrorKind::NotFound, "not live"),
        (RtcError::Unavailable("engine busy".into()), ErrorKind::Unavailable, "engine busy"),
        (RtcError::TooMany("slow down".into()), ErrorKind::TooManyRequests, "slow down"),
        (RtcError::Session(WebRtcError::Internal("no certificate".into())), ErrorKind::Internal, "setup failed"),
        // The same text with another kind answers by the kind.
        (RtcError::Unavailable("bad SDP offer: not really".into()), ErrorKind::Unavailable, "bad SDP"),
    ];
    for (e, kind, text) in cases {
        let a = AppError::from(e.clone());
        assert_eq!(a.kind, kind, "{e:?}");
        assert!(a.message.contains(text), "{e:?}: {}", a.message);
    }
}

#[test]
fn log_safe_escapes_control_characters() {
    assert_eq!(super::log_safe(&"a\nFAKE\r\x1b[31m\0b"), "a\\nFAKE\\r\\u{1b}[31m\\0b");
    assert_eq!(super::log_safe(&"plain text é"), "plain text é");
}
