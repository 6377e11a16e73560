//! A small W3C WebDriver client over HTTP, driving Debian's headless
//! Chromium through chromedriver: just what the browser tests use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `wait_*` helpers poll before failing the test.
pub const WAIT: Duration = Duration::from_secs(15);

/// Where Chromium and chromedriver are (`TEXTBANK_CHROMIUM`,
/// `TEXTBANK_CHROMEDRIVER`, else Debian's paths), if both exist.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("TEXTBANK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let driver = std::env::var_os("TEXTBANK_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    (chromium.exists() && driver.exists()).then_some((chromium, driver))
}

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    screenshots: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a browser session in it. A start that fails
    /// (chromedriver losing its port to another process, Chromium dying on
    /// its first launch in a fresh container) is tried again on a new port;
    /// the test fails only if every try did, with every reason.
    pub async fn start(chromium: &Path, chromedriver: &Path, screenshots: &Path) -> Self {
        const TRIES: usize = 3;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        std::fs::create_dir_all(screenshots).expect("screenshot folder");
        let mut failures = Vec::new();
        for _ in 0..TRIES {
            let port = free_port();
            let mut driver = Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let base = format!("http://127.0.0.1:{port}");
            match new_session(&http, &base, chromium).await {
                Ok(session) => {
                    return Self {
                        http,
                        base,
                        session,
                        driver,
                        screenshots: screenshots.to_owned(),
                    };
                }
                Err(reason) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    failures.push(reason);
                }
            }
        }
        panic!("no browser session after {TRIES} tries: {failures:#?}");
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.command_answer(method, path, body)
            .await
            .unwrap_or_else(|(status, value)| panic!("webdriver {path} failed ({status}): {value}"))
    }

    /// A WebDriver command's `value`, or the HTTP status and the `value`
    /// describing its error.
    async fn command_answer(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (reqwest::StatusCode, Value)> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("webdriver request");
        let status = response.status();
        let mut answer: Value = response.json().await.unwrap_or_default();
        let value = answer["value"].take();
        if status.is_success() {
            Ok(value)
        } else {
            Err((status, value))
        }
    }

    async fn try_command(&self, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let response = self.http.post(&url).json(&body).send().await.ok()?;
        let ok = response.status().is_success();
        let answer: Value = response.json().await.ok()?;
        ok.then(|| answer["value"].clone())
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`, if any now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let found = self
            .try_command("/element", json!({"using": "css selector", "value": css}))
            .await?;
        found[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// Waits for an element matching `css` to exist and be displayed.
    pub async fn wait_for(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find(css).await
                && self.displayed(&element).await
            {
                return element;
            }
            if started.elapsed() > WAIT {
                panic!("{css} never appeared {}", self.gave_up().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (a function body returning a value) returns
    /// something truthy; returns it.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script, json!([])).await;
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            if started.elapsed() > WAIT {
                panic!("never true: {what} (last {value}) {}", self.gave_up().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Gives up waiting: takes a screenshot; where the page is and what its
    /// console says, for the failure message.
    async fn gave_up(&self) -> String {
        self.screenshot("timeout").await;
        format!(
            "on {}; console: {}",
            self.current_url().await,
            self.console().await
        )
    }

    /// Runs a function body in the page with `args`; its return value.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.try_command("/execute/sync", json!({"script": script, "args": args}))
            .await
            .unwrap_or(Value::Null)
    }

    pub async fn displayed(&self, element: &Element) -> bool {
        let url = format!(
            "{}/session/{}/element/{}/displayed",
            self.base, self.session, element.0
        );
        match self.http.get(&url).send().await {
            Ok(response) => response
                .json::<Value>()
                .await
                .map(|answer| answer["value"] == true)
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Clicks the element matching `css` once it is displayed. Pages that
    /// update live (the inbox, the campaign page) replace elements under the
    /// test's hands: a click that reached no element (a stale reference, an
    /// element covered or not yet interactable) finds it again and retries;
    /// WebDriver dispatches nothing in those cases, so no click is doubled.
    pub async fn click_css(&self, css: &str) {
        const RETRIED: [&str; 3] = [
            "stale element reference",
            "element click intercepted",
            "element not interactable",
        ];
        let started = Instant::now();
        loop {
            let element = self.wait_for(css).await;
            let clicked = self
                .command_answer(
                    reqwest::Method::POST,
                    &format!("/element/{}/click", element.0),
                    Some(json!({})),
                )
                .await;
            let Err((status, value)) = clicked else {
                return;
            };
            let error = value["error"].as_str().unwrap_or_default();
            assert!(
                RETRIED.contains(&error) && started.elapsed() < WAIT,
                "clicking {css} failed ({status}): {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into an element (file inputs take a path).
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.0),
            Some(json!({})),
        )
        .await;
        self.type_into(&element, text).await;
    }

    /// Keyboard actions: each `(down, key)` presses or releases a key, with
    /// `pause_ms` between them, in one W3C action sequence.
    pub async fn keys(&self, steps: &[(bool, &str)], pause_ms: u64) {
        let mut actions = Vec::new();
        for (down, key) in steps {
            actions.push(json!({"type": if *down { "keyDown" } else { "keyUp" }, "value": key}));
            actions.push(json!({"type": "pause", "duration": pause_ms}));
        }
        self.command(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// Resizes the browser window (CSS pixels).
    pub async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the viewport under the screenshot folder.
    pub async fn screenshot(&self, name: &str) {
        let url = format!("{}/session/{}/screenshot", self.base, self.session);
        let Ok(response) = self.http.get(&url).send().await else {
            return;
        };
        let Ok(answer) = response.json::<Value>().await else {
            return;
        };
        if let Some(png) = answer["value"].as_str()
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(png)
        {
            let _ = std::fs::write(self.screenshots.join(format!("{name}.png")), bytes);
        }
    }

    /// The page's console messages so far (for failure messages).
    pub async fn console(&self) -> String {
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let logged = self
            .http
            .post(&url)
            .json(&json!({"type": "browser"}))
            .send()
            .await;
        match logged {
            Ok(response) => response
                .json::<Value>()
                .await
                .map(|answer| answer["value"].to_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Console entries at level SEVERE (script errors, failed loads).
    pub async fn severe_console_errors(&self) -> Vec<String> {
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let Ok(response) = self
            .http
            .post(&url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
        else {
            return Vec::new();
        };
        let answer: Value = response.json().await.unwrap_or_default();
        answer["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn close(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(&url).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Waits for chromedriver at `base` to be ready, then opens a headless
/// Chromium session in it; the session id, or why there is none.
async fn new_session(
    http: &reqwest::Client,
    base: &str,
    chromium: &Path,
) -> Result<String, String> {
    let started = Instant::now();
    loop {
        let ready = http.get(format!("{base}/status")).send().await;
        if let Ok(response) = ready
            && let Ok(status) = response.json::<Value>().await
            && status["value"]["ready"] == true
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("chromedriver at {base} was not ready within 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    }}});
    let created: Value = http
        .post(format!("{base}/session"))
        .json(&capabilities)
        .send()
        .await
        .map_err(|error| format!("new session: {error}"))?
        .json()
        .await
        .map_err(|error| format!("new session's answer: {error}"))?;
    created["value"]["sessionId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no browser session: {created}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}
