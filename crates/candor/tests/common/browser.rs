//! Real headless Chromium driven over WebDriver (Debian's chromium and
//! chromedriver), for console tests. Screenshots go to test-output/console/.

use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::launch(&[], false).await
    }

    /// As an employee's browser, with extra Chromium arguments: extensions and background
    /// networking are on, so extensions the managed policy forces are installed.
    pub async fn start_with(extra_args: &[String]) -> Browser {
        Browser::launch(extra_args, true).await
    }

    async fn launch(extra_args: &[String], employee: bool) -> Browser {
        let port = super::free_port();
        // Its own process group, so that dropping the browser ends Chromium too.
        let driver = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver; scripts/test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--ignore-certificate-errors",
            "--window-size=1366,768",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--lang=zh-CN",
        ]
        .map(String::from)
        .to_vec();
        if employee {
            args.retain(|a| a != "--disable-background-networking");
        }
        args.extend(extra_args.iter().cloned());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": args, "excludeSwitches": ["disable-extensions", "disable-background-networking"] }),
        );
        let mut client = None;
        for _ in 0..100 {
            let conn = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(conn).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-output/console");
        std::fs::create_dir_all(&shots).unwrap();
        Browser { client: client.expect("chromedriver session"), driver, shots }
    }

    /// Wait up to 10 s for an element.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// How many elements match now.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Wait for an element and return its text (again if the page re-rendered it meanwhile).
    pub async fn text(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.find(css).await.text().await {
                Ok(t) => return t,
                Err(e) => assert!(std::time::Instant::now() < deadline, "{css}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if t.contains(needle) {
                        return t;
                    }
                }
            }
            assert!(std::time::Instant::now() < deadline, "{css} never contained {needle:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn attr(&self, css: &str, name: &str) -> String {
        let el = self.find(css).await;
        el.attr(name).await.unwrap().unwrap_or_default()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        el.click().await.unwrap();
    }

    pub async fn login(&self, console: &str, user: &str, password: &str) {
        self.goto(console).await;
        self.fill("#login-form input[name=username]", user).await;
        self.fill("#login-form input[name=password]", password).await;
        self.click("#login-form button").await;
        self.text("#logout").await;
    }

    pub async fn logout(&self) {
        self.click("#logout").await;
        self.text("#login-form").await;
    }

    /// Wait for the page's data to load, then assert no script error and no
    /// error message is shown.
    pub async fn page_ok(&self, page: &str) {
        let css = format!("main#page-{page}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let t = self.text(&css).await;
            if !t.contains("加载中") && !t.contains("Loading") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{page} never loaded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let errors = self.client.execute("return window.__candorErrors", vec![]).await.unwrap();
        assert_eq!(errors, serde_json::json!([]), "script errors on {page}");
        let shown = self.client.find_all(Locator::Css(".msg.error")).await.unwrap();
        if let Some(e) = shown.first() {
            panic!("error shown on {page}: {}", e.text().await.unwrap());
        }
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this browser's chromedriver leads.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}
