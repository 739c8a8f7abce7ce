use super::*;

fn client() -> HookClient {
    HookClient {
        app: "live".into(),
        name: "sk_abc".into(),
        addr: "127.0.0.1".into(),
        client: ClientInfo {
            id: 7,
            flashver: "FMLE/3.0 (compatible; FMSc/1.0)".into(),
            swfurl: String::new(),
            tcurl: "rtmp://127.0.0.1:1935/live".into(),
            pageurl: String::new(),
            args: "token=t%20x&call=play&name=evil".into(),
        },
    }
}

#[test]
fn form_has_nginx_rtmp_fields_and_the_clients_args() {
    let body = form(Call::Publish, &client(), &[]);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("call"), ["publish"]);
    assert_eq!(get("app"), ["live"]);
    assert_eq!(get("name"), ["sk_abc"]);
    assert_eq!(get("addr"), ["127.0.0.1"]);
    assert_eq!(get("clientid"), ["7"]);
    assert_eq!(get("flashver"), ["FMLE/3.0 (compatible; FMSc/1.0)"]);
    assert_eq!(get("tcurl"), ["rtmp://127.0.0.1:1935/live"]);
    assert_eq!(get("type"), ["live"]);
    assert_eq!(get("token"), ["t x"]);
    // A client's args never replace nginx-rtmp's own fields.
    assert_eq!(get("swfurl"), [""]);
    assert_eq!(get("pageurl"), [""]);
    let body = form(Call::RecordDone, &client(), &[("path", "/rec/a b.flv")]);
    assert!(body.starts_with("call=record_done&"), "{body}");
    assert!(body.contains("&path=%2Frec%2Fa+b.flv"), "{body}");
}

#[test]
fn location_names_the_key_in_its_last_segment() {
    assert_eq!(location_key("newkey").as_deref(), Some("newkey"));
    assert_eq!(location_key("/live/newkey").as_deref(), Some("newkey"));
    assert_eq!(location_key("rtmp://host:1935/live/newkey?x=1#f").as_deref(), Some("newkey"));
    assert_eq!(location_key("http://h/a/new%2Dkey+1").as_deref(), Some("new-key+1"));
    assert_eq!(location_key(""), None);
    assert_eq!(location_key("/live/"), None);
    assert_eq!(location_key("/live/a%0Ab"), None);
    assert_eq!(location_key(&"k".repeat(300)), None);
}

#[test]
fn rate_log_allows_one_line_per_interval() {
    let r = RateLog::default();
    assert_eq!(r.allow(Duration::from_secs(60)), Some(0));
    assert_eq!(r.allow(Duration::from_secs(60)), None);
    assert_eq!(r.allow(Duration::from_secs(60)), None);
    assert_eq!(r.allow(Duration::ZERO), Some(2));
}

#[tokio::test]
async fn no_hook_configured_allows_and_sends_nothing() {
    let h = Arc::new(Hooks::off(Arc::new(Metrics::new())));
    assert_eq!(h.on_publish(&client()).await, Ok(None));
    assert_eq!(h.on_play(&client()).await, Ok(()));
    h.publish_ended(1, "live", "s");
    h.record_done("live", "s", "/x");
    assert!(!h.has_on_play() && !h.has_on_publish());
}

#[tokio::test]
async fn unreachable_on_publish_denies() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = Config::default();
    cfg.hooks.on_publish = format!("http://127.0.0.1:{port}/on_publish");
    cfg.hooks.on_play = format!("http://127.0.0.1:{port}/on_play");
    let metrics = Arc::new(Metrics::new());
    let h = Hooks::new(&cfg, metrics.clone());
    assert!(h.on_publish(&client()).await.is_err());
    assert!(h.on_play(&client()).await.is_err());
    let text = metrics.render();
    assert!(text.contains(r#"microvibe_hook_calls_total{call="publish",result="error"} 1"#), "{text}");
}
