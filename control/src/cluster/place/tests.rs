use super::*;

fn node(id: &str, players: u64, streams: u64) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        instance: "i".into(),
        version: "0".into(),
        started_at: 0,
        seen_at: 0,
        api: format!("http://{id}:8080"),
        rtmp: format!("rtmp://{id}:1935/live"),
        media: format!("http://{id}:8081"),
        relay: format!("http://{id}:8081"),
        webrtc_ports: None,
        webrtc_candidates: vec![],
        capacity: Capacity::default(),
        load: Load { streams, players: [("rtmp".to_string(), players)].into(), ..Load::default() },
        streams: vec![],
        viewers: BTreeMap::new(),
        draining: false,
    }
}

#[test]
fn round_robin_cycles_in_id_order() {
    let all = [node("c", 0, 0), node("a", 0, 0), node("b", 0, 0)];
    let nodes = eligible(&all, &[]);
    let picks: Vec<&str> = (1..=6).map(|i| pick(LoadBalance::RoundRobin, &nodes, i, 0).unwrap().id.as_str()).collect();
    assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn least_load_prefers_the_idle_node_and_shares_ties() {
    let all = [node("a", 5, 0), node("b", 0, 1), node("c", 0, 0)];
    let nodes = eligible(&all, &[]);
    for i in 1..5 {
        assert_eq!(pick(LoadBalance::LeastLoad, &nodes, i, 0).unwrap().id, "c");
    }
    // A stream weighs STREAM_WEIGHT players: b (10) is busier than a (5).
    let all = [node("a", 5, 0), node("b", 0, 1)];
    assert_eq!(pick(LoadBalance::LeastLoad, &eligible(&all, &[]), 1, 0).unwrap().id, "a");
    let all = [node("a", 0, 0), node("b", 0, 0)];
    let nodes = eligible(&all, &[]);
    let ids: Vec<&str> = (1..=4).map(|i| pick(LoadBalance::LeastLoad, &nodes, i, 0).unwrap().id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "a", "b"]);
}

#[test]
fn draining_and_unlisted_nodes_are_not_picked() {
    let mut all = vec![node("a", 0, 0), node("b", 0, 0), node("c", 0, 0)];
    all[0].draining = true;
    let nodes = eligible(&all, &[]);
    assert_eq!(nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    // Static peers by id or by the API's host:port.
    let peers = vec!["c:8080".to_string(), "a".to_string()];
    let nodes = eligible(&all, &peers);
    assert_eq!(nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["c"]);
    assert!(pick(LoadBalance::Random, &[], 1, 7).is_none());
}

#[test]
fn random_stays_in_range_and_ipv6_hosts_get_brackets() {
    let all = [node("a", 0, 0), node("b", 0, 0)];
    let nodes = eligible(&all, &[]);
    assert_eq!(pick(LoadBalance::Random, &nodes, 0, 3).unwrap().id, "b");
    assert_eq!(url_host("::1"), "[::1]");
    assert_eq!(url_host("127.0.0.2"), "127.0.0.2");
}

#[test]
fn the_summary_adds_every_node_up_and_names_no_address() {
    let mut all = vec![node("a", 5, 1), node("b", 3, 0)];
    all[1].load.players.insert("hls".into(), 2);
    all[1].load.egress_mbps = 12.5;
    let s = summary("a", &all);
    assert_eq!(s["nodes"], 2);
    assert_eq!(s["streams"], 1);
    assert_eq!(s["players"], 10);
    assert_eq!(s["players_by_protocol"]["rtmp"], 8);
    assert_eq!(s["players_by_protocol"]["hls"], 2);
    assert_eq!(s["egress_mbps"], 12.5);
    assert_eq!(s["per_node"][1]["players"], 5);
    let text = s.to_string();
    assert!(!text.contains("8080") && !text.contains("://"), "{text}");
}
