use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_str(text: &str, e: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).unwrap();
    Config::load(Some(&p), &env(e))
}

#[test]
fn defaults_are_embedded() {
    let c = load_str("", &[]).unwrap();
    assert!(!c.database.is_postgres());
    assert!(!c.redis.is_redis());
    assert_eq!(c.server.port, 8080);
    assert_eq!(c.rtmp.apps, vec!["live"]);
    assert_eq!(c.hls.fragment_secs, 3);
}

#[test]
fn legacy_env_and_double_underscore() {
    let c = load_str(
        "[server]\nport = 9000\n",
        &[
            ("DATABASE_HOST", "db"),
            ("DB_MAX_OPEN_CONNS", "7"),
            ("JWT_EXPIRE", "2"),
            ("SFU_CLUSTER_NODES", "a,b"),
            ("MICROVIBE__SERVER__PORT", "9100"),
            ("SFU_ENABLED", "false"),
        ],
    )
    .unwrap();
    assert_eq!(c.database.host, "db");
    assert_eq!(c.database.max_open_conns, 7);
    assert_eq!(c.jwt.expire_hours, 2);
    assert_eq!(c.sfu.cluster_nodes, vec!["a", "b"]);
    assert!(!c.sfu.enabled);
    assert_eq!(c.server.port, 9100, "MICROVIBE__ wins over the file");
}

#[test]
fn urls() {
    let c = load_str(
        "",
        &[("DATABASE_URL", "postgres://bob:p%40ss@h:5433/app?sslmode=require"), ("REDIS_URL", "redis://:pw@r:6380/2")],
    )
    .unwrap();
    assert_eq!((c.database.host.as_str(), c.database.port, c.database.user.as_str()), ("h", 5433, "bob"));
    assert_eq!(c.database.password, "p@ss");
    assert_eq!(c.database.dbname, "app");
    assert_eq!(c.database.sslmode, "require");
    assert_eq!((c.redis.host.as_str(), c.redis.port, c.redis.db), ("r", 6380, 2));
    assert_eq!(c.redis.password, "pw");
}

#[test]
fn errors_name_the_key() {
    let e = load_str("[server]\nprot = 1\n", &[]).unwrap_err().to_string();
    assert!(e.contains("prot"), "{e}");
    let e = load_str("[server]\nport = \"x\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("port"), "{e}");
    let e = load_str("", &[("SERVER_PORT", "eighty")]).unwrap_err().to_string();
    assert!(e.contains("SERVER_PORT") && e.contains("server.port"), "{e}");
    let e = load_str("", &[("MICROVIBE__SERVER__NOPE", "1")]).unwrap_err().to_string();
    assert!(e.contains("server.nope"), "{e}");
}

#[test]
fn release_mode_needs_a_real_secret() {
    let e = load_str("[server]\nmode = \"release\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("jwt.secret") && e.contains("JWT_SECRET"), "{e}");
    let e = load_str("[server]\nmode = \"release\"\n", &[("JWT_SECRET", "short")]).unwrap_err().to_string();
    assert!(e.contains("32 bytes"), "{e}");
    let s = "x".repeat(32);
    load_str("[server]\nmode = \"release\"\n", &[("JWT_SECRET", &s)]).unwrap();
}

/// Every `section.key` of a config table.
fn keys(t: &toml::Table) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (section, v) in t {
        match v {
            toml::Value::Table(inner) => out.extend(inner.keys().map(|k| format!("{section}.{k}"))),
            _ => {
                out.insert(section.clone());
            }
        }
    }
    out
}

/// `configs/microvibe.toml` lists every key the binary accepts, no other key, and
/// the built-in default of each (so reading the file tells what an absent key
/// means). No exceptions today: if one is ever needed, list it here with the reason.
#[test]
fn shipped_config_lists_every_key_with_its_default() {
    const EXCEPTIONS: &[&str] = &[];
    let shipped: toml::Table =
        toml::from_str(include_str!("../../../configs/microvibe.toml")).expect("configs/microvibe.toml parses");
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    let (have, want) = (keys(&shipped), keys(&defaults));
    let missing: Vec<_> = want.difference(&have).filter(|k| !EXCEPTIONS.contains(&k.as_str())).collect();
    let unknown: Vec<_> = have.difference(&want).collect();
    assert!(missing.is_empty(), "keys the binary accepts but configs/microvibe.toml does not list: {missing:?}");
    assert!(unknown.is_empty(), "keys in configs/microvibe.toml the binary does not know: {unknown:?}");
    for k in &have {
        let (section, key) = k.split_once('.').unwrap();
        assert_eq!(shipped[section][key], defaults[section][key], "configs/microvibe.toml: {k} is not the default");
    }
    // And it loads as it is.
    Config::deserialize(toml::Value::Table(shipped)).unwrap().validate().unwrap();
}

#[test]
fn source_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "").unwrap();
    let (_, src) =
        Config::load_with_source(Some(&p), &env(&[("JWT_SECRET", "s3cr3t-value"), ("MICROVIBE__SERVER__PORT", "1")]))
            .unwrap();
    assert_eq!(src.file.as_deref(), Some(p.as_path()));
    assert_eq!(src.env_vars, vec!["JWT_SECRET".to_string(), "MICROVIBE__SERVER__PORT".to_string()]);
}

#[test]
fn jwt_issuer_data_dir_and_debug_secrets() {
    let c = load_str("", &[]).unwrap();
    assert_eq!((c.jwt.issuer.as_str(), c.server.data_dir.as_str()), ("microvibe", "data"));
    let c = load_str("[jwt]\nissuer = \"live.example.com\"\n", &[]).unwrap();
    assert_eq!(c.jwt.issuer, "live.example.com");
    let e = load_str("[jwt]\nissuer = \" \"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("jwt.issuer"), "{e}");
    let e = load_str("[server]\ndata_dir = \"\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("server.data_dir"), "{e}");
    // Debug mode: an empty secret is accepted (the server generates one); release is not.
    load_str("[jwt]\nsecret = \"\"\n", &[]).unwrap();
    let e = load_str("[server]\nmode = \"release\"\n[jwt]\nsecret = \"\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("jwt.secret") && e.contains("32 bytes"), "{e}");
}

#[test]
fn webrtc_ports_must_fit() {
    let e = load_str("[webrtc]\nudp_port_base = 65535\n[engine]\nshards = 2\n", &[]).unwrap_err().to_string();
    assert!(e.contains("webrtc.udp_port_base") && e.contains("65536"), "{e}");
    load_str("[webrtc]\nudp_port_base = 65534\n[engine]\nshards = 2\n", &[]).unwrap();
    // Not checked when WebRTC is off.
    load_str("[webrtc]\nudp_port_base = 65535\n[engine]\nshards = 2\n[sfu]\nenabled = false\n", &[]).unwrap();
}

#[test]
fn redaction() {
    let c = load_str("", &[("JWT_SECRET", "topsecretvalue"), ("DATABASE_PASSWORD", "dbpw")]).unwrap();
    let t = c.redacted_toml();
    assert!(!t.contains("topsecretvalue") && !t.contains("dbpw"), "{t}");
    assert!(t.contains("***"));
}

#[test]
fn hooks_validate_urls_secrets_and_events_and_redact_secrets() {
    let ok = "[hooks]\non_publish = \"http://127.0.0.1:9/p\"\nwebhook_url = \"https://h.example/x\"\nwebhook_secret = \"0123456789abcdef-secret\"\n[[hooks.webhooks]]\nurl = \"http://h2/x\"\nsecret = \"another-secret-0123456789\"\nevents = [\"room.live\"]\n";
    let c = load_str(ok, &[]).unwrap();
    assert_eq!(c.hooks.endpoints().len(), 2);
    let t = c.redacted_toml();
    assert!(!t.contains("0123456789abcdef-secret") && !t.contains("another-secret-0123456789"), "{t}");
    let e = load_str("[hooks]\non_play = \"ftp://x/y\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("hooks.on_play") && e.contains("http"), "{e}");
    let e = load_str("[hooks]\non_done = \"not a url\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("hooks.on_done"), "{e}");
    let e = load_str("[hooks]\ntimeout_ms = 0\n", &[]).unwrap_err().to_string();
    assert!(e.contains("hooks.timeout_ms"), "{e}");
    let e = load_str("[[hooks.webhooks]]\nurl = \"http://h/x\"\nsecret = \"short\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("hooks.webhooks[0].secret"), "{e}");
    let e = load_str(
        "[[hooks.webhooks]]\nurl = \"http://h/x\"\nsecret = \"0123456789abcdef\"\nevents = [\"room.liv\"]\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("hooks.webhooks[0].events") && e.contains("room.liv"), "{e}");
    // From the environment: the single-endpoint keys.
    let c = load_str(
        "",
        &[
            ("MICROVIBE__HOOKS__WEBHOOK_URL", "http://127.0.0.1:1/w"),
            ("MICROVIBE__HOOKS__WEBHOOK_SECRET", "env-secret-0123456789"),
            ("MICROVIBE__HOOKS__WEBHOOK_EVENTS", "room.live, room.ended"),
            ("MICROVIBE__HOOKS__ON_PUBLISH", "http://127.0.0.1:1/p"),
        ],
    )
    .unwrap();
    assert_eq!(c.hooks.endpoints()[0].events, ["room.live", "room.ended"]);
    assert!(!c.redacted_toml().contains("env-secret-0123456789"));
}
