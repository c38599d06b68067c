//! What the notifier's tests run against: a real Alertmanager (Debian's
//! `prometheus-alertmanager`), a webhook receiver and an SMTP server with STARTTLS that record
//! what they get, and helpers to publish changes and start the notifier.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdash_proto::subjects::Kind;
use sdash_proto::{ChangeKind, ChangeRecord, Envelope, Vendor};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

// ----- Alertmanager -----

pub use sdash_harness::alertmanager_binary;

/// A real Alertmanager on a free port with a temporary storage directory, killed on drop.
pub struct Alertmanager {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let config = dir.path().join("alertmanager.yml");
        // One receiver that notifies nobody: the test reads the alerts through the API.
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
        )
        .unwrap_or_else(|e| panic!("write config: {e}"));
        let log = std::fs::File::create(dir.path().join("alertmanager.log"))
            .unwrap_or_else(|e| panic!("log file: {e}"));
        let port = sdash_harness::free_port();
        let binary = alertmanager_binary();
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip cluster: nothing else on the machine to talk to, no port to clash.
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut am = Alertmanager { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = am.child.try_wait() {
                panic!("alertmanager exited ({status}):\n{}", am.log());
            }
            let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager did not listen:\n{}",
                am.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        am
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// The alerts Alertmanager holds as active (`GET /api/v2/alerts`); resolved ones are not
    /// listed. `None` when it does not answer.
    pub async fn alerts(&self) -> Option<Vec<Value>> {
        let url = format!("{}/api/v2/alerts", self.url());
        let response = reqwest::get(&url).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Vec<Value>>().await.ok()
    }

    /// The active alerts whose labels include every pair of `labels`.
    pub async fn alerts_with(&self, labels: &[(&str, &str)]) -> Vec<Value> {
        self.alerts()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|a| labels.iter().all(|(k, v)| a["labels"][k] == *v))
            .collect()
    }

    /// Waits up to `timeout` for exactly one active alert with these labels and returns it.
    pub async fn wait_for_alert(
        &self,
        labels: &[(&str, &str)],
        timeout: Duration,
    ) -> Option<Value> {
        sdash_harness::wait_for(timeout, || async {
            let found = self.alerts_with(labels).await;
            (found.len() == 1).then(|| found[0].clone())
        })
        .await
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- webhook receiver -----

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The change ids of the payload.
    pub fn change_ids(&self) -> Vec<String> {
        self.json()["changes"]
            .as_array()
            .map(|changes| {
                changes
                    .iter()
                    .filter_map(|c| c["change_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An HTTP server recording every POST; answers with the statuses of `script` in turn, then
/// 200.
pub struct WebhookSink {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<WebhookRequest>>>,
    script: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        use warp::Filter;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Vec::<u16>::new()));
        let (rec, scr) = (requests.clone(), script.clone());
        let route = warp::post()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |headers: warp::http::HeaderMap, body: bytes::Bytes| {
                let status = {
                    let mut s = scr.lock().unwrap_or_else(|p| p.into_inner());
                    if s.is_empty() { 200 } else { s.remove(0) }
                };
                if status == 200 {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    rec.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(WebhookRequest {
                            headers,
                            body: body.to_vec(),
                        });
                }
                warp::reply::with_status(
                    "",
                    warp::http::StatusCode::from_u16(status).unwrap_or(warp::http::StatusCode::OK),
                )
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind webhook sink: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("webhook address: {e}"));
        let task = tokio::spawn(warp::serve(route).incoming(listener).run());
        WebhookSink {
            addr,
            requests,
            script,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The requests accepted (answered 200) so far.
    pub fn requests(&self) -> Vec<WebhookRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits up to 10 s for the request carrying exactly this one change.
    pub async fn request_for(&self, change_id: &str) -> Option<WebhookRequest> {
        sdash_harness::wait_for(Duration::from_secs(10), || async {
            self.requests()
                .into_iter()
                .find(|r| r.change_ids() == [change_id])
        })
        .await
    }

    /// The next requests get these statuses (and are not recorded unless 200).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(statuses);
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ----- SMTP server with STARTTLS -----

/// One message the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether the session was upgraded with STARTTLS before MAIL.
    pub tls: bool,
    /// `user\0password` of AUTH PLAIN, or user and password of AUTH LOGIN.
    pub auth: Option<(String, String)>,
}

impl Email {
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_owned()
    }
}

/// A minimal SMTP server: STARTTLS (with a certificate from its own CA, [`SmtpSink::ca_pem`])
/// required before AUTH and MAIL, AUTH PLAIN/LOGIN recorded, every message recorded.
pub struct SmtpSink {
    pub addr: SocketAddr,
    ca_pem: String,
    emails: Arc<Mutex<Vec<Email>>>,
    task: tokio::task::JoinHandle<()>,
}

fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    fn err<T>(e: rcgen::Error) -> T {
        panic!("rcgen: {e}")
    }
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(err);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sdash-notify test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap_or_else(err);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(err);
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap_or_else(err);
    let key = rcgen::KeyPair::generate().unwrap_or_else(err);
    let cert = params.signed_by(&key, &*ca).unwrap_or_else(err);
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key_der)
        .unwrap_or_else(|e| panic!("{e}"));
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}

enum Next {
    StartTls,
    Quit,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let (acceptor, ca_pem) = tls_acceptor();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind smtp sink: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("smtp address: {e}"));
        let emails = Arc::new(Mutex::new(Vec::new()));
        let store = emails.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, store) = (acceptor.clone(), store.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        session(stream, acceptor, store),
                    )
                    .await;
                });
            }
        });
        SmtpSink {
            addr,
            ca_pem,
            emails,
            task,
        }
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn emails(&self) -> Vec<Email> {
        self.emails
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    store: Arc<Mutex<Vec<Email>>>,
) -> std::io::Result<()> {
    let mut plain = BufReader::new(stream);
    plain
        .get_mut()
        .write_all(b"220 localhost sink ESMTP\r\n")
        .await?;
    match converse(&mut plain, false, &store).await? {
        Next::Quit => Ok(()),
        Next::StartTls => {
            let tls = acceptor.accept(plain.into_inner()).await?;
            let mut secure = BufReader::new(tls);
            converse(&mut secure, true, &store).await.map(|_| ())
        }
    }
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    tls: bool,
    store: &Mutex<Vec<Email>>,
) -> std::io::Result<Next> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut auth = None;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await? == 0 {
            return Ok(Next::Quit);
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            if tls {
                "250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into()
            } else {
                "250-localhost\r\n250-STARTTLS\r\n250 8BITMIME\r\n".into()
            }
        } else if upper == "STARTTLS" && !tls {
            s.get_mut().write_all(b"220 go ahead\r\n").await?;
            return Ok(Next::StartTls);
        } else if !tls && !upper.starts_with("QUIT") && !upper.starts_with("NOOP") {
            "530 5.7.0 must issue a STARTTLS command first\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = match command.split_whitespace().nth(2) {
                Some(e) => e.to_owned(),
                None => {
                    s.get_mut().write_all(b"334 \r\n").await?;
                    let mut l = String::new();
                    s.read_line(&mut l).await?;
                    l.trim().to_owned()
                }
            };
            let decoded = b64.decode(encoded).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            if parts.len() == 3 {
                auth = Some((
                    String::from_utf8_lossy(parts[1]).into_owned(),
                    String::from_utf8_lossy(parts[2]).into_owned(),
                ));
            }
            "235 2.7.0 authenticated\r\n".into()
        } else if upper.starts_with("AUTH LOGIN") {
            let mut read = async |prompt: &[u8]| -> std::io::Result<String> {
                s.get_mut().write_all(prompt).await?;
                let mut l = String::new();
                s.read_line(&mut l).await?;
                Ok(String::from_utf8_lossy(&b64.decode(l.trim()).unwrap_or_default()).into_owned())
            };
            let user = read(b"334 VXNlcm5hbWU6\r\n").await?;
            let password = read(b"334 UGFzc3dvcmQ6\r\n").await?;
            auth = Some((user, password));
            "235 2.7.0 authenticated\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().to_owned();
            to.clear();
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().to_owned());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            s.get_mut().write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if s.read_line(&mut l).await? == 0 {
                    return Ok(Next::Quit);
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                // Dot-stuffing: a line starting with "." was sent with one more.
                data.push_str(if l.starts_with("..") { &l[1..] } else { &l });
            }
            store.lock().unwrap_or_else(|p| p.into_inner()).push(Email {
                from: from.clone(),
                to: to.clone(),
                data,
                tls,
                auth: auth.clone(),
            });
            "250 2.0.0 queued\r\n".into()
        } else if upper.starts_with("QUIT") {
            s.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(Next::Quit);
        } else {
            "250 ok\r\n".into()
        };
        s.get_mut().write_all(reply.as_bytes()).await?;
    }
}

// ----- setup -----

/// What a webhook-only test starts from: NATS, a webhook receiver `hook` signing with
/// `secret`, and in a temporary directory the notifier's `config`: `settings`, the receiver,
/// and one route to it with the keys `route`. Keep `dir` bound: dropping it deletes the files.
pub struct WebhookSetup {
    pub nats: sdash_harness::NatsServer,
    pub hook: WebhookSink,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl WebhookSetup {
    pub async fn start(secret: &str, settings: &str, route: &str) -> WebhookSetup {
        let nats = sdash_harness::NatsServer::start();
        let hook = WebhookSink::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let secret = write(dir.path(), "webhook.secret", secret);
        let config = write(
            dir.path(),
            "notify.toml",
            &format!(
                "{settings}\n[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\n\n[[route]]\nreceivers = [\"hook\"]\n{route}",
                hook.url(),
                secret.display()
            ),
        );
        WebhookSetup {
            nats,
            hook,
            dir,
            config,
        }
    }
}

// ----- changes -----

/// A status change of `system`, as the writer would publish it.
pub fn status_change(system: &str, from: &str, to: &str) -> Envelope<ChangeRecord> {
    Envelope::new(
        "test-writer",
        system,
        ChangeRecord {
            system_name: Some(format!("{system} (test)")),
            tags: [("environment".to_owned(), "prod".to_owned())].into(),
            ..ChangeRecord::transition(
                ChangeKind::StatusChanged,
                sdash_proto::new_event_id(),
                Vendor::Pure,
                from,
                to,
            )
        },
    )
}

/// A capacity threshold crossing of `system`.
pub fn capacity_change(system: &str, threshold: u8, rising: bool) -> Envelope<ChangeRecord> {
    let mut e = status_change(system, "", "");
    e.body.kind = ChangeKind::CapacityThreshold;
    e.body.from = None;
    e.body.to = None;
    e.body.threshold_percent = Some(threshold);
    e.body.rising = Some(rising);
    e.body.capacity = Some(sdash_proto::Capacity {
        total_bytes: 1000,
        used_bytes: u64::from(threshold) * 10 + 5,
        free_bytes: 1000 - u64::from(threshold) * 10 - 5,
        data_reduction: None,
        provisioned_bytes: None,
    });
    e
}

/// Publishes a change to JetStream with `Nats-Msg-Id` = its id (as the writer does) and waits
/// for the ack.
pub async fn publish(js: &async_nats::jetstream::Context, change: &Envelope<ChangeRecord>) {
    publish_with_id(js, change, Some(&change.event_id)).await;
}

/// Publishes a change with the given `Nats-Msg-Id` (none: JetStream stores every copy, like a
/// redelivery the server cannot deduplicate).
pub async fn publish_with_id(
    js: &async_nats::jetstream::Context,
    change: &Envelope<ChangeRecord>,
    msg_id: Option<&str>,
) {
    let bytes = sdash_proto::encode(change).unwrap_or_else(|e| panic!("encode: {e}"));
    let mut headers = async_nats::HeaderMap::new();
    if let Some(id) = msg_id {
        headers.insert("Nats-Msg-Id", id);
    }
    let ack = js
        .publish_with_headers(
            Kind::Change.subject(&change.system_id),
            headers,
            bytes.into(),
        )
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
    ack.await.unwrap_or_else(|e| panic!("puback: {e}"));
}

/// Connects to NATS and makes sure the SDASH stream exists (as every service does).
pub async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let js = async_nats::jetstream::new(client);
    sdash_service::bus::ensure_stream(&js, &sdash_service::bus::StreamArgs::default())
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    js
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Waits until the notifier's consumer exists and has a pull request waiting, so that changes
/// published next reach it (a new consumer starts at the next message).
pub async fn wait_for_consumer(js: &async_nats::jetstream::Context, name: &str) {
    let ready = sdash_harness::wait_for(Duration::from_secs(20), || async {
        let stream = js.get_stream(sdash_proto::subjects::STREAM).await.ok()?;
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(name).await.ok()?;
        let info = consumer.info().await.ok()?;
        (info.num_waiting > 0).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "the notifier's consumer {name} did not start pulling"
    );
}

/// The consumer's acknowledged floor reached every message and nothing waits for an ack.
pub async fn consumer_idle(js: &async_nats::jetstream::Context, name: &str) -> bool {
    let Ok(stream) = js.get_stream(sdash_proto::subjects::STREAM).await else {
        return false;
    };
    let Ok(mut consumer) = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
        .await
    else {
        return false;
    };
    match consumer.info().await {
        Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
        Err(_) => false,
    }
}

/// Waits up to `timeout` for [`consumer_idle`]; whether it got there.
pub async fn wait_for_idle(
    js: &async_nats::jetstream::Context,
    name: &str,
    timeout: Duration,
) -> bool {
    sdash_harness::wait_for(timeout, || async {
        consumer_idle(js, name).await.then_some(())
    })
    .await
    .is_some()
}

/// Reads a Prometheus counter or gauge with exactly these labels from a `/metrics` text.
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}
