//! A page rendered in headless Chromium, driven over the DevTools protocol:
//! what it requested, what it logged, whether its images loaded, and a
//! screenshot. Chromium is Debian's `chromium-headless-shell` (`make test`
//! installs it), or `$KIMCNN_CHROMIUM`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

/// What loading a page did.
#[derive(Debug)]
pub struct Rendered {
    /// Every URL it requested, the page's own included.
    pub requests: Vec<String>,
    /// Console errors, uncaught exceptions and browser log errors (a refused request among them).
    pub errors: Vec<String>,
    /// Per `<img>`: its alt text, and whether it loaded (complete, with a width).
    pub images: Vec<(String, bool)>,
    /// `document.body.innerText`.
    pub text: String,
}

pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("KIMCNN_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium-headless-shell", "chromium", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("no headless Chromium: `make test` installs Debian's chromium-headless-shell (or set KIMCNN_CHROMIUM)");
}

/// Chromium in a process group of its own, killed whole when dropped (also
/// when a test fails before the browser is up): Debian's launcher is a
/// script that does not `exec`, so killing it alone would leave Chromium.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

struct Browser {
    _process: Process,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium())
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let mut process = Process(child);
        // Chromium keeps writing to stderr: read it to the end on a thread, and take the address off it.
        let stderr = BufReader::new(process.0.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(u) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(u.trim().to_string());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("chromium prints its DevTools address");
        let (ws, _) = tungstenite::connect(url.as_str()).expect("DevTools connects");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        Browser { _process: process, ws, next: 0, events: Vec::new(), _profile: profile }
    }

    /// Sends a command (to a session, if given) and waits for its answer,
    /// keeping the events that arrive meanwhile.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let v = self.read();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("DevTools answers") {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                _ => continue,
            }
        }
    }

    /// Waits for an event by method name, keeping the others.
    fn wait_for(&mut self, method: &str, limit: Duration) {
        let t0 = Instant::now();
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        while t0.elapsed() < limit {
            let v = self.read();
            let done = v["method"] == method;
            self.events.push(v);
            if done {
                return;
            }
        }
        panic!("no {method} within {limit:?}");
    }
}

/// Loads `page` (a file), lets it settle, checks nothing, and returns what
/// happened; a full-page screenshot is written to `screenshot`.
pub fn render(page: &Path, screenshot: &Path) -> Rendered {
    let mut b = Browser::start();
    let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let session = b.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}))["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let s = Some(session.as_str());
    for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"] {
        b.call(s, domain, json!({}));
    }
    b.call(s, "Emulation.setDeviceMetricsOverride", json!({"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": false}));
    b.events.clear();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    b.call(s, "Page.navigate", json!({"url": url}));
    b.wait_for("Page.loadEventFired", Duration::from_secs(60));
    let eval = |b: &mut Browser, expr: &str| -> Value {
        b.call(s, "Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}))["result"]["value"].clone()
    };
    // Let every image decode before asking.
    eval(&mut b, "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() => true)");
    let images = eval(&mut b, "Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])");
    let text = eval(&mut b, "document.body.innerText").as_str().unwrap_or_default().to_string();
    let height = eval(&mut b, "document.documentElement.scrollHeight").as_u64().unwrap_or(900);
    b.call(s, "Emulation.setDeviceMetricsOverride", json!({"width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": false}));
    let shot = b.call(s, "Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
    let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
    std::fs::write(screenshot, png).unwrap();
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    for e in &b.events {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Network.requestWillBeSent" => requests.push(p["request"]["url"].as_str().unwrap_or("").to_string()),
            "Runtime.exceptionThrown" => errors.push(p["exceptionDetails"].to_string()),
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "warning" => errors.push(p["args"].to_string()),
            "Log.entryAdded" if p["entry"]["level"] == "error" || p["entry"]["level"] == "warning" => {
                errors.push(p["entry"]["text"].to_string())
            }
            _ => {}
        }
    }
    let images =
        images.as_array().unwrap().iter().map(|i| (i[0].as_str().unwrap_or("").to_string(), i[1].as_bool().unwrap_or(false))).collect();
    Rendered { requests, errors, images, text }
}
