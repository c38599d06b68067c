//! The deployment files, checked two ways.
//!
//! * Structure, always: `docker-compose.yml`, `deploy/k8s/*.yaml`, `deploy/systemd/*` and
//!   `deploy/Dockerfile` are parsed and checked for what operators rely on (health checks,
//!   dependencies, replicas, probes, resources, hardening, secrets only as files). The tools of
//!   each format run too when they are installed (`docker compose config`, `kubectl kustomize`,
//!   `systemd-analyze verify` and `security`); only that part is skipped when one is missing.
//! * Behaviour: the writer, the collector(s) and the API are started exactly as the systemd units
//!   (with `sdash.env.example`) and the compose file configure them, with only addresses and paths
//!   replaced by the test's own nats-server (with the same authentication), PostgreSQL database,
//!   free ports and temporary folders, and `sdash-sim` as the fleet; the API must then list every
//!   simulated system with a status.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sdash_harness::{Backend, NatsServer, TestDatabase, free_port, wait_for};
use serde::Deserialize as _;
use serde_norway::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn keys(v: &Value) -> Vec<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn seq(v: &Value) -> Vec<Value> {
    v.as_sequence().cloned().unwrap_or_default()
}

/// Compose interpolation with an empty environment: `${VAR:-default}` and `${VAR-default}` give
/// the default, `${VAR}` and `$VAR` nothing, `$$` a literal `$`.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text:?}"));
            let expr = &body[..end];
            if let Some((_, default)) = expr.split_once(":-").or_else(|| expr.split_once('-')) {
                out.push_str(default);
            }
            rest = &body[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

/// A compose `environment` (map or list) as KEY -> interpolated value.
fn compose_env(service: &Value) -> BTreeMap<String, String> {
    let env = &service["environment"];
    let mut out = BTreeMap::new();
    if let Some(map) = env.as_mapping() {
        for (k, v) in map {
            let value = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            out.insert(s(k).to_owned(), interpolate(&value));
        }
    } else {
        for item in seq(env) {
            let (k, v) = s(&item).split_once('=').unwrap_or((s(&item), ""));
            out.insert(k.to_owned(), interpolate(v));
        }
    }
    out
}

/// A compose `command`/`entrypoint` (list or string) as interpolated words.
fn compose_words(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Value::String(t) => interpolate(t),
                Value::Number(n) => n.to_string(),
                other => panic!("unexpected command item {other:?}"),
            })
            .collect(),
        Value::String(t) => interpolate(t)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Short-syntax volume strings of a service as (source, target).
fn compose_volumes(service: &Value) -> Vec<(String, String)> {
    seq(&service["volumes"])
        .iter()
        .map(|v| {
            let text = interpolate(s(v));
            let mut parts = text.split(':');
            let source = parts.next().unwrap_or_default().to_owned();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {text:?} needs source:target"))
                .to_owned();
            (source, target)
        })
        .collect()
}

fn looks_like_secret_name(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    (k.contains("PASSWORD") || k.contains("TOKEN") || k.contains("SECRET") || k == "PGPASSWORD")
        && !k.ends_with("_FILE")
        && k != "PGPASSFILE"
}

/// `scheme://user:password@host` in a URL.
fn url_has_password(value: &str) -> bool {
    value.split_once("://").is_some_and(|(_, rest)| {
        rest.split_once('@')
            .is_some_and(|(auth, _)| auth.contains(':'))
    })
}

/// A tool that may be missing: Some(output) when it could be run.
fn run_tool(program: &str, args: &[&str], dir: &Path) -> Option<std::process::Output> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SDASH_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().ok()
}

/// `target/<profile>/<name>` if it was built, found from this test's own executable
/// (`target/<profile>/deps/`).
fn built(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join(name);
    path.exists().then_some(path)
}

/// `target/<profile>/<name>`, found from this test's own executable (`target/<profile>/deps/`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --bins; the README's `cargo nextest run --workspace --all-targets` does)",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Procs(Vec<Proc>);

impl Procs {
    /// Starts `program` with exactly `env` on top of a clean environment (no SDASH_* or PG*
    /// variables of the test's own), output to `<dir>/<name>.log`.
    fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &BTreeMap<String, String>,
        cwd: &Path,
        dir: &Path,
    ) {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(cwd).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("SDASH_") || k.starts_with("PG") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env)
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        self.0.push(Proc {
            name: name.to_owned(),
            child,
            log,
        });
    }

    /// Fails if a process has exited.
    fn assert_running(&mut self) {
        let mut dead = Vec::new();
        for p in &mut self.0 {
            if let Ok(Some(status)) = p.child.try_wait() {
                dead.push(format!("{} exited with {status}", p.name));
            }
        }
        assert!(dead.is_empty(), "{}\n{}", dead.join(", "), self.logs());
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            let mut text = String::new();
            if let Ok(mut f) = File::open(&p.log) {
                let _ = f.read_to_string(&mut text);
            }
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            out.push_str(&format!(
                "----- {} (last {} lines)\n{}\n",
                p.name,
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client")
}

async fn get_status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// System ids of an inventory written by sdash-sim.
fn inventory_ids(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("id = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

async fn wait_for_file(path: &Path, procs: &mut Procs) {
    let found = wait_for(Duration::from_secs(20), || async {
        std::fs::metadata(path)
            .is_ok_and(|m| m.len() > 0)
            .then_some(())
    })
    .await;
    if found.is_none() {
        procs.assert_running();
        panic!("{} was not written\n{}", path.display(), procs.logs());
    }
}

/// Waits until `GET /api/v1/systems` lists every id in `expected` with a status, at least one
/// of them online; returns the items.
async fn wait_for_fleet(
    api: &str,
    expected: &BTreeSet<String>,
    procs: &mut Procs,
) -> Vec<serde_json::Value> {
    let client = http_client();
    let url = format!("{api}/api/v1/systems?limit=1000");
    let mut last = String::new();
    for _ in 0..360 {
        procs.assert_running();
        if let Ok(resp) = client.get(&url).send().await
            && let Ok(body) = resp.json::<serde_json::Value>().await
        {
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let with_status: BTreeSet<String> = items
                .iter()
                .filter(|i| i["status"].as_str().is_some_and(|st| !st.is_empty()))
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect();
            let online = items.iter().any(|i| i["status"] == "online");
            if expected.is_subset(&with_status) && online {
                return items;
            }
            let missing: Vec<&String> = expected.difference(&with_status).collect();
            last = format!(
                "{} of {} systems have a status, online: {online}, without: {missing:?}",
                with_status.len(),
                expected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!(
        "the API did not list the fleet within 180 s ({last})\n{}",
        procs.logs()
    );
}

fn start_sim(procs: &mut Procs, args: &[String], dir: &Path) {
    procs.spawn(
        "sdash-sim",
        &binary("sdash-sim"),
        args,
        &BTreeMap::new(),
        dir,
        dir,
    );
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------

const COMPOSE_SERVICES: [&str; 8] = [
    "nats",
    "postgres",
    "writer",
    "collector",
    "api",
    "sim",
    "prometheus",
    "grafana",
];

/// The services of the compose `demo` profile only.
const DEMO_ONLY_SERVICES: [&str; 6] = [
    "sim",
    "prometheus",
    "grafana",
    "notify",
    "alertmanager",
    "history-import",
];

fn compose() -> Value {
    let docs = yaml_docs(&read("docker-compose.yml"), "docker-compose.yml");
    assert_eq!(docs.len(), 1, "docker-compose.yml holds one document");
    let mut doc = docs.into_iter().next().expect("one document");
    // `<<: *anchor` merge keys, as compose resolves them.
    doc.apply_merge().expect("docker-compose.yml merge keys");
    doc
}

/// The compose file's secret files (name -> contents), at their default paths.
fn compose_secret_values(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in keys(&doc["secrets"]) {
        let file = interpolate(s(&doc["secrets"][name.as_str()]["file"]));
        assert!(!file.is_empty(), "secret {name} must come from a file");
        let text = std::fs::read_to_string(root().join(&file))
            .unwrap_or_else(|e| panic!("secret {name}: {file}: {e}"));
        out.insert(name, text.trim().to_owned());
    }
    out
}

#[test]
fn compose_file_structure() {
    let doc = compose();
    let text = read("docker-compose.yml");
    let services = &doc["services"];
    for name in COMPOSE_SERVICES {
        assert!(
            services.get(name).is_some(),
            "docker-compose.yml has no service {name}"
        );
    }
    let declared_volumes: BTreeSet<String> = keys(&doc["volumes"]).into_iter().collect();
    let declared_secrets: BTreeSet<String> = keys(&doc["secrets"]).into_iter().collect();
    let secret_values = compose_secret_values(&doc);
    assert!(declared_secrets.contains("db_password") && declared_secrets.contains("nats_password"));

    for name in keys(services) {
        let svc = &services[name.as_str()];
        // Named volumes are declared; secrets used are declared.
        for (source, target) in compose_volumes(svc) {
            if !source.starts_with('.') && !source.starts_with('/') {
                assert!(
                    declared_volumes.contains(&source),
                    "{name}: volume {source} (on {target}) is not declared"
                );
            }
        }
        for secret in seq(&svc["secrets"]) {
            let secret = secret
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| s(&secret["source"]).to_owned());
            assert!(
                declared_secrets.contains(&secret),
                "{name}: secret {secret} is not declared"
            );
        }
        // No credential in the environment: only *_FILE references, no password in URLs, no
        // secret value anywhere.
        for (key, value) in compose_env(svc) {
            assert!(
                !looks_like_secret_name(&key),
                "{name}: {key} looks like a secret in the environment; use a *_FILE and a compose secret"
            );
            assert!(
                !url_has_password(&value),
                "{name}: {key} has a password in its URL"
            );
            if key.ends_with("_FILE") || key == "PGPASSFILE" {
                assert!(
                    value.starts_with('/'),
                    "{name}: {key} must be an absolute path"
                );
            }
        }
        // Only the simulator and the demo's Prometheus, Grafana, notifier and Alertmanager are
        // optional.
        if DEMO_ONLY_SERVICES.contains(&name.as_str()) {
            assert_eq!(
                seq(&svc["profiles"]),
                vec![Value::from("demo")],
                "{name} runs only with --profile demo"
            );
        } else {
            assert!(
                svc.get("profiles").is_none(),
                "{name} must run without a profile"
            );
        }
    }
    for (name, value) in &secret_values {
        assert!(value.len() >= 16, "secret {name} is too short");
        assert!(
            !text.contains(value.as_str()),
            "the value of secret {name} is written in docker-compose.yml"
        );
    }

    // nats: JetStream on a persistent volume, monitoring port, health check on /healthz.
    let nats = &services["nats"];
    let nats_cmd = compose_words(&nats["command"]).join(" ");
    for flag in ["-js", "-sd /data", "-m 8222"] {
        assert!(
            nats_cmd.contains(flag),
            "nats command lacks {flag}: {nats_cmd}"
        );
    }
    assert!(
        compose_volumes(nats)
            .iter()
            .any(|(src, dst)| dst == "/data" && declared_volumes.contains(src))
    );
    let nats_check = compose_words(&nats["healthcheck"]["test"]).join(" ");
    assert!(
        nats_check.contains("8222/healthz"),
        "nats health check must use the monitoring port's /healthz: {nats_check}"
    );
    assert!(
        nats_cmd.contains("/run/secrets/nats_password"),
        "nats takes its password from the secret"
    );

    // postgres: persistent volume, pg_isready, password from a secret file.
    let pg = &services["postgres"];
    assert!(
        compose_volumes(pg)
            .iter()
            .any(|(src, dst)| dst == "/var/lib/postgresql/data" && declared_volumes.contains(src))
    );
    assert!(
        compose_words(&pg["healthcheck"]["test"])
            .iter()
            .any(|w| w.contains("pg_isready"))
    );
    let pg_env = compose_env(pg);
    assert_eq!(
        pg_env.get("POSTGRES_PASSWORD_FILE").map(String::as_str),
        Some("/run/secrets/db_password")
    );
    assert!(!pg_env.contains_key("POSTGRES_PASSWORD"));

    // writer: after both are healthy.
    let deps = &services["writer"]["depends_on"];
    for dep in ["nats", "postgres"] {
        assert_eq!(
            s(&deps[dep]["condition"]),
            "service_healthy",
            "writer must wait for {dep} to be healthy"
        );
    }

    // Every sdash service that talks to NATS authenticates with the secret file.
    for name in ["writer", "collector", "api", "history-import"] {
        let svc = &services[name];
        let env = compose_env(svc);
        assert!(
            env.contains_key("SDASH_NATS_USER"),
            "{name}: SDASH_NATS_USER"
        );
        let pw = env
            .get("SDASH_NATS_PASSWORD_FILE")
            .unwrap_or_else(|| panic!("{name}: SDASH_NATS_PASSWORD_FILE"));
        let secret = pw
            .strip_prefix("/run/secrets/")
            .unwrap_or_else(|| panic!("{name}: password file outside /run/secrets"));
        assert!(
            seq(&svc["secrets"]).iter().any(|x| s(x) == secret),
            "{name} does not mount secret {secret}"
        );
        assert!(
            svc.get("build").is_some() && svc.get("image").is_some(),
            "{name} builds the sdash image"
        );
    }
    // The database password reaches writer and API as a pgpass file made from the secret.
    for name in ["writer", "api", "history-import"] {
        let env = compose_env(&services[name]);
        let url = &env["SDASH_DATABASE_URL"];
        assert!(
            url.starts_with("postgres://") && !url_has_password(url),
            "{name}: {url}"
        );
        let pgpass = &env["PGPASSFILE"];
        let dir = Path::new(pgpass)
            .parent()
            .expect("pgpass dir")
            .to_str()
            .expect("utf-8");
        let volume = compose_volumes(&services[name])
            .into_iter()
            .find(|(_, t)| t == dir)
            .unwrap_or_else(|| panic!("{name}: nothing mounted on {dir}"));
        assert!(
            compose_volumes(&services["pgpass"]).contains(&volume),
            "{name}: the pgpass service does not write {dir}"
        );
        assert_eq!(
            s(&services[name]["depends_on"]["pgpass"]["condition"]),
            "service_completed_successfully"
        );
    }

    // collector: 2 replicas, inventory from the volume the simulator writes.
    let collector = &services["collector"];
    assert_eq!(
        collector["deploy"]["replicas"].as_u64(),
        Some(2),
        "two collector replicas"
    );
    let inventory = compose_env(collector)["SDASH_INVENTORY"].clone();
    let sim_cmd = compose_words(&services["sim"]["command"]);
    let out = sim_cmd
        .iter()
        .position(|w| w == "--inventory-out")
        .map(|i| sim_cmd[i + 1].clone())
        .expect("sim --inventory-out");
    assert_eq!(
        out, inventory,
        "the simulator writes the inventory the collectors read"
    );
    let inv_dir = Path::new(&inventory)
        .parent()
        .expect("inventory dir")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let shared = |svc: &Value| {
        compose_volumes(svc)
            .into_iter()
            .find(|(_, t)| *t == inv_dir)
            .map(|(src, _)| src)
    };
    assert_eq!(
        shared(collector),
        shared(&services["sim"]),
        "collectors and sim share the inventory volume"
    );
    assert_eq!(
        s(&collector["depends_on"]["sim"]["condition"]),
        "service_healthy"
    );
    assert_eq!(
        collector["depends_on"]["sim"]["required"].as_bool(),
        Some(false),
        "collectors must also start without the demo profile"
    );

    // The demo's history import reads the history CSV the simulator writes into the shared
    // inventory volume (H5, #15 item 4).
    let history_out = sim_cmd
        .iter()
        .position(|w| w == "--history-out")
        .map(|i| sim_cmd[i + 1].clone())
        .expect("sim --history-out");
    let import = &services["history-import"];
    let import_cmd = compose_words(&import["command"]);
    let from_csv = import_cmd
        .iter()
        .position(|w| w == "--from-csv")
        .map(|i| import_cmd[i + 1].clone())
        .expect("history-import --from-csv");
    assert_eq!(from_csv, history_out);
    assert_eq!(shared(import), shared(&services["sim"]));
    assert_eq!(
        s(&import["depends_on"]["writer"]["condition"]),
        "service_healthy"
    );

    // api: published on 8080.
    let ports: Vec<String> = seq(&services["api"]["ports"])
        .iter()
        .map(|p| interpolate(s(p)))
        .collect();
    assert!(
        ports
            .iter()
            .any(|p| p.ends_with(":8080:8080") || p.ends_with(":8080")),
        "api publishes 8080: {ports:?}"
    );
}

/// `docker compose config -q` (or a Compose v2 `docker-compose`, or `$SDASH_DOCKER_COMPOSE`)
/// when one is installed; it needs no engine.
#[test]
fn compose_file_passes_docker_compose_config() {
    let candidates: Vec<Vec<String>> = match std::env::var("SDASH_DOCKER_COMPOSE") {
        Ok(p) => vec![vec![p]],
        Err(_) => vec![
            vec!["docker".into(), "compose".into()],
            vec!["docker-compose".into()],
        ],
    };
    let root = root();
    let tool = candidates.into_iter().find(|c| {
        let args: Vec<&str> = c[1..]
            .iter()
            .map(String::as_str)
            .chain(["version"])
            .collect();
        run_tool(&c[0], &args, &root).is_some_and(|o| {
            let v = String::from_utf8_lossy(&o.stdout).to_string();
            // Compose v1 (docker-compose 1.x) does not know the compose specification.
            o.status.success() && !v.contains("version 1.")
        })
    });
    let Some(tool) = tool else {
        eprintln!(
            "SKIPPED (docker compose config): no Compose v2 here; the structural checks still ran"
        );
        return;
    };
    for profile in [None, Some("demo")] {
        let mut args: Vec<&str> = tool[1..].iter().map(String::as_str).collect();
        args.extend(["-f", "docker-compose.yml"]);
        if let Some(p) = profile {
            args.extend(["--profile", p]);
        }
        args.extend(["config", "-q"]);
        let out = run_tool(&tool[0], &args, &root).expect("compose runs");
        assert!(
            out.status.success(),
            "{} {:?} failed: {}",
            tool[0],
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// deploy/Dockerfile
// ---------------------------------------------------------------------------------------------

/// The health-check script the Dockerfile installs (its `COPY <<'EOF' .../sdash-healthcheck`).
fn dockerfile_healthcheck_script(dockerfile: &str) -> String {
    let start = dockerfile
        .lines()
        .position(|l| {
            l.starts_with("COPY")
                && l.contains("<<'EOF'")
                && l.ends_with("/usr/local/bin/sdash-healthcheck")
        })
        .expect("the Dockerfile writes /usr/local/bin/sdash-healthcheck with a heredoc");
    dockerfile
        .lines()
        .skip(start + 1)
        .take_while(|l| *l != "EOF")
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn dockerfile_structure() {
    let text = read("deploy/Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage: {froms:?}");
    assert!(
        froms[0].contains("rust:") && froms[0].contains(" AS build"),
        "{}",
        froms[0]
    );
    assert!(text.contains("ARG RUST_VERSION=1.95") && text.contains("ARG DEBIAN_RELEASE=bookworm"));
    assert!(
        froms[1].contains("debian:") && froms[1].contains("-slim"),
        "{}",
        froms[1]
    );
    for cache in [
        "/usr/local/cargo/registry",
        "/usr/local/cargo/git",
        "/src/target",
    ] {
        assert!(
            text.contains(&format!("--mount=type=cache,target={cache}")),
            "cache mount for {cache}"
        );
    }
    for bin in ["sdash-collector", "sdash-writer", "sdash-api", "sdash-sim"] {
        assert!(text.contains(&format!("--bin {bin}")), "builds {bin}");
        assert!(
            text.contains(&format!("target/release/{bin}")),
            "copies {bin}"
        );
    }
    assert!(text.contains("--locked"), "builds with the lock file");
    assert!(text.contains("ca-certificates"));
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(
        !user.contains("root") && !user.contains(" 0"),
        "runs as non-root: {user}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("HEALTHCHECK ") && l.contains("sdash-healthcheck"))
    );
    // Every crate the workspace lists is in the build context.
    let cargo = read("Cargo.toml");
    let members = cargo
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("workspace members");
    for member in members.split('"').skip(1).step_by(2) {
        let top = member.split('/').next().expect("member path");
        assert!(
            text.contains(&format!("COPY {top} {top}")),
            "the Dockerfile does not copy {top}/"
        );
    }
    let ignore = read("deploy/Dockerfile.dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "**/target"),
        "target/ stays out of the build context"
    );
    // The health-check script is valid bash.
    let script = dockerfile_healthcheck_script(&text);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sdash-healthcheck");
    std::fs::write(&path, script).expect("write script");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "healthcheck script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// deploy/k8s
// ---------------------------------------------------------------------------------------------

fn k8s_docs() -> Vec<(String, Value)> {
    let dir = root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .to_owned();
        let text = std::fs::read_to_string(&f).expect("read manifest");
        for doc in yaml_docs(&text, &name) {
            out.push((name.clone(), doc));
        }
    }
    out
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// A probe's or a Service's port (name or number) resolves to one of the containers' ports.
fn resolves_to_container_port(port: &Value, containers: &[Value]) -> bool {
    containers
        .iter()
        .flat_map(|c| seq(&c["ports"]))
        .any(|p| match port {
            Value::String(name) => s(&p["name"]) == name,
            Value::Number(n) => p["containerPort"].as_u64() == n.as_u64(),
            _ => false,
        })
}

#[test]
fn kubernetes_manifests_structure() {
    let docs = k8s_docs();
    let mut deployments = BTreeMap::new();
    let mut by_kind: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut kustomization = None;
    let mut files = BTreeSet::new();
    for (file, doc) in &docs {
        let kind = s(&doc["kind"]).to_owned();
        assert!(
            !s(&doc["apiVersion"]).is_empty() && !kind.is_empty(),
            "{file}: every document has apiVersion and kind"
        );
        if kind == "Kustomization" {
            kustomization = Some(doc.clone());
            continue;
        }
        files.insert(file.clone());
        let name = s(&doc["metadata"]["name"]).to_owned();
        assert!(!name.is_empty(), "{file}: {kind} without metadata.name");
        if kind != "Namespace" {
            assert_eq!(
                s(&doc["metadata"]["namespace"]),
                "sdash",
                "{file}: {kind}/{name} namespace"
            );
        }
        by_kind
            .entry(kind.clone())
            .or_default()
            .insert(name.clone());
        if kind == "Deployment" {
            deployments.insert(name, doc.clone());
        }
    }
    let kustomization = kustomization.expect("deploy/k8s/kustomization.yaml");
    let listed: BTreeSet<String> = seq(&kustomization["resources"])
        .iter()
        .map(|r| s(r).to_owned())
        .collect();
    assert_eq!(
        listed, files,
        "kustomization.yaml lists every manifest and nothing else"
    );

    let replicas: BTreeMap<&str, u64> = [("sdash-collector", 3), ("sdash-writer", 2)]
        .into_iter()
        .collect();
    for name in ["sdash-collector", "sdash-writer", "sdash-api"] {
        assert!(deployments.contains_key(name), "no Deployment {name}");
    }
    let configmaps = by_kind.get("ConfigMap").cloned().unwrap_or_default();
    let secrets = by_kind.get("Secret").cloned().unwrap_or_default();
    assert!(
        configmaps.contains("sdash-inventory"),
        "an inventory ConfigMap"
    );
    assert!(
        secrets.contains("sdash-credentials"),
        "a credentials Secret"
    );
    let mut readyz_used = false;
    for (name, d) in &deployments {
        let spec = &d["spec"];
        if let Some(want) = replicas.get(name.as_str()) {
            assert_eq!(spec["replicas"].as_u64(), Some(*want), "{name} replicas");
        }
        let pod = &spec["template"]["spec"];
        assert!(
            labels_match(
                &spec["selector"]["matchLabels"],
                &spec["template"]["metadata"]["labels"]
            ),
            "{name}: the selector does not match the template labels"
        );
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}: runAsNonRoot"
        );
        let containers = seq(&pod["containers"]);
        assert!(!containers.is_empty(), "{name}: no containers");
        let all: Vec<Value> = containers
            .iter()
            .cloned()
            .chain(seq(&pod["initContainers"]))
            .collect();
        for c in &all {
            let cname = s(&c["name"]);
            assert!(!s(&c["image"]).is_empty(), "{name}/{cname}: image");
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    assert!(
                        c["resources"][kind].get(res).is_some(),
                        "{name}/{cname}: resources.{kind}.{res}"
                    );
                }
            }
            assert_eq!(
                c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}/{cname}"
            );
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{name}/{cname}"
            );
            for env_from in seq(&c["envFrom"]) {
                let cm = s(&env_from["configMapRef"]["name"]);
                assert!(
                    cm.is_empty() || configmaps.contains(cm),
                    "{name}/{cname}: unknown ConfigMap {cm}"
                );
            }
            for env in seq(&c["env"]) {
                assert!(
                    env.get("valueFrom").is_some() || !looks_like_secret_name(s(&env["name"])),
                    "{name}/{cname}: {} looks like a secret value in the manifest",
                    s(&env["name"])
                );
            }
        }
        for c in &containers {
            let cname = s(&c["name"]);
            for probe in ["livenessProbe", "readinessProbe"] {
                let get = &c[probe]["httpGet"];
                let path = s(&get["path"]);
                assert!(
                    path == "/healthz" || path == "/readyz",
                    "{name}/{cname}: {probe} must GET /healthz or /readyz"
                );
                assert!(
                    resolves_to_container_port(&get["port"], &containers),
                    "{name}/{cname}: {probe} port is no containerPort"
                );
                readyz_used |= path == "/readyz";
            }
            assert!(
                !seq(&c["args"]).is_empty() || !seq(&c["command"]).is_empty(),
                "{name}/{cname}: which program?"
            );
        }
        for v in seq(&pod["volumes"]) {
            if let Some(cm) = v["configMap"]["name"].as_str() {
                assert!(configmaps.contains(cm), "{name}: unknown ConfigMap {cm}");
            }
            if let Some(sec) = v["secret"]["secretName"].as_str() {
                assert!(secrets.contains(sec), "{name}: unknown Secret {sec}");
            }
        }
    }
    assert!(readyz_used, "readiness probes use /readyz");
    // The programs: each Deployment runs the right binary.
    for (name, bin) in [
        ("sdash-collector", "sdash-collector"),
        ("sdash-writer", "sdash-writer"),
        ("sdash-api", "sdash-api"),
    ] {
        let c = &seq(&deployments[name]["spec"]["template"]["spec"]["containers"])[0];
        assert_eq!(
            seq(&c["args"]).first().map(s),
            Some(bin),
            "{name} runs {bin}"
        );
    }
    // Services select a Deployment's pods and target one of its container ports.
    for (_, doc) in docs.iter().filter(|(_, d)| s(&d["kind"]) == "Service") {
        let svc = s(&doc["metadata"]["name"]);
        let selector = &doc["spec"]["selector"];
        let target = deployments
            .values()
            .find(|d| labels_match(selector, &d["spec"]["template"]["metadata"]["labels"]))
            .unwrap_or_else(|| panic!("Service {svc} selects no Deployment"));
        let containers = seq(&target["spec"]["template"]["spec"]["containers"]);
        for port in seq(&doc["spec"]["ports"]) {
            let t = port.get("targetPort").unwrap_or(&port["port"]);
            assert!(
                resolves_to_container_port(t, &containers),
                "Service {svc}: targetPort {t:?} is no containerPort"
            );
        }
    }
    // Placeholders only in the Secrets.
    for (file, doc) in docs.iter().filter(|(_, d)| s(&d["kind"]) == "Secret") {
        for (k, v) in doc["stringData"].as_mapping().into_iter().flatten() {
            assert_eq!(s(v), "REPLACE_ME", "{file}: {} must be a placeholder", s(k));
        }
        assert!(doc.get("data").is_none(), "{file}: no encoded values");
    }

    // kubectl kustomize renders it, when kubectl is here (no cluster needed).
    match run_tool("kubectl", &["kustomize", "deploy/k8s"], &root()) {
        Some(out) if out.status.success() => {
            let rendered = yaml_docs(
                &String::from_utf8_lossy(&out.stdout),
                "kubectl kustomize output",
            );
            assert_eq!(
                rendered.len(),
                docs.len() - 1,
                "kustomize renders every object"
            );
        }
        Some(out) if String::from_utf8_lossy(&out.stderr).contains("unknown command") => {
            eprintln!("SKIPPED (kubectl kustomize): this kubectl has no kustomize")
        }
        Some(out) => panic!(
            "kubectl kustomize deploy/k8s failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        None => eprintln!(
            "SKIPPED (kubectl kustomize): kubectl is not installed; the structural checks still ran"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// deploy/systemd
// ---------------------------------------------------------------------------------------------

/// A unit file as (section, key, value) in order; repeated keys stay repeated.
fn unit(path: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in read(path).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{path}: not key=value: {line}"));
        out.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
    }
    out
}

fn unit_values<'a>(u: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    u.iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("env file line is not KEY=VALUE: {l}"));
            (k.trim().to_owned(), v.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// The one value of `key` in the `[Service]` section of unit `u` (read from `file`).
fn service_value(u: &[(String, String, String)], file: &str, key: &str) -> String {
    let v = unit_values(u, "Service", key);
    assert_eq!(v.len(), 1, "{file}: exactly one {key}= in [Service]");
    v[0].to_owned()
}

/// The sandboxing and restart settings every sdash systemd unit carries.
const SERVICE_HARDENING: [(&str, &str); 6] = [
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("NoNewPrivileges", "yes"),
    ("PrivateTmp", "yes"),
    ("Restart", "on-failure"),
    ("CapabilityBoundingSet", ""),
];

const UNITS: [(&str, &str); 3] = [
    ("sdash-writer.service", "sdash-writer"),
    ("sdash-collector@.service", "sdash-collector"),
    ("sdash-api.service", "sdash-api"),
];

#[test]
fn systemd_units_structure() {
    for (file, bin) in UNITS {
        let path = format!("deploy/systemd/{file}");
        let u = unit(&path);
        let one = |key: &str| service_value(&u, file, key);
        assert_eq!(
            one("ExecStart").split_whitespace().next(),
            Some(format!("/usr/local/bin/{bin}").as_str()),
            "{file}"
        );
        assert!(
            one("User") == "sdash" || one("DynamicUser") == "yes",
            "{file}: a dedicated user"
        );
        for (key, want) in SERVICE_HARDENING {
            assert_eq!(one(key), want, "{file}: {key}");
        }
        let env_files = unit_values(&u, "Service", "EnvironmentFile");
        assert_eq!(
            env_files.first(),
            Some(&"/etc/sdash/sdash.env"),
            "{file}: EnvironmentFile"
        );
        let creds = unit_values(&u, "Service", "LoadCredential");
        assert!(
            creds.contains(&"nats-password:/etc/sdash/credentials/nats-password"),
            "{file}: NATS password credential"
        );
        let env = unit_values(&u, "Service", "Environment");
        assert!(
            env.contains(&"SDASH_NATS_PASSWORD_FILE=%d/nats-password"),
            "{file}: the NATS password file is the credential"
        );
        if bin == "sdash-collector" {
            assert!(
                env.contains(&"SDASH_COLLECTOR_ID=%i"),
                "{file}: the instance name is the collector id"
            );
        } else {
            assert_eq!(one("StateDirectory"), "sdash", "{file}");
            assert!(
                creds.contains(&"pgpass:/etc/sdash/credentials/pgpass"),
                "{file}: pgpass credential"
            );
            assert!(env.contains(&"PGPASSFILE=%d/pgpass"), "{file}: PGPASSFILE");
        }
        assert_eq!(
            unit_values(&u, "Install", "WantedBy"),
            vec!["multi-user.target"],
            "{file}"
        );
    }
    let example = env_file(&read("deploy/systemd/sdash.env.example"));
    let keys: BTreeSet<&str> = example.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "SDASH_NATS_URL",
        "SDASH_DATABASE_URL",
        "SDASH_INVENTORY",
        "SDASH_ADMIN_LISTEN",
        "SDASH_LISTEN",
    ] {
        assert!(keys.contains(key), "sdash.env.example sets {key}");
    }
    for (k, v) in &example {
        assert!(
            !looks_like_secret_name(k),
            "sdash.env.example: {k} looks like a secret; use a credential file"
        );
        assert!(
            !url_has_password(v),
            "sdash.env.example: {k} has a password in its URL"
        );
    }
    let sysusers = read("deploy/systemd/sdash.sysusers");
    assert!(
        sysusers.lines().any(|l| l.starts_with("u sdash ")),
        "sysusers entry for the sdash user"
    );
}

/// `systemd-analyze verify` and `systemd-analyze security --offline` on the units, when the tool
/// is here. The units are copied with ExecStart pointing at the built binaries (verify checks
/// that the program exists), the template as an instance.
#[test]
fn systemd_units_pass_systemd_analyze() {
    let root = root();
    if run_tool("systemd-analyze", &["--version"], &root).is_none_or(|o| !o.status.success()) {
        eprintln!("SKIPPED (systemd-analyze): not installed; the structural checks still ran");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut names = Vec::new();
    for (file, bin) in UNITS {
        let text = read(&format!("deploy/systemd/{file}"));
        // The built program when there is one (verify checks it is executable).
        let program = built(bin).unwrap_or_else(|| PathBuf::from("/bin/true"));
        let text = text.replace(
            &format!("/usr/local/bin/{bin}"),
            program.to_str().expect("utf-8 path"),
        );
        let name = file.replace("@.service", "@test1.service");
        std::fs::write(dir.path().join(&name), text).expect("write unit");
        names.push(name);
    }
    let paths: Vec<String> = names
        .iter()
        .map(|n| dir.path().join(n).display().to_string())
        .collect();
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let out = run_tool("systemd-analyze", &args, dir.path()).expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify: {}",
        problems.join("\n")
    );
    for path in &paths {
        let out = run_tool(
            "systemd-analyze",
            &["security", "--offline=yes", "--threshold=20", path],
            dir.path(),
        )
        .expect("systemd-analyze runs");
        let report = String::from_utf8_lossy(&out.stdout);
        let overall = report
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("")
            .to_owned();
        assert!(
            out.status.success(),
            "{path}: exposure above 2.0: {overall}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// docs/operations.md
// ---------------------------------------------------------------------------------------------

/// The ```yaml blocks of docs/operations.md.
fn operations_yaml_blocks() -> Vec<String> {
    let text = read("docs/operations.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == "```yaml" => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The alert rules of docs/operations.md: (name, expression).
fn documented_alerts() -> Vec<(String, String)> {
    let blocks = operations_yaml_blocks();
    let rules = blocks
        .iter()
        .map(|b| yaml_docs(b, "a yaml block of docs/operations.md"))
        .find_map(|docs| docs.into_iter().find(|d| d.get("groups").is_some()))
        .expect("docs/operations.md has the alert rules (groups:)");
    let mut out = Vec::new();
    for group in seq(&rules["groups"]) {
        for rule in seq(&group["rules"]) {
            let name = s(&rule["alert"]).to_owned();
            assert!(!name.is_empty(), "an alert rule without a name");
            assert!(!s(&rule["expr"]).is_empty(), "{name}: expr");
            assert!(
                !s(&rule["labels"]["severity"]).is_empty(),
                "{name}: severity"
            );
            assert!(
                !s(&rule["annotations"]["summary"]).is_empty(),
                "{name}: summary"
            );
            out.push((name, s(&rule["expr"]).to_owned()));
        }
    }
    out
}

/// The sdash metric families an expression uses (`sdash_writer_dropped_total` ->
/// `sdash_writer_dropped`).
fn metric_families(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sdash_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        out.insert(base.to_owned());
        rest = &tail[end..];
    }
    out
}

/// Whether a service registers the metric family (`sdash_<crate>_<name>`): a source file of the
/// crate holds the full name, or the `sdash_<crate>` prefix and `register("<name>"`.
fn registered_in_source(family: &str) -> bool {
    let Some((krate, name)) = ["collector", "writer", "api"]
        .iter()
        .find_map(|k| family.strip_prefix(&format!("sdash_{k}_")).map(|n| (*k, n)))
    else {
        return false;
    };
    let mut dirs = vec![root().join(krate).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text: String = std::fs::read_to_string(&path)
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if text.contains(&format!("\"{family}\""))
                    || (text.contains(&format!("\"sdash_{krate}\""))
                        && text.contains(&format!("register(\"{name}\"")))
                {
                    return true;
                }
            }
        }
    }
    false
}

#[test]
fn operations_doc_monitoring_config() {
    let blocks = operations_yaml_blocks();
    let scrape = blocks
        .iter()
        .map(|b| yaml_docs(b, "a yaml block of docs/operations.md"))
        .find_map(|docs| docs.into_iter().find(|d| d.get("scrape_configs").is_some()))
        .expect("docs/operations.md has a Prometheus scrape configuration");
    let jobs: BTreeSet<String> = seq(&scrape["scrape_configs"])
        .iter()
        .map(|j| s(&j["job_name"]).to_owned())
        .collect();
    for job in ["sdash-writer", "sdash-collector", "sdash-api"] {
        assert!(jobs.contains(job), "no scrape job {job}");
    }
    let alerts = documented_alerts();
    let names: BTreeSet<&str> = alerts.iter().map(|(n, _)| n.as_str()).collect();
    for (wanted, family) in [
        ("SdashWriterDropped", "sdash_writer_dropped"),
        ("SdashWriterLagging", "sdash_writer_consumer_pending"),
        ("SdashDeadLetters", "sdash_writer_dead_letters"),
        ("SdashCollectorsLost", "sdash_collector_live_collectors"),
        ("SdashOutboxDropping", "sdash_collector_outbox_dropped"),
    ] {
        assert!(names.contains(wanted), "no alert {wanted}");
        let expr = &alerts.iter().find(|(n, _)| n == wanted).expect("alert").1;
        assert!(
            metric_families(expr).contains(family),
            "{wanted} does not use {family}"
        );
    }
    for (alert, expr) in &alerts {
        for family in metric_families(expr) {
            assert!(
                registered_in_source(&family),
                "alert {alert} uses {family}, which no service registers"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the configurations
// ---------------------------------------------------------------------------------------------

fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("random bytes");
    bytes
        .iter()
        .map(|b| {
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    [usize::from(*b) % 62],
            )
        })
        .collect()
}

fn write_private(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).expect("write secret");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The pgpass file the test's services use: our database needs no password (trust) or carries
/// it in its URL, so the file only has to be well-formed.
fn pgpass_line() -> String {
    format!(
        "*:*:*:*:{}\n",
        std::env::var("PGPASSWORD").unwrap_or_else(|_| "unused".into())
    )
}

/// systemd specifiers the units use.
fn expand_specifiers(value: &str, creds: &Path, instance: &str, state: &Path) -> String {
    value
        .replace("%%", "\u{0}")
        .replace("%d", creds.to_str().expect("utf-8"))
        .replace("%i", instance)
        .replace("%S", state.to_str().expect("utf-8"))
        .replace('\u{0}', "%")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_configuration_runs_the_pipeline() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let example = env_file(&read("deploy/systemd/sdash.env.example"));
    let example_get = |k: &str| {
        example
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };

    // NATS with the authentication the configuration uses (the user from the env file, the
    // password from the credential).
    let nats_user = example_get("SDASH_NATS_USER").expect("SDASH_NATS_USER in sdash.env.example");
    let nats_password = random_secret();
    let nats = NatsServer::start_with(&["--user", &nats_user, "--pass", &nats_password]);
    let db = TestDatabase::new(Backend::Postgres).await;

    // The fleet.
    let mut procs = Procs::default();
    let sim_dir = dir.join("sim");
    std::fs::create_dir_all(&sim_dir).expect("sim dir");
    let inventory = sim_dir.join("inventory.toml");
    let sim_args: Vec<String> = [
        "--systems",
        "6",
        "--mix",
        "pure=50,ontap=20,storagegrid=15,datadomain=15",
        "--seed",
        "7",
        "--interval",
        "5s",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain(["--listen".into(), format!("127.0.0.1:{}", free_port())])
    .chain(["--inventory-out".into(), inventory.display().to_string()])
    .collect();
    start_sim(&mut procs, &sim_args, dir);
    wait_for_file(&inventory, &mut procs).await;
    let expected = inventory_ids(&inventory);
    assert_eq!(expected.len(), 6);

    // /etc/sdash/sdash.env with only addresses and paths replaced.
    let mut ports = BTreeMap::new();
    let shared_env: Vec<(String, String)> = example
        .iter()
        .map(|(k, v)| {
            let value = match k.as_str() {
                "SDASH_NATS_URL" => nats.url(),
                "SDASH_DATABASE_URL" => db.url.clone(),
                "SDASH_INVENTORY" => inventory.display().to_string(),
                k if k.ends_with("_LISTEN") => {
                    let port = free_port();
                    ports.insert(k.to_owned(), port);
                    format!("127.0.0.1:{port}")
                }
                _ => v.clone(),
            };
            (k.clone(), value)
        })
        .collect();
    let credential_sources: BTreeMap<&str, String> = [
        (
            "/etc/sdash/credentials/nats-password",
            format!("{nats_password}\n"),
        ),
        ("/etc/sdash/credentials/pgpass", pgpass_line()),
    ]
    .into_iter()
    .collect();

    let state = dir.join("state");
    for (file, bin) in [UNITS[0], UNITS[1], UNITS[2]] {
        let u = unit(&format!("deploy/systemd/{file}"));
        let instance = "c1";
        let unit_name = file.replace('@', &format!("@{instance}"));
        let creds = dir.join("credentials").join(&unit_name);
        std::fs::create_dir_all(&creds).expect("credentials dir");
        for cred in unit_values(&u, "Service", "LoadCredential") {
            let (name, source) = cred.split_once(':').expect("LoadCredential=NAME:PATH");
            let content = credential_sources.get(source).unwrap_or_else(|| {
                panic!("{file}: the test does not know credential source {source}")
            });
            write_private(&creds.join(name), content, 0o400);
        }
        for d in unit_values(&u, "Service", "StateDirectory") {
            std::fs::create_dir_all(state.join(d)).expect("state dir");
        }
        // Environment= first; EnvironmentFile= overrides it (systemd's precedence).
        let mut env = BTreeMap::new();
        for assignment in unit_values(&u, "Service", "Environment") {
            let expanded = expand_specifiers(assignment, &creds, instance, &state);
            let (k, v) = expanded.split_once('=').expect("Environment=KEY=VALUE");
            env.insert(k.to_owned(), v.to_owned());
        }
        for f in unit_values(&u, "Service", "EnvironmentFile") {
            let (optional, f) = f.strip_prefix('-').map(|f| (true, f)).unwrap_or((false, f));
            if f == "/etc/sdash/sdash.env" {
                env.extend(shared_env.iter().cloned());
            } else {
                assert!(optional, "{file}: unknown required EnvironmentFile {f}");
            }
        }
        let cwd = unit_values(&u, "Service", "WorkingDirectory")
            .first()
            .map(|w| PathBuf::from(expand_specifiers(w, &creds, instance, &state)))
            .unwrap_or_else(|| dir.to_path_buf());
        std::fs::create_dir_all(&cwd).expect("working dir");
        let exec = unit_values(&u, "Service", "ExecStart")[0];
        let mut words = exec
            .split_whitespace()
            .map(|w| expand_specifiers(w, &creds, instance, &state));
        let program = words.next().expect("ExecStart program");
        let args: Vec<String> = words.collect();
        assert_eq!(
            Path::new(&program).file_name().and_then(|n| n.to_str()),
            Some(bin)
        );
        procs.spawn(&unit_name, &binary(bin), &args, &env, &cwd, dir);
    }

    let client = http_client();
    let api = format!("http://127.0.0.1:{}", ports["SDASH_LISTEN"]);
    let items = wait_for_fleet(&api, &expected, &mut procs).await;
    // The template's instance name is the collector id.
    assert!(
        items.iter().any(|i| i["collector_id"] == "c1"),
        "no system was polled by collector c1: {:?}",
        items
            .iter()
            .map(|i| i["collector_id"].clone())
            .collect::<Vec<_>>()
    );
    for (key, path) in [
        ("SDASH_ADMIN_LISTEN", "/readyz"),
        ("SDASH_METRICS_LISTEN", "/healthz"),
        ("SDASH_LISTEN", "/readyz"),
    ] {
        let url = format!("http://127.0.0.1:{}{path}", ports[key]);
        assert_eq!(
            get_status(&client, &url).await,
            Some(200),
            "{url}\n{}",
            procs.logs()
        );
    }
    procs.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_configuration_runs_the_pipeline() {
    let doc = compose();
    let services = &doc["services"];
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();

    // /run/secrets: the compose secrets, copied from their (demo) files.
    let secrets_dir = dir.join("run-secrets");
    std::fs::create_dir_all(&secrets_dir).expect("secrets dir");
    let secret_values = compose_secret_values(&doc);
    for (name, value) in &secret_values {
        write_private(&secrets_dir.join(name), &format!("{value}\n"), 0o644);
    }
    let volumes_dir = dir.join("volumes");
    // Container paths -> test paths: secrets, and every named volume's mount point.
    let mut paths: Vec<(String, PathBuf)> = vec![("/run/secrets".into(), secrets_dir.clone())];
    for name in ["pgpass", "collector", "sim"] {
        for (source, target) in compose_volumes(&services[name]) {
            let local = volumes_dir.join(&source);
            std::fs::create_dir_all(&local).expect("volume dir");
            if !paths.iter().any(|(t, _)| *t == target) {
                paths.push((target, local));
            }
        }
    }
    let localize = |value: &str| -> String {
        for (container, local) in &paths {
            if let Some(rest) = value.strip_prefix(container.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{}{rest}", local.display());
            }
        }
        value.to_owned()
    };

    // nats: its configuration with the password the command would put in NATS_PASSWORD, its
    // monitoring port, and the health check the compose file runs.
    let nats_cmd = compose_words(&services["nats"]["command"]).join(" ");
    assert!(
        nats_cmd.contains("NATS_PASSWORD=\"$(cat /run/secrets/nats_password)\""),
        "{nats_cmd}"
    );
    let conf = read(&interpolate(s(&doc["configs"]["nats_config"]["file"])));
    assert!(conf.contains("$NATS_PASSWORD"));
    let conf_path = dir.join("nats.conf");
    std::fs::write(
        &conf_path,
        conf.replace("$NATS_PASSWORD", &secret_values["nats_password"]),
    )
    .expect("nats.conf");
    let monitor = free_port().to_string();
    let nats = NatsServer::start_with(&[
        "--config",
        conf_path.to_str().expect("utf-8"),
        "-m",
        &monitor,
    ]);
    let client = http_client();
    let nats_health = format!("http://127.0.0.1:{monitor}/healthz");
    assert_eq!(
        wait_for(Duration::from_secs(10), || async {
            get_status(&client, &nats_health)
                .await
                .filter(|s| *s == 200)
        })
        .await,
        Some(200),
        "nats /healthz"
    );
    let db = TestDatabase::new(Backend::Postgres).await;
    let mut procs = Procs::default();

    // pgpass: the one-shot service's own command.
    let pgpass_cmd = compose_words(&services["pgpass"]["command"]);
    assert_eq!(
        compose_words(&services["pgpass"]["entrypoint"]),
        ["/bin/sh", "-ec"]
    );
    let mut script = pgpass_cmd.join(" ");
    for (container, local) in &paths {
        script = script.replace(container.as_str(), local.to_str().expect("utf-8"));
    }
    let run = |script: &str| {
        let out = Command::new("/bin/sh")
            .arg("-ec")
            .arg(script)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "pgpass command failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Escaping first, on a password with the two characters pgpass escapes.
    let pgpass_file = PathBuf::from(localize("/run/sdash/pgpass"));
    write_private(&secrets_dir.join("db_password"), "a:b\\c\n", 0o644);
    run(&script);
    assert_eq!(
        std::fs::read_to_string(&pgpass_file).expect("pgpass"),
        "*:*:*:*:a\\:b\\\\c\n"
    );
    write_private(
        &secrets_dir.join("db_password"),
        &format!("{}\n", secret_values["db_password"]),
        0o644,
    );
    run(&script);
    let mode = std::fs::metadata(&pgpass_file)
        .expect("pgpass")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "sqlx ignores a pgpass file readable by others");
    // Our database ignores the demo password (trust) or has its own in the URL.
    write_private(&pgpass_file, &pgpass_line(), 0o600);

    // The simulator's own command, with its address and the volume path replaced.
    let mut sim_args = compose_words(&services["sim"]["command"]);
    assert_eq!(sim_args.remove(0), "sdash-sim");
    for i in 0..sim_args.len() {
        if i > 0 && sim_args[i - 1] == "--listen" {
            sim_args[i] = format!("127.0.0.1:{}", free_port());
        } else {
            sim_args[i] = localize(&sim_args[i]);
        }
    }
    start_sim(&mut procs, &sim_args, dir);
    let inventory = PathBuf::from(localize(
        &compose_env(&services["collector"])["SDASH_INVENTORY"],
    ));
    wait_for_file(&inventory, &mut procs).await;
    let expected = inventory_ids(&inventory);

    // writer, collector x replicas, api: their compose command and environment.
    let healthcheck = dir.join("sdash-healthcheck");
    std::fs::write(
        &healthcheck,
        dockerfile_healthcheck_script(&read("deploy/Dockerfile")),
    )
    .expect("healthcheck script");
    let mut service_env = BTreeMap::new();
    let replicas = services["collector"]["deploy"]["replicas"]
        .as_u64()
        .unwrap_or(1);
    for (name, count) in [("writer", 1), ("collector", replicas), ("api", 1)] {
        let svc = &services[name];
        for n in 1..=count {
            let mut words = compose_words(&svc["command"]);
            let program = words.remove(0);
            let args: Vec<String> = words.iter().map(|w| localize(w)).collect();
            let env: BTreeMap<String, String> = compose_env(svc)
                .into_iter()
                .map(|(k, v)| {
                    let value = if k == "SDASH_NATS_URL" {
                        assert_eq!(v, "nats://nats:4222");
                        nats.url()
                    } else if k == "SDASH_DATABASE_URL" {
                        db.url.clone()
                    } else if let Some(port) = v.strip_prefix("0.0.0.0:") {
                        assert!(port.parse::<u16>().is_ok(), "{name}: {k}={v}");
                        format!("127.0.0.1:{}", free_port())
                    } else {
                        localize(&v)
                    };
                    (k, value)
                })
                .collect();
            let label = if count > 1 {
                format!("{name}-{n}")
            } else {
                name.to_owned()
            };
            procs.spawn(&label, &binary(&program), &args, &env, dir, dir);
            service_env.insert(label, env);
        }
    }

    let api = format!("http://{}", service_env["api"]["SDASH_LISTEN"]);
    let items = wait_for_fleet(&api, &expected, &mut procs).await;
    let collectors: BTreeSet<String> = items
        .iter()
        .filter_map(|i| i["collector_id"].as_str().map(str::to_owned))
        .collect();
    assert!(!collectors.is_empty());
    // The image's HEALTHCHECK, run with each service's environment, passes.
    for (label, env) in &service_env {
        let ok = wait_for(Duration::from_secs(10), || async {
            let status = Command::new("bash")
                .arg(&healthcheck)
                .env_clear()
                .envs(env)
                .status()
                .ok()?;
            status.success().then_some(())
        })
        .await;
        assert!(
            ok.is_some(),
            "the Dockerfile's health check fails for {label}\n{}",
            procs.logs()
        );
    }
    // Every metric the documented alert rules use is served by one of the services.
    let mut exposition = String::new();
    for (label, env) in &service_env {
        let addr = env
            .get("SDASH_ADMIN_LISTEN")
            .or_else(|| env.get("SDASH_METRICS_LISTEN"))
            .or_else(|| env.get("SDASH_LISTEN"))
            .unwrap_or_else(|| panic!("{label} has no metrics address"));
        let url = format!("http://{addr}/metrics");
        let text = client
            .get(&url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        exposition.push_str(&text);
    }
    for (alert, expr) in documented_alerts() {
        for family in metric_families(&expr) {
            // Labelled families appear once they have a sample; before that, their registration.
            assert!(
                exposition.contains(&format!("# TYPE {family} ")) || registered_in_source(&family),
                "alert {alert} uses {family}, which no service exports"
            );
        }
    }
    let writer_metrics = format!(
        "http://{}/metrics",
        service_env["writer"]["SDASH_ADMIN_LISTEN"]
    );
    let metrics = client
        .get(&writer_metrics)
        .send()
        .await
        .expect("writer metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("sdash_writer_dropped_total 0"),
        "the writer dropped messages:\n{metrics}"
    );
    procs.assert_running();
}

// ---------------------------------------------------------------------------------------------
// Prometheus and Grafana (compose demo profile, deploy/compose/prometheus.yml, deploy/grafana/)
// ---------------------------------------------------------------------------------------------

/// The file a compose `configs` entry of `service` mounts at `target` (relative to the root).
fn compose_config_file(doc: &Value, service: &str, target: &str) -> String {
    let config = seq(&doc["services"][service]["configs"])
        .into_iter()
        .find(|c| s(&c["target"]) == target)
        .unwrap_or_else(|| panic!("{service} mounts no config on {target}"));
    let file = interpolate(s(&doc["configs"][s(&config["source"])]["file"]));
    assert!(
        root().join(&file).is_file(),
        "{service}: config {} is {file}, which does not exist",
        s(&config["source"])
    );
    file.trim_start_matches("./").to_owned()
}

/// Every metric family `/metrics/fleet` exports: the `# TYPE` lines of the API's own rendering
/// of a system with every field set (so every family has a sample).
fn fleet_metric_families() -> BTreeSet<String> {
    let row = sdash_api::fleet::SystemRow {
        id: "fa-1".into(),
        inv_vendor: Some("pure".into()),
        inv_updated_at: Some(1),
        status: Some("online".into()),
        hardware: Some("ok".into()),
        cluster: Some("ok".into()),
        model: Some("FA-X70".into()),
        version: Some("6.7.3".into()),
        total_bytes: Some(100),
        used_bytes: Some(60),
        free_bytes: Some(40),
        data_reduction: Some(3.5),
        observed_at: Some(1_700_000_000_000),
        last_online_at: Some(1_700_000_000_000),
        provisioned_bytes: Some(500),
        pools: Some(r#"[{"kind":"aggregate","name":"aggr1","total_bytes":100,"used_bytes":60}]"#.into()),
        performance: Some(
            r#"{"read_iops":1,"write_iops":2,"read_latency_us":3,"write_latency_us":4,"read_bytes_per_s":5,"write_bytes_per_s":6}"#
                .into(),
        ),
        ..Default::default()
    };
    let entries = [sdash_api::fleet::Entry::new(row)];
    let text = sdash_api::fleet_metrics::render(
        &entries,
        &[[1; 4]],
        &sdash_api::fleet_metrics::TagLabels::default(),
    )
    .body(1_700_000_060_000);
    let families: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    for family in &families {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{family}{{"))),
            "the rendering has no sample of {family}"
        );
    }
    families
}

#[test]
fn compose_demo_runs_prometheus_and_grafana() {
    let doc = compose();
    let services = &doc["services"];
    for (name, image) in [
        ("prometheus", "prom/prometheus:"),
        ("grafana", "grafana/grafana:"),
    ] {
        let svc = &services[name];
        assert!(
            s(&svc["image"]).starts_with(image),
            "{name} runs {image}*: {:?}",
            svc["image"]
        );
        assert!(svc.get("build").is_none(), "{name} is an upstream image");
        assert!(
            !compose_words(&svc["healthcheck"]["test"]).is_empty(),
            "{name} has a health check"
        );
        let ports: Vec<String> = seq(&svc["ports"])
            .iter()
            .map(|p| interpolate(s(p)))
            .collect();
        assert!(
            !ports.is_empty() && ports.iter().all(|p| p.starts_with("127.0.0.1:")),
            "{name} publishes on loopback only: {ports:?}"
        );
    }
    let command = compose_words(&services["prometheus"]["command"]);
    assert!(
        command.contains(&"--config.file=/etc/prometheus/prometheus.yml".to_owned()),
        "{command:?}"
    );
    let prometheus_file = compose_config_file(&doc, "prometheus", "/etc/prometheus/prometheus.yml");
    assert_eq!(prometheus_file, "deploy/compose/prometheus.yml");
    let storage = command
        .iter()
        .find_map(|w| w.strip_prefix("--storage.tsdb.path="))
        .expect("--storage.tsdb.path");
    assert!(
        compose_volumes(&services["prometheus"])
            .iter()
            .any(|(_, target)| target == storage),
        "Prometheus keeps its data on a volume"
    );
    assert_eq!(
        s(&services["grafana"]["depends_on"]["prometheus"]["condition"]),
        "service_healthy"
    );

    // The Prometheus configuration scrapes the fleet metrics of the compose API, and the pipeline
    // metrics of every sdash service on the ports their environment gives.
    let config = &yaml_docs(&read(&prometheus_file), &prometheus_file)[0];
    let api_port = compose_env(&services["api"])["SDASH_LISTEN"]
        .rsplit(':')
        .next()
        .map(str::to_owned)
        .expect("api port");
    let jobs = seq(&config["scrape_configs"]);
    let job = |name: &str| {
        jobs.iter()
            .find(|j| s(&j["job_name"]) == name)
            .cloned()
            .unwrap_or_else(|| panic!("{prometheus_file} has no job {name}"))
    };
    let targets = |j: &Value| -> Vec<String> {
        seq(&j["static_configs"])
            .iter()
            .flat_map(|c| seq(&c["targets"]))
            .map(|t| s(&t).to_owned())
            .collect()
    };
    let fleet = job("sdash-fleet");
    assert_eq!(s(&fleet["metrics_path"]), "/metrics/fleet");
    assert_eq!(targets(&fleet), [format!("api:{api_port}")]);
    assert_eq!(targets(&job("sdash-api")), [format!("api:{api_port}")]);
    let writer_port = compose_env(&services["writer"])["SDASH_ADMIN_LISTEN"]
        .rsplit(':')
        .next()
        .map(str::to_owned)
        .expect("writer admin port");
    assert_eq!(
        targets(&job("sdash-writer")),
        [format!("writer:{writer_port}")]
    );
    let collector_port = compose_env(&services["collector"])["SDASH_METRICS_LISTEN"]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u64>().ok())
        .expect("collector metrics port");
    let dns = &seq(&job("sdash-collector")["dns_sd_configs"])[0];
    assert_eq!(
        seq(&dns["names"]),
        [Value::from("collector")],
        "every replica"
    );
    assert_eq!(dns["port"].as_u64(), Some(collector_port));

    // Grafana: the datasource points at the compose Prometheus, the dashboard provider at the
    // folder the dashboard is mounted in.
    let datasources_file = compose_config_file(
        &doc,
        "grafana",
        "/etc/grafana/provisioning/datasources/sdash.yml",
    );
    let datasources = &yaml_docs(&read(&datasources_file), &datasources_file)[0];
    assert_eq!(datasources["apiVersion"].as_u64(), Some(1));
    let source = &seq(&datasources["datasources"])[0];
    assert_eq!(s(&source["type"]), "prometheus");
    assert_eq!(s(&source["url"]), "http://prometheus:9090");
    let providers_file = compose_config_file(
        &doc,
        "grafana",
        "/etc/grafana/provisioning/dashboards/sdash.yml",
    );
    let providers = &yaml_docs(&read(&providers_file), &providers_file)[0];
    assert_eq!(providers["apiVersion"].as_u64(), Some(1));
    let provider = &seq(&providers["providers"])[0];
    assert_eq!(s(&provider["type"]), "file");
    let folder = s(&provider["options"]["path"]).to_owned();
    let dashboards: Vec<String> = seq(&services["grafana"]["configs"])
        .iter()
        .map(|c| s(&c["target"]).to_owned())
        .filter(|t| t.ends_with(".json"))
        .collect();
    assert!(!dashboards.is_empty(), "grafana mounts no dashboard");
    for target in &dashboards {
        assert_eq!(
            Path::new(target).parent().and_then(Path::to_str),
            Some(folder.as_str()),
            "the provider reads {folder}, the dashboard is mounted at {target}"
        );
        assert_eq!(
            compose_config_file(&doc, "grafana", target),
            "deploy/grafana/dashboards/sdash-fleet.json"
        );
    }
}

/// `promtool check config` (Debian's prometheus package) accepts the compose demo's Prometheus
/// configuration; a missing promtool fails the test.
#[test]
fn prometheus_config_passes_promtool() {
    let promtool = sdash_harness::prometheus::promtool_binary();
    let file = root().join("deploy/compose/prometheus.yml");
    let out = Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    assert!(
        out.status.success(),
        "promtool check config {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn grafana_dashboard_is_valid_and_uses_exported_metrics() {
    let file = "deploy/grafana/dashboards/sdash-fleet.json";
    let dash: serde_json::Value =
        serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
    for key in ["uid", "title"] {
        assert!(
            dash[key].as_str().is_some_and(|v| !v.is_empty()),
            "{file}: {key}"
        );
    }
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "{file}: schemaVersion"
    );
    // The Prometheus datasource is a variable, so the dashboard imports into any Grafana.
    let variables = dash["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let datasource = variables
        .iter()
        .find(|v| v["type"] == "datasource")
        .unwrap_or_else(|| panic!("{file}: no datasource variable"));
    assert_eq!(datasource["query"], "prometheus");
    let ds_ref = serde_json::json!({
        "type": "prometheus",
        "uid": format!("${{{}}}", datasource["name"].as_str().unwrap_or_default()),
    });
    let panels = dash["panels"].as_array().cloned().unwrap_or_default();
    let known = [
        "row",
        "stat",
        "timeseries",
        "table",
        "piechart",
        "bargauge",
        "gauge",
    ];
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for v in &variables {
        if let Some(q) = v["definition"].as_str() {
            exprs.push((format!("variable {}", v["name"]), q.to_owned()));
        }
    }
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default().to_owned();
        let kind = p["type"].as_str().unwrap_or_default();
        assert!(known.contains(&kind), "{title}: panel type {kind}");
        assert!(!title.is_empty(), "a panel without a title");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "{title}: id twice"
        );
        // Inside the 24-column grid, and no two panels on one cell.
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().expect("x"),
            g["y"].as_u64().expect("y"),
            g["w"].as_u64().expect("w"),
            g["h"].as_u64().expect("h"),
        );
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {g}");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{title} overlaps another panel at {cx},{cy}"
                );
            }
        }
        if kind == "row" {
            continue;
        }
        assert_eq!(p["datasource"], ds_ref, "{title}: datasource");
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(t["datasource"], ds_ref, "{title}: target datasource");
            assert!(t["refId"].as_str().is_some(), "{title}: refId");
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.is_empty(), "{title}: empty expr");
            exprs.push((title.clone(), expr.to_owned()));
        }
    }
    // Fleet, capacity, alerts, freshness and performance each have panels.
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        rows,
        [
            "Fleet",
            "Capacity",
            "Alerts",
            "Freshness",
            "Performance and pools"
        ]
    );
    let exported = fleet_metric_families();
    let mut used = BTreeSet::new();
    for (title, expr) in &exprs {
        let families = metric_families(expr);
        assert!(!families.is_empty(), "{title}: {expr} uses no sdash metric");
        for family in families {
            assert!(
                exported.contains(&family),
                "{title}: {expr} uses {family}, which /metrics/fleet does not export ({exported:?})"
            );
            used.insert(family);
        }
    }
    // The dashboard shows every family the API exports but the info one and the timestamp
    // (the age family shows the same).
    let unused: Vec<&String> = exported
        .iter()
        .filter(|f| !used.contains(*f))
        .filter(|f| {
            !matches!(
                f.as_str(),
                "sdash_system_info" | "sdash_system_last_successful_poll_timestamp_seconds"
            )
        })
        .collect();
    assert!(unused.is_empty(), "no panel shows {unused:?}");
}

// ---------------------------------------------------------------------------------------------
// The notifier (sdash-notify) in compose, Kubernetes and systemd
// ---------------------------------------------------------------------------------------------

/// `sdash-notify --check-config` on `config`: reads it and every secret and CA file it names.
fn notify_check_config(config: &Path) -> (bool, String) {
    let out = Command::new(binary("sdash-notify"))
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run sdash-notify --check-config");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn notifier_deploy_files() {
    // compose: the notify service runs sdash-notify with its config mounted, its own admin port
    // and the NATS password as a secret file; the demo config is valid and names the demo
    // Alertmanager.
    let doc = compose();
    let services = &doc["services"];
    let notify = &services["notify"];
    assert_eq!(compose_words(&notify["command"]), ["sdash-notify"]);
    let env = compose_env(notify);
    assert_eq!(
        env.get("SDASH_ADMIN_LISTEN").map(String::as_str),
        Some("0.0.0.0:9104")
    );
    assert_eq!(
        env.get("SDASH_NATS_PASSWORD_FILE").map(String::as_str),
        Some("/run/secrets/nats_password")
    );
    let config_path = env.get("SDASH_NOTIFY_CONFIG").expect("SDASH_NOTIFY_CONFIG");
    let (source, target) = compose_volumes(notify)
        .into_iter()
        .find(|(_, target)| config_path.starts_with(&format!("{target}/")))
        .expect("the notifier's config folder is mounted");
    let host_config = root()
        .join(source.trim_start_matches("./"))
        .join(config_path.trim_start_matches(&format!("{target}/")));
    let (ok, text) = notify_check_config(&host_config);
    assert!(ok, "{}: {text}", host_config.display());
    let toml_text = std::fs::read_to_string(&host_config).expect("compose notify.toml");
    assert!(
        toml_text.contains("url = \"http://alertmanager:9093\""),
        "the demo config posts to the compose Alertmanager"
    );
    assert!(services["alertmanager"].get("image").is_some());
    let profiles: Vec<String> = seq(&notify["profiles"])
        .iter()
        .map(|p| s(p).to_owned())
        .collect();
    assert!(profiles.contains(&"demo".to_owned()), "{profiles:?}");

    // Dockerfile: builds and ships the binary.
    let dockerfile = read("deploy/Dockerfile");
    assert!(dockerfile.contains("--bin sdash-notify"));
    assert!(dockerfile.contains("target/release/sdash-notify"));

    // Kubernetes: one replica, recreated (never two consuming at once), probes on its admin port,
    // a config that passes --check-config once its secret files exist where the pod mounts them.
    let docs = k8s_docs();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|(_, d)| s(&d["kind"]) == kind && s(&d["metadata"]["name"]) == name)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
    };
    let deployment = find("Deployment", "sdash-notify");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    assert_eq!(s(&deployment["spec"]["strategy"]["type"]), "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &seq(&pod["containers"])[0];
    assert_eq!(compose_words(&container["args"]), ["sdash-notify"]);
    assert_eq!(
        s(&container["readinessProbe"]["httpGet"]["path"]),
        "/readyz"
    );
    assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(9104));
    let secret = find("Secret", "sdash-notify-credentials");
    let secret_keys = keys(&secret["stringData"]);
    let mount = seq(&container["volumeMounts"])
        .into_iter()
        .find(|m| s(&m["name"]) == "notify-secrets")
        .map(|m| s(&m["mountPath"]).to_owned())
        .expect("the notifier's secrets are mounted");
    let config = find("ConfigMap", "sdash-notify");
    let k8s_toml = s(&config["data"]["notify.toml"]).to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    for key in &secret_keys {
        std::fs::write(dir.path().join(key), "placeholder\n").expect("write secret");
    }
    for line in k8s_toml.lines().filter(|l| l.contains("_file")) {
        let path = line.split('"').nth(1).unwrap_or("");
        let name = path
            .strip_prefix(&format!("{mount}/"))
            .unwrap_or_else(|| panic!("{line}: not under the secret mount {mount}"));
        assert!(
            secret_keys.contains(&name.to_owned()),
            "{line}: no key {name} in sdash-notify-credentials"
        );
    }
    let local = write_notify_toml(
        dir.path(),
        &k8s_toml.replace(&format!("{mount}/"), &format!("{}/", dir.path().display())),
    );
    let (ok, text) = notify_check_config(&local);
    assert!(ok, "deploy/k8s/notify.yaml notify.toml: {text}");

    // systemd: the binary, the shared settings, the credentials its config names, the check
    // before start, its own admin port, the same hardening as the other units.
    let u = unit("deploy/systemd/sdash-notify.service");
    let one = |key: &str| service_value(&u, "sdash-notify.service", key);
    let exec = one("ExecStart");
    assert_eq!(
        exec.split_whitespace().next(),
        Some("/usr/local/bin/sdash-notify")
    );
    assert!(exec.contains("--admin-listen 127.0.0.1:9104"), "{exec}");
    assert_eq!(
        one("ExecStartPre"),
        "/usr/local/bin/sdash-notify --check-config"
    );
    let settings = [("User", "sdash")]
        .into_iter()
        .chain(SERVICE_HARDENING)
        .chain([("EnvironmentFile", "/etc/sdash/sdash.env")]);
    for (key, want) in settings {
        assert_eq!(one(key), want, "sdash-notify.service: {key}");
    }
    let creds = unit_values(&u, "Service", "LoadCredential");
    for name in ["nats-password", "webhook-secret", "smtp-password"] {
        assert!(
            creds.contains(&format!("{name}:/etc/sdash/credentials/{name}").as_str()),
            "sdash-notify.service: credential {name}"
        );
    }
    let env = unit_values(&u, "Service", "Environment");
    assert!(env.contains(&"SDASH_NATS_PASSWORD_FILE=%d/nats-password"));
    assert!(env.contains(&"SDASH_NOTIFY_CONFIG=/etc/sdash/notify.toml"));
}

fn write_notify_toml(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("notify.toml");
    std::fs::write(&path, text).expect("write notify.toml");
    path
}
