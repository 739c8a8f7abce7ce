use super::*;

#[test]
fn renders_rfc_8216_playlist() {
    let header = PlaylistHeader { target_duration_secs: 4, media_sequence: 7, discontinuity_sequence: 0, ended: false };
    let segs = [
        PlaylistSegment { seq: 7, duration_ms: 3000, discontinuity: false },
        PlaylistSegment { seq: 8, duration_ms: 3466, discontinuity: true },
    ];
    assert_eq!(
        render_media_playlist(&header, segs, "cam1/"),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
         #EXTINF:3.000,\ncam1/7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:3.466,\ncam1/8.ts\n"
    );
    let header = PlaylistHeader { discontinuity_sequence: 2, ended: true, ..header };
    let text = render_media_playlist(&header, [], "");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"));
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
}

#[test]
fn target_duration_rounds_up() {
    assert_eq!(target_duration_secs(3000), 3);
    assert_eq!(target_duration_secs(3001), 4);
    assert_eq!(target_duration_secs(0), 1);
}
