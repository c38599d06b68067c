//! A small W3C WebDriver client for the dashboard's browser tests: finds (or installs) headless
//! Chromium and chromedriver, starts a session, and offers what a test does on a page (go to a
//! URL, click, type, choose, read text, wait for a condition, run a script, take a screenshot,
//! read Chrome's logs). It talks chromedriver's HTTP API directly with reqwest.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::harness::free_port;

/// The key under which WebDriver names an element in its answers.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Chromium and chromedriver are.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

fn find_tool(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env)
        && Path::new(&p).exists()
    {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

fn find_tools() -> Option<Tools> {
    // Debian's /usr/bin/chromium is a wrapper script; chromedriver wants the real binary.
    let chromium = find_tool(
        "SDASH_CHROMIUM",
        &[
            "/usr/lib/chromium/chromium",
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
        ],
    )?;
    let chromedriver = find_tool(
        "SDASH_CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
    )?;
    Some(Tools {
        chromium,
        chromedriver,
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn apt_install() -> Result<(), String> {
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
    };
    let first = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
    if first.status.success() {
        return Ok(());
    }
    let _ = Command::new("apt-get")
        .args(["update", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let second = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
    if second.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&second.stderr).trim().to_owned())
    }
}

/// Finds chromium and chromedriver, installing Debian's `chromium` and `chromium-driver` when
/// they are missing; panics with what to do when that is impossible.
pub fn ensure_chromium() -> Tools {
    if let Some(t) = find_tools() {
        return t;
    }
    // Several test processes may get here at once: one installs, the others wait for it.
    let lock = std::env::temp_dir().join("sdash-chromium-install.lock");
    let started = Instant::now();
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(_) if started.elapsed() < Duration::from_secs(600) => {
                std::thread::sleep(Duration::from_secs(1));
                if let Some(t) = find_tools() {
                    return t;
                }
            }
            Err(_) => {
                let _ = std::fs::remove_file(&lock);
            }
        }
    }
    let result = if is_root() {
        apt_install()
    } else {
        Err(
            "not running as root (run `apt-get install -y chromium chromium-driver` as root)"
                .into(),
        )
    };
    let _ = std::fs::remove_file(&lock);
    match (result, find_tools()) {
        (_, Some(t)) => t,
        (Err(e), None) => panic!(
            "the dashboard browser tests need headless Chromium and chromedriver, and they could not be installed: {e}. \
             Install Debian's `chromium` and `chromium-driver` packages, or set SDASH_CHROMIUM and SDASH_CHROMEDRIVER."
        ),
        (Ok(()), None) => panic!(
            "apt-get installed chromium and chromium-driver but neither /usr/lib/chromium/chromium nor /usr/bin/chromedriver \
             exists; set SDASH_CHROMIUM and SDASH_CHROMEDRIVER"
        ),
    }
}

/// chromedriver on a free port, killed on drop.
pub struct Driver {
    child: Child,
    /// Its WebDriver endpoint, `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free loopback port and waits until it is ready.
pub async fn start_driver(tools: &Tools, http: &reqwest::Client) -> anyhow::Result<Driver> {
    let port = free_port();
    let child = Command::new(&tools.chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", tools.chromedriver.display()))?;
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(resp) = http.get(format!("{}/status", driver.url)).send().await
            && let Ok(v) = resp.json::<Value>().await
            && v["value"]["ready"].as_bool() == Some(true)
        {
            return Ok(driver);
        }
        if Instant::now() > deadline {
            bail!("chromedriver did not become ready on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One WebDriver session: a headless Chromium with a fresh profile.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium (headless, 1280x800, no background traffic) through `driver`.
    pub async fn open(
        driver: &Driver,
        tools: &Tools,
        http: &reqwest::Client,
    ) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".into(),
            "--window-size=1280,800".into(),
            "--hide-scrollbars".into(),
            "--force-color-profile=srgb".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": tools.chromium, "args": args},
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
            "timeouts": {"script": 20000, "pageLoad": 30000, "implicit": 0},
        }}});
        let resp = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .context("new WebDriver session")?;
        let body: Value = resp.json().await.context("new WebDriver session: body")?;
        let session = body["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("chromedriver refused to start Chromium: {body}"))?
            .to_owned();
        Ok(Browser {
            http: http.clone(),
            session: format!("{}/session/{session}", driver.url),
            _profile: profile,
        })
    }

    /// Sends one WebDriver command to the session; returns its `value`.
    pub async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("WebDriver {method} {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("WebDriver {method} {path}: body"))?;
        if !status.is_success() {
            bail!("WebDriver {method} {path}: {status}: {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await.map(|_| ())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        self.find_all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no element matches {css:?}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        // Out from under the sticky header, as a person would scroll.
        self.js(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![json!({ ELEMENT_KEY: id })],
        )
        .await?;
        self.post(&format!("/element/{id}/click"), json!({}))
            .await
            .map(|_| ())
    }

    /// Replaces the text of an input the way a person types it.
    pub async fn type_text(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        self.post(&format!("/element/{id}/clear"), json!({}))
            .await?;
        self.post(&format!("/element/{id}/value"), json!({"text": text}))
            .await
            .map(|_| ())
    }

    /// Picks an option of a `<select>` by clicking it.
    pub async fn choose(&self, select_css: &str, value: &str) -> anyhow::Result<()> {
        self.click(select_css).await?;
        self.click(&format!("{select_css} option[value=\"{value}\"]"))
            .await
    }

    pub async fn displayed(&self, css: &str) -> anyhow::Result<bool> {
        let Some(id) = self.find_all(css).await?.into_iter().next() else {
            return Ok(false);
        };
        Ok(self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{id}/displayed"),
                None,
            )
            .await?
            .as_bool()
            == Some(true))
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let id = self.find(css).await?;
        Ok(self
            .cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    pub async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let b64 = v
            .as_str()
            .ok_or_else(|| anyhow!("screenshot is not a string"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    pub async fn window(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(|_| ())
    }

    /// Drains one of Chrome's logs (`performance`, `browser`).
    pub async fn logs(&self, kind: &str) -> anyhow::Result<Vec<Value>> {
        let v = self.post("/se/log", json!({"type": kind})).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Waits until `expr` (a JS expression) is truthy; returns its value.
    pub async fn wait(&self, what: &str, expr: &str) -> anyhow::Result<Value> {
        self.wait_for(what, expr, Duration::from_secs(20)).await
    }

    pub async fn wait_for(
        &self,
        what: &str,
        expr: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let script = format!("try {{ return ({expr}); }} catch (e) {{ return null; }}");
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(&script, vec![]).await?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let page = self
                    .js(
                        "return location.href + '\\n' + document.body.innerText.slice(0, 1500)",
                        vec![],
                    )
                    .await
                    .unwrap_or_default();
                self.save_failure_screenshot().await;
                bail!(
                    "timed out waiting for {what} ({expr}); the page shows:\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the page as `sdash-dashboard-failure.png` in the temporary directory and says where,
    /// for a test that is about to fail.
    pub async fn save_failure_screenshot(&self) {
        if let Ok(png) = self.screenshot().await {
            let path = std::env::temp_dir().join("sdash-dashboard-failure.png");
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot of the failure: {}", path.display());
        }
    }

    pub async fn quit(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Every URL Chrome requested since the last call (from the performance log).
pub async fn requested_urls(b: &Browser) -> anyhow::Result<Vec<String>> {
    let mut urls = Vec::new();
    for entry in b.logs("performance").await? {
        let Some(text) = entry["message"].as_str() else {
            continue;
        };
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if msg["message"]["method"] == "Network.requestWillBeSent"
            && let Some(url) = msg["message"]["params"]["request"]["url"].as_str()
        {
            urls.push(url.to_owned());
        }
    }
    Ok(urls)
}

/// Whether a URL the page requested stays on this machine (127.0.0.1, or inline `data:`).
pub fn is_local(url: &str) -> bool {
    url.starts_with("http://127.0.0.1:") || url.starts_with("data:")
}

/// The JSON body of a GET, or `None` when it fails or answers other than 2xx.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

/// Where the browser tests save screenshots: `docs/screenshots/` when
/// `SDASH_UPDATE_SCREENSHOTS=1` (to refresh the README's pictures), else `target/screenshots/`,
/// so that ordinary test runs leave the work tree clean.
pub fn screenshot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var("SDASH_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        root.join("docs").join("screenshots")
    } else {
        root.join("target").join("screenshots")
    }
}
