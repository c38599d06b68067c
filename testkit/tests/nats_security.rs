//! NATS authentication and TLS, the way every sdash service uses them: `sdash_service::bus::connect`
//! with `NatsArgs` (the flags `--nats-user`, `--nats-password-file`, `--nats-token-file`,
//! `--nats-ca-file`, `--nats-client-cert`, `--nats-client-key`), against real nats-servers with a
//! private CA made here. Right settings connect; a wrong password or token, a missing credential,
//! an untrusted CA or a missing client certificate are refused. Then the writer and a collector
//! binaries run through TLS with a password, end to end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::ConnectErrorKind;
use sdash_harness::{NatsServer, free_port, wait_for};
use sdash_service::bus::{self, BusError, NatsArgs, StreamArgs};

/// A private CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a
/// second CA that signed nothing of ours.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    other_ca: PathBuf,
}

fn ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("CA key"))
        .expect("CA")
}

fn leaf(
    issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write PEM");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    };
    let ca_issuer = ca("sdash test CA");
    let (server_pem, server_key) = leaf(
        &ca_issuer,
        &["localhost", "127.0.0.1"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_pem, client_key) = leaf(
        &ca_issuer,
        &["sdash-collector"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let other = ca("some other CA");
    Pki {
        ca: write("ca.pem", &ca_issuer.pem()),
        server_cert: write("server.pem", &server_pem),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_pem),
        client_key: write("client.key", &client_key),
        other_ca: write("other-ca.pem", &other.pem()),
        _dir: dir,
    }
}

fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

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

fn tls_args(server: &NatsServer, pki: &Pki) -> NatsArgs {
    NatsArgs {
        url: format!("tls://127.0.0.1:{}", server.port()),
        ca_file: Some(pki.ca.clone()),
        ..NatsArgs::plain("")
    }
}

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Connects like a service does (no retry of the first connection, so failures show).
async fn connect(args: &NatsArgs) -> Result<async_nats::Client, BusError> {
    tokio::time::timeout(
        Duration::from_secs(20),
        bus::connect(args, "sdash security test", false),
    )
    .await
    .expect("connect answered within 20 s")
}

/// A connection that works end to end: publish, flush, and the JetStream stream set up.
async fn assert_works(args: &NatsArgs, what: &str) {
    let client = connect(args)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    client
        .publish("sdash.test.ping", "ping".into())
        .await
        .unwrap_or_else(|e| panic!("{what}: publish: {e}"));
    client
        .flush()
        .await
        .unwrap_or_else(|e| panic!("{what}: flush: {e}"));
    let js = async_nats::jetstream::new(client);
    bus::ensure_stream(&js, &StreamArgs::default())
        .await
        .unwrap_or_else(|e| panic!("{what}: stream: {e}"));
}

fn connect_kind(result: Result<async_nats::Client, BusError>, what: &str) -> ConnectErrorKind {
    connect_error(result, what).0
}

/// The kind and the full text (sources included) of a refused connection.
fn connect_error(
    result: Result<async_nats::Client, BusError>,
    what: &str,
) -> (ConnectErrorKind, String) {
    match result {
        Ok(_) => panic!("{what}: connected, but must be refused"),
        Err(BusError::Connect { source, .. }) => {
            let mut text = source.to_string();
            let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&source);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            (source.kind(), text)
        }
        Err(other) => panic!("{what}: expected a connection error, got {other}"),
    }
}

#[tokio::test]
async fn tls_with_user_and_password() {
    init();
    let pki = pki();
    let password = random_secret();
    let server = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        pki.server_cert.to_str().expect("utf-8"),
        "--tlskey",
        pki.server_key.to_str().expect("utf-8"),
        "--user",
        "sdash",
        "--pass",
        &password,
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let good = secret_file(dir.path(), "nats-password", &password);
    let wrong = secret_file(dir.path(), "wrong-password", "not-the-password");

    let right = NatsArgs {
        user: Some("sdash".into()),
        password_file: Some(good.clone()),
        ..tls_args(&server, &pki)
    };
    assert_works(&right, "tls:// with CA, user and password").await;
    // nats:// plus a CA file turns TLS on as well.
    let plain_scheme = NatsArgs {
        url: server.url(),
        ..right.clone()
    };
    assert_works(&plain_scheme, "nats:// with CA, user and password").await;

    let bad_password = NatsArgs {
        password_file: Some(wrong),
        ..right.clone()
    };
    assert_eq!(
        connect_kind(connect(&bad_password).await, "wrong password"),
        ConnectErrorKind::AuthorizationViolation
    );
    let no_password = NatsArgs {
        password_file: None,
        ..right.clone()
    };
    assert_eq!(
        connect_kind(connect(&no_password).await, "no password"),
        ConnectErrorKind::AuthorizationViolation
    );
    let no_user = NatsArgs {
        user: None,
        password_file: None,
        ..right.clone()
    };
    assert_eq!(
        connect_kind(connect(&no_user).await, "no credentials"),
        ConnectErrorKind::AuthorizationViolation
    );

    let untrusted = NatsArgs {
        ca_file: Some(pki.other_ca.clone()),
        ..right.clone()
    };
    let (kind, text) = connect_error(connect(&untrusted).await, "untrusted CA");
    assert!(
        matches!(kind, ConnectErrorKind::Tls | ConnectErrorKind::Io),
        "untrusted CA: {kind:?} {text}"
    );
    assert!(
        text.contains("certificate"),
        "untrusted CA refused for another reason: {text}"
    );
    // Without our CA the system roots are used, and they do not know the private CA.
    let system_roots = NatsArgs {
        ca_file: None,
        ..right.clone()
    };
    assert!(
        connect(&system_roots).await.is_err(),
        "a private CA must not be trusted by default"
    );

    let missing = NatsArgs {
        password_file: Some(dir.path().join("absent")),
        ..right.clone()
    };
    assert!(
        matches!(connect(&missing).await, Err(BusError::Secret { .. })),
        "a missing password file is an error"
    );
}

#[tokio::test]
async fn token_authentication() {
    init();
    let token = random_secret();
    let server = NatsServer::start_with(&["--auth", &token]);
    let dir = tempfile::tempdir().expect("temp dir");
    let right = NatsArgs {
        token_file: Some(secret_file(dir.path(), "token", &token)),
        ..NatsArgs::plain(&server.url())
    };
    assert_works(&right, "right token").await;
    let wrong = NatsArgs {
        token_file: Some(secret_file(dir.path(), "wrong", "nope")),
        ..right.clone()
    };
    assert_eq!(
        connect_kind(connect(&wrong).await, "wrong token"),
        ConnectErrorKind::AuthorizationViolation
    );
    let none = NatsArgs::plain(&server.url());
    assert_eq!(
        connect_kind(connect(&none).await, "no token"),
        ConnectErrorKind::AuthorizationViolation
    );
}

#[tokio::test]
async fn mutual_tls() {
    init();
    let pki = pki();
    let server = NatsServer::start_with(&[
        "--tlsverify",
        "--tlscert",
        pki.server_cert.to_str().expect("utf-8"),
        "--tlskey",
        pki.server_key.to_str().expect("utf-8"),
        "--tlscacert",
        pki.ca.to_str().expect("utf-8"),
    ]);
    let with_cert = NatsArgs {
        client_cert: Some(pki.client_cert.clone()),
        client_key: Some(pki.client_key.clone()),
        ..tls_args(&server, &pki)
    };
    assert_works(&with_cert, "client certificate").await;
    let without = tls_args(&server, &pki);
    assert!(
        connect(&without).await.is_err(),
        "a client without a certificate must be refused"
    );
    let half = NatsArgs {
        client_key: None,
        ..with_cert.clone()
    };
    assert!(matches!(
        connect(&half).await,
        Err(BusError::ClientCertPair)
    ));
}

// ---------------------------------------------------------------------------------------------
// Decentralized authentication: a credentials file (user JWT + nkey seed)
// ---------------------------------------------------------------------------------------------

/// A signed NATS JWT (`ed25519-nkey`) with `claims` completed by the standard fields.
fn nats_jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "jti": random_secret().to_ascii_uppercase(),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let payload = b64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = issuer.sign(signing_input.as_bytes()).expect("sign JWT");
    format!("{signing_input}.{}", b64.encode(signature))
}

fn creds_file(dir: &Path, name: &str, jwt: &str, user: &nkeys::KeyPair) -> PathBuf {
    let seed = user.seed().expect("user seed");
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    );
    secret_file(dir, name, &text)
}

fn user_claims() -> serde_json::Value {
    serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2})
}

#[tokio::test]
async fn credentials_file_authentication() {
    init();
    let dir = tempfile::tempdir().expect("temp dir");
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let operator_jwt = nats_jwt(
        &operator,
        &operator.public_key(),
        "sdash-test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
        "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = nats_jwt(
        &operator,
        &account.public_key(),
        "SDASH",
        serde_json::json!({"limits": unlimited, "default_permissions": {"pub": {}, "sub": {}}, "type": "account", "version": 2}),
    );
    // JetStream needs a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = nats_jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2}),
    );
    let config = dir.path().join("operator.conf");
    std::fs::write(
        &config,
        format!(
            "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {sys}: {system_jwt}\n  {acc}: {account_jwt}\n}}\n",
            sys = system.public_key(),
            acc = account.public_key(),
        ),
    )
    .expect("write config");
    let server = NatsServer::start_with(&["-c", config.to_str().expect("utf-8")]);

    // A user of the account: its JWT signed by the account key.
    let user = nkeys::KeyPair::new_user();
    let user_jwt = nats_jwt(&account, &user.public_key(), "sdash-writer", user_claims());
    let right = NatsArgs {
        creds_file: Some(creds_file(dir.path(), "sdash.creds", &user_jwt, &user)),
        ..NatsArgs::plain(&server.url())
    };
    assert_works(&right, "credentials file").await;

    // A user signed by an account the operator never issued.
    let rogue_account = nkeys::KeyPair::new_account();
    let rogue = nkeys::KeyPair::new_user();
    let rogue_jwt = nats_jwt(&rogue_account, &rogue.public_key(), "rogue", user_claims());
    let untrusted = NatsArgs {
        creds_file: Some(creds_file(dir.path(), "rogue.creds", &rogue_jwt, &rogue)),
        ..NatsArgs::plain(&server.url())
    };
    assert_eq!(
        connect_kind(connect(&untrusted).await, "untrusted account"),
        ConnectErrorKind::AuthorizationViolation
    );
    // The right JWT with another key's seed cannot sign the server's nonce.
    let stolen = NatsArgs {
        creds_file: Some(creds_file(
            dir.path(),
            "stolen.creds",
            &user_jwt,
            &nkeys::KeyPair::new_user(),
        )),
        ..NatsArgs::plain(&server.url())
    };
    assert!(
        connect(&stolen).await.is_err(),
        "a JWT without its seed must be refused"
    );
    // No credentials at all.
    assert!(connect(&NatsArgs::plain(&server.url())).await.is_err());
    let missing = NatsArgs {
        creds_file: Some(dir.path().join("absent.creds")),
        ..NatsArgs::plain(&server.url())
    };
    assert!(matches!(
        connect(&missing).await,
        Err(BusError::Secret { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The services themselves
// ---------------------------------------------------------------------------------------------

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --bins)",
        path.display()
    );
    path
}

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &str, args: &[String], env: &BTreeMap<&str, String>, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let mut cmd = Command::new(binary(name));
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("SDASH_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http_get(url: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let resp = client.get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_and_collector_over_tls_with_a_password() {
    init();
    let pki = pki();
    let password = random_secret();
    let server = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        pki.server_cert.to_str().expect("utf-8"),
        "--tlskey",
        pki.server_key.to_str().expect("utf-8"),
        "--user",
        "sdash",
        "--pass",
        &password,
    ]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let pw_file = secret_file(dir, "nats-password", &password);
    let url = format!("tls://127.0.0.1:{}", server.port());

    // The writer with the flags.
    let admin = format!("127.0.0.1:{}", free_port());
    let writer = Proc::start(
        "sdash-writer",
        &[
            "--nats-url".into(),
            url.clone(),
            "--nats-ca-file".into(),
            pki.ca.display().to_string(),
            "--nats-user".into(),
            "sdash".into(),
            "--nats-password-file".into(),
            pw_file.display().to_string(),
            "--database-url".into(),
            format!("sqlite://{}", dir.join("sdash.db").display()),
            "--admin-listen".into(),
            admin.clone(),
        ],
        &BTreeMap::new(),
        dir,
    );
    let ready = wait_for(Duration::from_secs(30), || async {
        http_get(&format!("http://{admin}/readyz"))
            .await
            .filter(|(s, _)| *s == 200)
    })
    .await;
    assert!(
        ready.is_some(),
        "the writer did not become ready over TLS with a password\n{}",
        writer.log()
    );

    // A collector with the environment twins, polling a simulated fleet.
    let sim_dir = dir.join("sim");
    std::fs::create_dir_all(&sim_dir).expect("sim dir");
    let inventory = sim_dir.join("inventory.toml");
    let _sim = Proc::start(
        "sdash-sim",
        &[
            "--systems".into(),
            "3".into(),
            "--interval".into(),
            "2s".into(),
            "--listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--inventory-out".into(),
            inventory.display().to_string(),
        ],
        &BTreeMap::new(),
        dir,
    );
    let written = wait_for(Duration::from_secs(20), || async {
        std::fs::metadata(&inventory)
            .is_ok_and(|m| m.len() > 0)
            .then_some(())
    })
    .await;
    assert!(written.is_some(), "sdash-sim wrote no inventory");
    let env: BTreeMap<&str, String> = [
        ("SDASH_NATS_URL", url.clone()),
        ("SDASH_NATS_CA_FILE", pki.ca.display().to_string()),
        ("SDASH_NATS_USER", "sdash".into()),
        ("SDASH_NATS_PASSWORD_FILE", pw_file.display().to_string()),
        ("SDASH_INVENTORY", inventory.display().to_string()),
        ("SDASH_COLLECTOR_ID", "tls-1".into()),
    ]
    .into_iter()
    .collect();
    let collector = Proc::start("sdash-collector", &[], &env, dir);

    // Their records reach the database: the writer counts committed messages.
    let stored = wait_for(Duration::from_secs(60), || async {
        let (_, body) = http_get(&format!("http://{admin}/metrics")).await?;
        metric(&body, "sdash_writer_messages_total").filter(|n| *n >= 3.0)
    })
    .await;
    assert!(
        stored.is_some(),
        "no records arrived through TLS\nwriter:\n{}\ncollector:\n{}",
        writer.log(),
        collector.log()
    );

    // The same writer with a wrong password never becomes ready, and says why.
    let wrong = secret_file(dir, "wrong", "not-the-password");
    let admin2 = format!("127.0.0.1:{}", free_port());
    let refused = Proc::start(
        "sdash-writer",
        &[
            "--nats-url".into(),
            url,
            "--nats-ca-file".into(),
            pki.ca.display().to_string(),
            "--nats-user".into(),
            "sdash".into(),
            "--nats-password-file".into(),
            wrong.display().to_string(),
            "--database-url".into(),
            format!("sqlite://{}", dir.join("other.db").display()),
            "--admin-listen".into(),
            admin2.clone(),
        ],
        &BTreeMap::new(),
        dir,
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = http_get(&format!("http://{admin2}/readyz"))
        .await
        .map(|(s, _)| s);
    assert_ne!(
        status,
        Some(200),
        "a writer with a wrong NATS password must not be ready"
    );
    let log = refused.log().to_ascii_lowercase();
    assert!(
        log.contains("authorization") || log.contains("auth"),
        "the refusal is logged:\n{log}"
    );
    assert!(
        !log.contains("not-the-password") && !writer.log().contains(&password),
        "a password appears in a log"
    );
}
