//! `deploy/kubernetes/`: every Sluice config embedded in a ConfigMap passes the real
//! `sluice check` without advice, and the port-per-broker overlay's Service and container ports
//! are exactly the config's bootstrap port and broker range.
//!
//! No YAML parser: the manifests are read as text, the way an operator's `grep` would.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_tests::certs::temp_dir;

pub(crate) const KUBERNETES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");
const CERTS_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/certs/make.sh");

/// Every file under `dir` (recursively) whose name ends in `.yaml`, sorted.
pub(crate) fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "yaml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The literal block under `sluice.toml: |`, de-indented by the indentation of its first
/// non-blank line; it ends at the first non-blank line indented less. `None` without one.
pub(crate) fn embedded_config(yaml: &str) -> Option<String> {
    let mut lines = yaml.lines();
    let key = lines
        .by_ref()
        .position(|line| line.trim() == "sluice.toml: |")?;
    let key_indent = yaml.lines().nth(key)?.len() - yaml.lines().nth(key)?.trim_start().len();
    let mut indent = None;
    let mut text = String::new();
    for line in lines {
        if line.trim().is_empty() {
            text.push('\n');
            continue;
        }
        let this = line.len() - line.trim_start().len();
        let block = *indent.get_or_insert(this);
        if this < block || this <= key_indent {
            break;
        }
        text.push_str(&line[block..]);
        text.push('\n');
    }
    Some(text)
}

/// Every ConfigMap under deploy/kubernetes with its embedded config.
fn embedded_configs() -> Vec<(PathBuf, String)> {
    yaml_files(Path::new(KUBERNETES))
        .into_iter()
        .filter_map(|path| {
            let yaml = std::fs::read_to_string(&path).unwrap();
            let config = embedded_config(&yaml);
            if yaml.contains("kind: ConfigMap") {
                assert!(config.is_some(), "{}: no `sluice.toml: |`", path.display());
            }
            config.map(|config| (path, config))
        })
        .collect()
}

/// Certificates made by the shipped recipe, for the paths the SNI overlay mounts its Secret at.
fn certificates() -> PathBuf {
    let dir = temp_dir("kubernetes-certs");
    let out = Command::new("sh")
        .arg(CERTS_RECIPE)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "examples/certs/make.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn the_extractor_takes_the_block_and_only_the_block() {
    let yaml = "data:\n  sluice.toml: |\n    [a]\n\n      b = 1\n    c = 2\nkind: ConfigMap\n";
    assert_eq!(
        embedded_config(yaml).unwrap(),
        "[a]\n\n  b = 1\nc = 2\n",
        "{yaml}"
    );
    assert_eq!(embedded_config("data:\n  other: |\n    x\n"), None);
}

#[test]
fn every_configmap_config_passes_sluice_check_without_warnings() {
    let configs = embedded_configs();
    let overlays: Vec<String> = configs
        .iter()
        .map(|(path, _)| path.strip_prefix(KUBERNETES).unwrap().display().to_string())
        .collect();
    for expected in [
        "overlays/kafka-port-per-broker/configmap.yaml",
        "overlays/kafka-sni/configmap.yaml",
        "overlays/tcp/configmap.yaml",
    ] {
        assert!(
            overlays.iter().any(|found| found == expected),
            "{expected} not in {overlays:?}"
        );
    }
    let certs = certificates();
    let dir = temp_dir("kubernetes-configs");
    for (path, config) in configs {
        // The SNI overlay's certificate is the Secret mounted at /etc/sluice-tls.
        let config = config
            .replace(
                "/etc/sluice-tls/tls.crt",
                certs.join("server-chain.pem").to_str().unwrap(),
            )
            .replace(
                "/etc/sluice-tls/tls.key",
                certs.join("server-key.pem").to_str().unwrap(),
            );
        assert!(!config.contains("/etc/sluice-tls"), "{}", path.display());
        let file = dir.join(
            path.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
                + ".toml",
        );
        std::fs::write(&file, &config).unwrap();
        crate::check::assert_checks_clean(&file, &path);
    }
}

/// The number after `key = ` in a TOML text (the first such line, comments ignored).
fn toml_number(toml: &str, key: &str) -> u16 {
    toml.lines()
        .find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == key).then(|| value.split('#').next().unwrap().trim().to_owned())
        })
        .unwrap()
        .parse()
        .unwrap()
}

/// The port of the first `bind = "HOST:PORT"` line.
fn bind_port(toml: &str) -> u16 {
    let line = toml
        .lines()
        .find(|line| line.trim_start().starts_with("bind ="))
        .unwrap();
    let address = line.split('"').nth(1).unwrap();
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// Every number after `key: ` in a YAML text, in flow (`{key: N}`) or block style.
fn yaml_numbers(yaml: &str, key: &str) -> Vec<u16> {
    let needle = format!("{key}: ");
    let mut numbers = Vec::new();
    for line in yaml
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
    {
        for (at, _) in line.match_indices(&needle) {
            // `port:` must not match inside `containerPort:` or `endPort:`.
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let rest = &line[at + needle.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                numbers.push(digits.parse().unwrap());
            }
        }
    }
    numbers
}

#[test]
fn port_per_broker_ports_match_the_bootstrap_and_broker_range() {
    let overlay = Path::new(KUBERNETES).join("overlays/kafka-port-per-broker");
    let read = |name: &str| std::fs::read_to_string(overlay.join(name)).unwrap();
    let config = embedded_config(&read("configmap.yaml")).unwrap();
    let bootstrap = bind_port(&config);
    let start = toml_number(&config, "broker_port_start");
    let count = toml_number(&config, "max_brokers");
    let admin = config.split("[admin]").nth(1).map(bind_port).unwrap();
    let last = start + count - 1;
    let mut proxy_ports: Vec<u16> = std::iter::once(bootstrap).chain(start..=last).collect();
    proxy_ports.sort_unstable();

    // The Service: the proxy ports, each forwarded to the same port, and the admin port.
    let service = read("service.yaml");
    let mut ports = yaml_numbers(&service, "port");
    ports.sort_unstable();
    let mut expected = proxy_ports.clone();
    expected.push(admin);
    expected.sort_unstable();
    assert_eq!(ports, expected, "service.yaml's ports");
    let mut targets = yaml_numbers(&service, "targetPort");
    targets.sort_unstable();
    assert_eq!(targets, proxy_ports, "service.yaml's numeric targetPorts");

    // The containerPorts the overlay adds, and the NetworkPolicy range it opens.
    let kustomization = read("kustomization.yaml");
    let mut container = yaml_numbers(&kustomization, "containerPort");
    container.sort_unstable();
    assert_eq!(
        container, proxy_ports,
        "kustomization.yaml's containerPorts"
    );
    let mut policy = yaml_numbers(&kustomization, "port");
    policy.sort_unstable();
    assert_eq!(policy, vec![bootstrap, start], "the NetworkPolicy's ports");
    assert_eq!(
        yaml_numbers(&kustomization, "endPort"),
        vec![last],
        "the NetworkPolicy's endPort"
    );
    // The base's admin port is the config's.
    let base = std::fs::read_to_string(Path::new(KUBERNETES).join("base/deployment.yaml")).unwrap();
    assert_eq!(yaml_numbers(&base, "containerPort"), vec![admin]);
}
