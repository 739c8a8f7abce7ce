use super::*;

#[test]
fn tokens_go_at_the_end_of_the_query() {
    assert_eq!(with_token("http://h/flv/a.flv", "T"), "http://h/flv/a.flv?token=T");
    assert_eq!(with_token("http://h/x?a=1", "T"), "http://h/x?a=1&token=T");
}

#[test]
fn the_key_is_not_the_relay_token_nor_the_secret() {
    let k = format!("{:?}", play_key("s3cret"));
    assert!(!k.contains("s3cret"));
    assert_ne!(play_key("a"), play_key("b"));
}
