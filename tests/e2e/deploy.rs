//! `infra/deploy/`: every YAML file parses (compose and Kubernetes, `<<` merge keys applied);
//! every trackiq command line in it (compose `entrypoint`/`command`, Kubernetes container
//! `command`/`args`) names only subcommands and flags that the real binary's `--help` lists,
//! at the place they are used; every `--role` is one of the five roles and each role is
//! deployed by both; the TOML configurations (files and ConfigMap keys) load with
//! trackiq's own configuration type and agree with the manifests (metrics port, partitions
//! versus replicas, replication versus brokers); secrets are referenced, never inlined.
//! (`ci_recipe.rs` checks `infra/ci/` with the same command-line check.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;
use trackiq::config::{Config, Overrides};

use crate::support::BIN;

const ROLES: [&str; 5] = ["aggregator", "archiver", "verdict", "sinks", "compactor"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/deploy")
}

/// Files under `dir` (recursively) whose names end with one of `exts`, sorted.
pub(crate) fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path, exts));
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| exts.iter().any(|e| n.ends_with(e))) {
            out.push(path);
        }
    }
    out.sort();
    out
}

pub(crate) fn rel(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).display().to_string()
}

/// Every document of a YAML file, with `<<` merge keys applied.
pub(crate) fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let mut v = <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", rel(path)));
            v.apply_merge().unwrap_or_else(|e| panic!("{}: merge keys: {e}", rel(path)));
            v
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// A scalar as text.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A command given as a list, or as one string (split on whitespace, as compose does for
/// strings without quotes).
fn words(v: Option<&Value>, origin: &str) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(Value::Sequence(seq)) => seq.iter().map(|w| scalar(w).unwrap_or_else(|| panic!("{origin}: a command word is not a scalar: {w:?}"))).collect(),
        Some(other) => panic!("{origin}: a command is neither a list nor a string: {other:?}"),
    }
}

pub(crate) fn is_trackiq_binary(word: &str) -> bool {
    Path::new(word).file_name().is_some_and(|n| n == "trackiq")
}

/// trackiq's arguments from an entry point (`entrypoint`, k8s `command`) and a command
/// (`command`, k8s `args`); the image's own entry point is the binary (checked separately).
fn trackiq_args(entry: Vec<String>, command: Vec<String>, origin: &str) -> Vec<String> {
    match entry.split_first() {
        None => command,
        Some((first, rest)) => {
            assert!(is_trackiq_binary(first), "{origin}: the entry point `{}` of a trackiq container is not the trackiq binary", entry.join(" "));
            rest.iter().cloned().chain(command).collect()
        }
    }
}

/// One trackiq command line found in a manifest.
#[derive(Debug)]
struct Invocation {
    origin: String,
    args: Vec<String>,
    compose: bool,
}

fn is_trackiq_image(image: Option<&Value>) -> bool {
    image.and_then(Value::as_str).is_some_and(|i| i.contains("trackiq"))
}

/// Services of a compose file that run the trackiq image (by name, or built from the Dockerfile).
fn compose_invocations(doc: &Value, file: &str, out: &mut Vec<Invocation>) {
    let Some(services) = doc.get("services").and_then(Value::as_mapping) else { return };
    for (name, svc) in services {
        let origin = format!("{file}: service {}", name.as_str().unwrap_or("?"));
        if !(is_trackiq_image(svc.get("image")) || svc.get("build").is_some()) {
            continue;
        }
        let args = trackiq_args(words(svc.get("entrypoint"), &origin), words(svc.get("command"), &origin), &origin);
        if !args.is_empty() {
            out.push(Invocation { origin, args, compose: true });
        }
    }
}

/// Containers of Kubernetes objects (any depth: Deployment, Job, CronJob, Pod) that run the
/// trackiq image.
fn k8s_invocations(v: &Value, origin: &str, out: &mut Vec<Invocation>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let key = k.as_str().unwrap_or_default();
                if matches!(key, "containers" | "initContainers")
                    && let Some(list) = child.as_sequence()
                {
                    for c in list.iter().filter(|c| is_trackiq_image(c.get("image"))) {
                        let origin = format!("{origin} container {}", c.get("name").and_then(Value::as_str).unwrap_or("?"));
                        let args = trackiq_args(words(c.get("command"), &origin), words(c.get("args"), &origin), &origin);
                        if !args.is_empty() {
                            out.push(Invocation { origin, args, compose: false });
                        }
                    }
                } else {
                    k8s_invocations(child, origin, out);
                }
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| k8s_invocations(c, origin, out)),
        _ => {}
    }
}

fn k8s_name(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = doc.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("?");
    format!("{kind}/{name}")
}

/// What `trackiq <path> --help` lists.
#[derive(Debug, Default)]
struct Help {
    subcommands: BTreeSet<String>,
    /// `--long` and `-s` flags, and whether each takes a value.
    flags: HashMap<String, bool>,
}

fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut in_commands = false;
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            in_commands = line == "Commands:";
            continue;
        }
        let trimmed = line.trim_start();
        if in_commands && line.starts_with("  ") && !trimmed.is_empty() {
            help.subcommands.insert(trimmed.split_whitespace().next().unwrap().to_string());
        } else if trimmed.starts_with('-') {
            // `-v, --verbose...`, `--config <CONFIG>`, `--kafka-option <KAFKA_OPTIONS>`
            let spec = trimmed.split("  ").next().unwrap();
            let takes_value = spec.contains('<');
            for token in spec.split([',', ' ', '=']).map(|t| t.trim_end_matches("...")) {
                if token.starts_with("--") || (token.len() == 2 && token.starts_with('-')) {
                    help.flags.insert(token.to_string(), takes_value);
                }
            }
        }
    }
    help
}

/// `--help` of each subcommand path, run once.
#[derive(Default)]
pub(crate) struct Cli {
    helps: HashMap<Vec<String>, Result<Help, String>>,
}

impl Cli {
    fn help(&mut self, path: &[String]) -> Result<&Help, String> {
        self.helps
            .entry(path.to_vec())
            .or_insert_with(|| {
                let out = Command::new(BIN).args(path).arg("--help").output().expect("trackiq runs");
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                if out.status.success() {
                    Ok(parse_help(&text))
                } else {
                    Err(format!("`trackiq {} --help` failed ({}): {}", path.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()))
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The subcommand path of `args`, its `--role` values and the last value of each flag, or
    /// what is wrong with them.
    pub(crate) fn check(&mut self, args: &[String]) -> Result<(Vec<String>, Vec<String>, BTreeMap<String, String>), Vec<String>> {
        let mut errors = Vec::new();
        let mut path: Vec<String> = Vec::new();
        let mut roles = Vec::new();
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let help = match self.help(&path) {
                Ok(h) => h,
                Err(e) => return Err(vec![e]),
            };
            let shown = format!("trackiq {}", path.join(" ")).trim_end().to_string();
            if arg == "--" {
                break; // the rest belongs to the benchmarked program
            }
            if arg.starts_with('-') && arg.len() > 1 {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (arg.clone(), None),
                };
                // `-vv`: a cluster of short flags.
                let names: Vec<String> = if name.starts_with("--") { vec![name.clone()] } else { name[1..].chars().map(|c| format!("-{c}")).collect() };
                let mut takes = false;
                for n in &names {
                    match help.flags.get(n) {
                        Some(t) => takes |= *t,
                        None => errors.push(format!("`{shown} --help` does not list {n}")),
                    }
                }
                if takes {
                    let value = match inline {
                        Some(v) => Some(v),
                        None => {
                            i += 1;
                            args.get(i).cloned()
                        }
                    };
                    match value {
                        Some(v) => {
                            if name == "--role" {
                                roles.extend(v.split(',').map(|r| r.trim().to_string()));
                            }
                            values.insert(name.clone(), v);
                        }
                        None => errors.push(format!("{name} has no value")),
                    }
                }
            } else if help.subcommands.contains(arg.as_str()) {
                path.push(arg.clone());
            } else if !help.subcommands.is_empty() {
                // What follows would be read against the wrong command: stop here.
                errors.push(format!("`{arg}` is not a subcommand of `{shown}` (it has: {})", help.subcommands.iter().cloned().collect::<Vec<_>>().join(", ")));
                return Err(errors);
            }
            i += 1;
        }
        match self.help(&path) {
            Err(e) => errors.push(e),
            Ok(h) if !h.subcommands.is_empty() => {
                errors.push(format!("`{}` needs a subcommand", ["trackiq"].into_iter().chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")))
            }
            Ok(_) => {}
        }
        for r in roles.iter().filter(|r| !ROLES.contains(&r.as_str())) {
            errors.push(format!("role `{r}` is not one of {ROLES:?}"));
        }
        if errors.is_empty() { Ok((path, roles, values)) } else { Err(errors) }
    }
}

#[test]
fn parse_help_reads_subcommands_and_flags() {
    let help = parse_help(
        "Run it\n\nUsage: trackiq [OPTIONS] <COMMAND>\n\nCommands:\n  up      Run the pipeline\n  broker  The broker alone\n\nOptions:\n      --config <CONFIG>\n          TOML file\n  -v, --verbose...\n          More output\n      --role <ROLES>  Roles\n  -h, --help  Print help\n",
    );
    assert_eq!(help.subcommands, BTreeSet::from(["up".to_string(), "broker".to_string()]));
    assert_eq!(help.flags.get("--config"), Some(&true));
    assert_eq!(help.flags.get("--role"), Some(&true));
    assert_eq!((help.flags.get("-v"), help.flags.get("--verbose"), help.flags.get("-h")), (Some(&false), Some(&false), Some(&false)));
    assert!(!help.flags.contains_key("TOML"));
}

#[test]
fn command_lines_are_found_in_compose_and_kubernetes_forms() {
    let compose: Value = {
        let mut v: Value = serde_yaml_ng::from_str(
            "x-t: &t\n  image: trackiq:dev\nservices:\n  a:\n    <<: *t\n    command: up --role archiver\n  b:\n    <<: *t\n    entrypoint: [/usr/local/bin/trackiq, --data, s3://b/p]\n    command: [up, --role, verdict]\n  kafka:\n    image: apache/kafka:4.1.0\n    command: [run]\n",
        )
        .unwrap();
        v.apply_merge().unwrap();
        v
    };
    let mut found = Vec::new();
    compose_invocations(&compose, "c", &mut found);
    let args: Vec<Vec<String>> = found.iter().map(|i| i.args.clone()).collect();
    assert_eq!(args, [vec!["up", "--role", "archiver"], vec!["--data", "s3://b/p", "up", "--role", "verdict"]]);
    let k8s: Value = serde_yaml_ng::from_str(
        "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers: [{name: i, image: busybox, command: [sh]}]\n          containers:\n            - {name: t, image: r/trackiq:1, command: [trackiq, sql], args: [\"SELECT 1\"]}\n",
    )
    .unwrap();
    let mut found = Vec::new();
    k8s_invocations(&k8s, "k", &mut found);
    assert_eq!(found.iter().map(|i| i.args.clone()).collect::<Vec<_>>(), [vec!["sql", "SELECT 1"]]);
}

/// The Dockerfile's entry point is the trackiq binary, so a container's command is trackiq's arguments.
fn check_dockerfile_entrypoint() {
    let path = deploy_dir().join("Dockerfile");
    let text = std::fs::read_to_string(&path).expect("infra/deploy/Dockerfile");
    let entry = text.lines().rev().find_map(|l| l.strip_prefix("ENTRYPOINT")).expect("the Dockerfile has an ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry.trim()).expect("ENTRYPOINT in exec (JSON) form");
    assert!(entry.len() == 1 && is_trackiq_binary(&entry[0]), "ENTRYPOINT {entry:?} is not the trackiq binary alone");
}

#[test]
fn every_trackiq_command_line_in_infra_deploy_uses_existing_subcommands_flags_and_roles() {
    check_dockerfile_entrypoint();
    let yaml = files(&deploy_dir(), &[".yaml", ".yml"]);
    assert!(yaml.iter().any(|p| p.ends_with("compose.yaml")), "infra/deploy/compose.yaml exists");
    assert!(yaml.iter().any(|p| p.parent().is_some_and(|d| d.ends_with("k8s"))), "infra/deploy/k8s/*.yaml exist");
    let mut invocations = Vec::new();
    let mut compose_hosts = BTreeSet::new();
    for path in &yaml {
        for doc in documents(path) {
            if let Some(services) = doc.get("services").and_then(Value::as_mapping) {
                for (name, svc) in services {
                    compose_hosts.extend(name.as_str().map(String::from));
                    compose_hosts.extend(svc.get("hostname").and_then(Value::as_str).map(String::from));
                }
                compose_invocations(&doc, &rel(path), &mut invocations);
            } else if doc.get("kind").is_some() {
                k8s_invocations(&doc, &format!("{}: {}", rel(path), k8s_name(&doc)), &mut invocations);
            }
        }
    }
    assert!(invocations.len() >= 8, "found the trackiq command lines of compose and k8s: {invocations:#?}");

    let mut cli = Cli::default();
    let mut errors = Vec::new();
    let mut deployed: BTreeMap<bool, BTreeSet<String>> = BTreeMap::new();
    for inv in &invocations {
        match cli.check(&inv.args) {
            Err(e) => errors.extend(e.into_iter().map(|e| format!("{}: `trackiq {}`: {e}", inv.origin, inv.args.join(" ")))),
            Ok((path, roles, values)) => {
                if path == ["up"] {
                    assert!(!roles.is_empty(), "{}: `trackiq up` without --role runs every stage in one process", inv.origin);
                    deployed.entry(inv.compose).or_default().extend(roles);
                }
                // Compose: the brokers named are services of the same file.
                if inv.compose {
                    let brokers = values.get("--brokers").unwrap_or_else(|| panic!("{}: no --brokers", inv.origin));
                    for host in brokers.split(',').map(|b| b.split(':').next().unwrap().trim()) {
                        assert!(compose_hosts.contains(host), "{}: broker host `{host}` is no service of the compose file", inv.origin);
                    }
                    let data = values.get("--data").unwrap_or_else(|| panic!("{}: no --data", inv.origin));
                    assert!(data.starts_with("s3://"), "{}: --data {data} is not in the object store", inv.origin);
                }
            }
        }
    }
    assert!(errors.is_empty(), "trackiq command lines in infra/deploy that the binary does not accept:\n{}", errors.join("\n"));
    for (compose, what) in [(true, "compose.yaml"), (false, "k8s/")] {
        let got = deployed.get(&compose).cloned().unwrap_or_default();
        assert_eq!(got, ROLES.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>(), "{what} deploys every role");
    }
}

/// A TOML configuration loaded as `trackiq --config` loads it (defaults, file, validation).
fn load_config(toml: &str, origin: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trackiq.toml");
    std::fs::write(&file, toml).unwrap();
    Config::load(&Overrides { config: Some(file), ..Default::default() }, |_| None)
        .unwrap_or_else(|e| panic!("{origin} does not load as trackiq's config: {e:#}"))
}

fn port(listen: &str) -> u16 {
    listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_else(|| panic!("`{listen}` has no port"))
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

#[test]
fn deploy_configs_load_as_trackiq_config_and_agree_with_the_manifests() {
    let dir = deploy_dir();
    // The compose stack's file.
    let mut configs: Vec<(String, Config, bool)> = Vec::new();
    for path in files(&dir, &[".toml"]) {
        let config = load_config(&std::fs::read_to_string(&path).unwrap(), &rel(&path));
        configs.push((rel(&path), config, true));
    }
    // ConfigMap keys of the Kubernetes manifests; and what the manifests say.
    let (mut k8s_replicas, mut probe_ports, mut compose_replicas, mut kafka_nodes) = (Vec::new(), BTreeSet::new(), Vec::new(), 0);
    for path in files(&dir, &[".yaml", ".yml"]) {
        for doc in documents(&path) {
            let origin = format!("{}: {}", rel(&path), k8s_name(&doc));
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
            assert_ne!(kind, "Secret", "{origin}: secrets are referenced (secretKeyRef), never written into the manifests");
            if kind == "ConfigMap" {
                for (k, v) in doc.get("data").and_then(Value::as_mapping).into_iter().flatten() {
                    if k.as_str().is_some_and(|k| k.ends_with(".toml")) {
                        let config = load_config(v.as_str().expect("a TOML string"), &format!("{origin} key {}", k.as_str().unwrap()));
                        configs.push((origin.clone(), config, false));
                    }
                }
            }
            if kind == "Deployment" {
                let spec = &doc["spec"];
                let pod = &spec["template"]["spec"];
                for c in pod["containers"].as_sequence().into_iter().flatten().filter(|c| is_trackiq_image(c.get("image"))) {
                    k8s_replicas.push((origin.clone(), int(spec.get("replicas")).unwrap_or(1)));
                    for which in ["requests", "limits"] {
                        for res in ["cpu", "memory"] {
                            assert!(c["resources"][which].get(res).is_some(), "{origin}: resources.{which}.{res} is stated");
                        }
                    }
                    for probe in ["readinessProbe", "livenessProbe"] {
                        let p = c.get(probe).unwrap_or_else(|| panic!("{origin}: {probe}"));
                        let port = p.get("httpGet").or(p.get("tcpSocket")).and_then(|h| h.get("port")).expect("probe port");
                        // A named port: resolve it against the container's ports.
                        let number = match port.as_str() {
                            Some(name) => c["ports"].as_sequence().into_iter().flatten().find(|p| p["name"] == name).and_then(|p| int(p.get("containerPort"))),
                            None => int(Some(port)),
                        };
                        probe_ports.insert(number.unwrap_or_else(|| panic!("{origin}: {probe} port {port:?} is no container port")));
                    }
                    assert_eq!(c["readinessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"), "{origin}: readiness from /healthz");
                    for e in c["env"].as_sequence().into_iter().flatten() {
                        let name = e["name"].as_str().unwrap_or_default();
                        if name.starts_with("AWS_SECRET") || name.starts_with("AWS_ACCESS") {
                            assert!(e.get("value").is_none() && e["valueFrom"].get("secretKeyRef").is_some(), "{origin}: {name} comes from a Secret");
                        }
                    }
                }
            }
            if let Some(services) = doc.get("services").and_then(Value::as_mapping) {
                for (name, svc) in services {
                    let name = name.as_str().unwrap_or_default();
                    if svc.get("image").and_then(Value::as_str).is_some_and(|i| i.starts_with("apache/kafka")) {
                        kafka_nodes += 1;
                    }
                    if is_trackiq_image(svc.get("image")) {
                        compose_replicas.push((format!("{}: service {name}", rel(&path)), int(svc.get("deploy").and_then(|d| d.get("replicas"))).unwrap_or(1)));
                        if let Some(test) = svc.get("healthcheck").and_then(|h| h.get("test")) {
                            let url = words(Some(test), name).into_iter().find(|w| w.contains("/healthz")).expect("the health check reads /healthz");
                            probe_ports.insert(port(url.trim_end_matches("/healthz").trim_start_matches("http://")).into());
                        }
                    }
                }
            }
        }
    }
    assert!(configs.iter().any(|(_, _, file)| !file), "a ConfigMap holds trackiq.toml");
    assert!(kafka_nodes >= 3, "compose runs three Kafka nodes, found {kafka_nodes}");
    for (origin, config, is_compose_file) in &configs {
        assert!(config.metrics.enabled, "{origin}: metrics on (health checks read /healthz)");
        assert!(
            !config.metrics.listen.starts_with("127.") && !config.metrics.listen.starts_with("localhost"),
            "{origin}: metrics listen on all interfaces, not {}",
            config.metrics.listen
        );
        let p = i64::from(port(&config.metrics.listen));
        assert_eq!(probe_ports.iter().copied().collect::<Vec<i64>>(), vec![p], "{origin}: every probe and health check reads the metrics port {p}");
        assert!(config.bus.replication >= 2, "{origin}: trackiq topics replicated on a cluster, not {}", config.bus.replication);
        if *is_compose_file {
            assert!(config.bus.replication <= kafka_nodes, "{origin}: replication {} over {kafka_nodes} brokers", config.bus.replication);
        } else {
            assert!(config.data.starts_with("s3://") && !config.bus.embedded(), "{origin}: S3 history and an external Kafka");
        }
        let replicas = if *is_compose_file { &compose_replicas } else { &k8s_replicas };
        for (what, n) in replicas {
            assert!(*n <= i64::from(config.bus.partitions), "{what}: {n} replicas over {} partitions would leave some idle", config.bus.partitions);
        }
    }
}
