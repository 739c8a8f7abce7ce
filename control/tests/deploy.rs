//! The deployment files are checked offline (no container engine here): the
//! Kubernetes manifests against the API schemas (`kubernetes-validate --strict`),
//! and every node of deploy/cluster/docker-compose.yml and of the Kubernetes
//! StatefulSet is run through `microvibe config` with its environment, so a wrong
//! key, a bad value or a node the cluster would refuse fails here. The compose
//! nodes' ids, published ports, advertised URLs and the nginx upstreams must agree.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The repo's venv Python (scripts/setup installs PyYAML and kubernetes-validate there).
fn venv_bin(name: &str) -> PathBuf {
    let bin = std::env::var_os("AIORTC_PYTHON")
        .map(|p| PathBuf::from(p).parent().unwrap().to_path_buf())
        .unwrap_or_else(|| repo().join(".venv/bin"));
    let path = bin.join(name);
    assert!(path.exists(), "{path:?} is missing: run scripts/setup (it installs the test tools into .venv)");
    path
}

/// The YAML documents of `file` as JSON values.
fn yaml(file: &str) -> Vec<Value> {
    let out = Command::new(venv_bin("python"))
        .args(["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(repo().join(file))
        .output()
        .unwrap();
    assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Compose's `${VAR:-default}` / `${VAR:?message}` / `${VAR}` with `given` values.
fn interpolate(value: &str, given: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed ${") + start;
        let inner = &rest[start + 2..end];
        let (name, default) = match inner.find(":-").or_else(|| inner.find(":?")) {
            Some(i) if inner[i..].starts_with(":-") => (&inner[..i], Some(&inner[i + 2..])),
            Some(i) => (&inner[..i], None),
            None => (inner, Some("")),
        };
        match (given.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => panic!("{name} is required by the compose file and not given"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `microvibe config` with exactly `env` (and PATH); its status and output.
fn microvibe_config(env: &BTreeMap<String, String>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microvibe"))
        .arg("config")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

fn compose() -> Value {
    yaml("deploy/cluster/docker-compose.yml").remove(0)
}

/// The node services of the cluster compose file (those in cluster mode).
fn compose_nodes(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["environment"]["SFU_MODE"] == "cluster")
        .map(|(name, s)| (name.clone(), s.clone()))
        .collect()
}

fn node_env(service: &Value) -> BTreeMap<String, String> {
    let given: BTreeMap<&str, &str> = [
        ("JWT_SECRET", SECRET),
        ("DATABASE_PASSWORD", "pw"),
        ("ADMIN_TOKEN", "admin-token-for-the-deploy-test-0123456789"),
        ("PUBLIC_HOST", "live.example.org"),
        ("PUBLIC_IP", "198.51.100.7"),
    ]
    .into();
    let mut env = BTreeMap::new();
    for (k, v) in service["environment"].as_object().unwrap() {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.insert(k.clone(), interpolate(&v, &given));
    }
    env
}

#[test]
fn kubernetes_manifests_pass_strict_schema_validation() {
    let files: Vec<PathBuf> =
        ["config.yaml", "external.yaml", "nodes.yaml"].iter().map(|f| repo().join("deploy/k8s").join(f)).collect();
    let out = Command::new(venv_bin("kubernetes-validate")).arg("--strict").args(&files).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    // Every resource was checked (the tool passes files it cannot read as warnings).
    assert_eq!(text.matches(" passed for resource ").count(), 7, "{text}");
}

#[test]
fn every_node_config_is_accepted_as_a_cluster_node() {
    let compose = compose();
    let nodes = compose_nodes(&compose);
    assert!(nodes.len() >= 3, "{nodes:?}");
    for (name, service) in &nodes {
        let env = node_env(service);
        let (ok, text) = microvibe_config(&env);
        assert!(ok, "{name}: {text}");
        assert!(text.contains(&format!("node_id = \"{name}\"")), "{name}: {text}");
        assert!(text.contains("mode = \"cluster\""), "{name}: {text}");
        assert!(!text.contains(SECRET), "{name}: the config print shows the secret");
    }
    // The StatefulSet's pods: the ConfigMap, the secrets README.md tells to create,
    // and the per-pod values Kubernetes fills in.
    let config = yaml("deploy/k8s/config.yaml").remove(0);
    let mut env: BTreeMap<String, String> =
        config["data"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    env.insert("JWT_SECRET".into(), SECRET.into());
    env.insert("DATABASE_PASSWORD".into(), "pw".into());
    let set = yaml("deploy/k8s/nodes.yaml").remove(0);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let fields = [("POD_NAME", "microvibe-1"), ("HOST_IP", "10.0.0.12")];
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match e["value"].as_str() {
            Some(v) => fields.iter().fold(v.to_owned(), |v, (k, x)| v.replace(&format!("$({k})"), x)),
            None => fields.iter().find(|(k, _)| *k == name).unwrap().1.to_owned(),
        };
        env.insert(name.into(), value);
    }
    let (ok, text) = microvibe_config(&env);
    assert!(ok, "k8s pod: {text}");
    assert!(text.contains("node_id = \"microvibe-1\"") && text.contains("advertise_host = \"10.0.0.12\""), "{text}");
}

#[test]
fn compose_nodes_have_their_own_ids_ports_and_upstreams() {
    let compose = compose();
    let nodes = compose_nodes(&compose);
    let nginx = std::fs::read_to_string(repo().join("deploy/cluster/nginx.conf")).unwrap();
    let (mut ids, mut host_ports) = (BTreeSet::new(), BTreeSet::new());
    for (name, service) in &nodes {
        let env = node_env(service);
        let id = &env["MICROVIBE__CLUSTER__NODE_ID"];
        assert_eq!(id, name, "a node's id is its service name (peers reach it by that name)");
        assert!(ids.insert(id.clone()), "two nodes are {id}");
        // Published host port of each container port.
        let mut published = BTreeMap::new();
        for p in service["ports"].as_array().unwrap() {
            let p = p.as_str().unwrap();
            let (host, container) = p.trim_end_matches("/udp").split_once(':').unwrap();
            assert!(host_ports.insert(p.ends_with("/udp").to_string() + host), "{name}: {host} published twice");
            published.insert(container.to_owned(), host.to_owned());
        }
        let port_of = |url: &str| url.rsplit(':').next().unwrap().split('/').next().unwrap().to_owned();
        assert_eq!(published["8080"], port_of(&env["MICROVIBE__CLUSTER__API_URL"]), "{name}");
        assert_eq!(published["1935"], port_of(&env["MICROVIBE__CLUSTER__RTMP_URL"]), "{name}");
        assert_eq!(published["8081"], port_of(&env["MICROVIBE__CLUSTER__MEDIA_URL"]), "{name}");
        assert_eq!(env["MICROVIBE__CLUSTER__RELAY_URL"], format!("http://{name}:8081"), "{name}");
        // WebRTC: the UDP range starts at the node's port base, published as it is.
        let base = &env["MICROVIBE__WEBRTC__UDP_PORT_BASE"];
        let (udp_host, udp_container) = service["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.strip_suffix("/udp")?.split_once(':'))
            .next()
            .unwrap();
        assert_eq!(udp_host, udp_container, "{name}: ICE candidates carry the container's port");
        assert!(udp_host.starts_with(&format!("{base}-")), "{name}: {udp_host} vs base {base}");
        for upstream_port in ["8080", "1935"] {
            assert!(
                nginx.contains(&format!("server {name}:{upstream_port} ")),
                "nginx.conf lacks {name}:{upstream_port}"
            );
        }
    }
    // Nothing in nginx.conf points at a node that is not there.
    for line in nginx.lines().map(str::trim).filter(|l| l.starts_with("server node-")) {
        let host = line.trim_start_matches("server ").split(':').next().unwrap();
        assert!(ids.contains(host), "nginx.conf names {host}, which is not a node service");
    }
}
