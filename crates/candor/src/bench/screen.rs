//! `candor bench screen`: a scripted office session on a 1080p Xvfb —
//! typing in a terminal, reading and scrolling a long document in Chromium,
//! switching windows, typing notes, idle stretches — captured once per
//! simulated 10 s by the agent's own grabber. The same raw frames are then
//! stored by Candor's tile codec and by ffmpeg/libx264 (with its default
//! GOP, and all-intra so every frame is seekable), each at the cheapest
//! setting whose **worst** frame still reaches the SSIM gate. Printed: bytes
//! per 8-hour day, CPU per frame, worst and mean SSIM, and the ratios.
//!
//! Time is compressed: the actions of each 10-s interval run back to back,
//! so an hour of session (360 captures) takes a few minutes to record.

use anyhow::Context;
use candor_agent::platform::open_screen;
use candor_agent::platform::x11::Target;
use candor_screen::{ssim::ssim, Canvas, Encoder, EncoderOptions, Image};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ScreenBench {
    /// Captures, one per simulated 10 s of the session (360: one hour).
    #[arg(long, default_value_t = 360)]
    frames: usize,
    /// The worst frame's SSIM both codecs must reach.
    #[arg(long, default_value_t = 0.95)]
    gate: f64,
    /// Keep the raw frames in this file, and reuse it when it already holds them.
    #[arg(long)]
    frames_file: Option<PathBuf>,
    /// Print each frame's tiles and bytes (Candor, at the chosen quality).
    #[arg(long)]
    verbose: bool,
}

const W: u32 = 1920;
const H: u32 = 1080;
const FRAME: usize = (W * H * 3) as usize;
/// Captures in an 8-hour day at one per 10 s.
const PER_DAY: f64 = 2880.0;

fn cpu_ns(who: i32) -> u64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(u.ru_utime) + ns(u.ru_stime)
}

/// CPU seconds used by this process's waited-for children.
pub(super) fn children_cpu_secs() -> f64 {
    cpu_ns(libc::RUSAGE_CHILDREN) as f64 / 1e9
}

use super::need;

/// A long bilingual document with tables and a notes box, like a report being read.
fn document() -> String {
    let mut s = String::from(
        "<!doctype html><meta charset=utf-8><title>季度报告 Quarterly report</title>\
         <body style='font:15px sans-serif;margin:24px;max-width:1000px'>\
         <h1>2026 年第三季度销售报告</h1>\
         <textarea id=notes rows=3 style='position:fixed;bottom:0;left:0;width:100%;height:70px'></textarea>",
    );
    for i in 0..120 {
        s.push_str(&format!(
            "<h2>{i}. 区域 {i} 客户合同与报价单</h2><p>本季度区域 {i} 的报价单共 {} 份，客户合同 {} 份。The pipeline \
             grew by {}% against last quarter; renewals are due in week {}. 请各部门在周五之前确认数据，并更新项目进度表。</p>\
             <table border=1 cellpadding=4><tr><th>客户</th><th>金额</th><th>状态</th></tr>\
             <tr><td>客户 {i}-A</td><td>{}.00</td><td>已签</td></tr><tr><td>Customer {i}-B</td><td>{}.50</td><td>pending</td></tr></table>",
            i * 7 % 50 + 3,
            i * 3 % 20 + 1,
            i * 13 % 40,
            i % 52 + 1,
            i * 1234 % 99_999,
            i * 777 % 88_888
        ));
    }
    s
}

pub(super) struct Session {
    pub(super) display: String,
    _children: super::Children,
}

impl Session {
    pub(super) fn start(dir: &Path) -> anyhow::Result<Session> {
        for (tool, package) in [("Xvfb", "xvfb"), ("openbox", "openbox"), ("xterm", "xterm"), ("xdotool", "xdotool")] {
            need(tool, package)?;
        }
        need("chromium", "chromium")?;
        let n = super::free_display();
        let display = format!(":{n}");
        let mut children = super::Children(Vec::new());
        let spawn = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        children.0.push(spawn(Command::new("Xvfb").args([
            &display,
            "-screen",
            "0",
            "1920x1080x24",
            "-nolisten",
            "tcp",
        ]))?);
        let t = Instant::now();
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(10), "Xvfb did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        children.0.push(spawn(Command::new("openbox").env("DISPLAY", &display))?);
        std::thread::sleep(Duration::from_millis(500));
        children.0.push(spawn(Command::new("xterm").env("DISPLAY", &display).args([
            "-T",
            "Terminal",
            "-fa",
            "Monospace",
            "-fs",
            "11",
            "-geometry",
            "100x48+10+10",
        ]))?);
        let doc = dir.join("report.html");
        std::fs::write(&doc, document())?;
        children.0.push(spawn(Command::new("chromium").env("DISPLAY", &display).args([
            "--no-sandbox".to_string(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", dir.join("chromium").display()),
            "--window-position=720,40".into(),
            "--window-size=1180,980".into(),
            format!("--app=file://{}", doc.display()),
        ]))?);
        let s = Session { display, _children: children };
        let t = Instant::now();
        while !s.xdo(&["search", "--name", "季度报告"]) {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "Chromium did not show the document");
            std::thread::sleep(Duration::from_millis(300));
        }
        std::thread::sleep(Duration::from_secs(2));
        Ok(s)
    }

    fn xdo(&self, args: &[&str]) -> bool {
        Command::new("xdotool")
            .env("DISPLAY", &self.display)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn focus(&self, name: &str) {
        self.xdo(&["search", "--name", name, "windowactivate", "--sync"]);
    }

    /// Focus the window named `name` and click at (x, y) inside it.
    fn click(&self, name: &str, x: u32, y: u32) {
        self.focus(name);
        let (x, y) = (x.to_string(), y.to_string());
        self.xdo(&["search", "--name", name, "mousemove", "--window", "%1", &x, &y, "click", "1"]);
    }

    /// What happens in the `i`th 10-s interval of an office hour.
    pub(super) fn act(&self, i: usize) {
        const COMMANDS: &[&str] = &[
            "ls -la /usr/share | head -30",
            "echo 本周销售报价单已更新 $(date +%F)",
            "cat /etc/os-release",
            "df -h",
            "grep -c bash /etc/passwd",
            "ps -e | wc -l",
        ];
        match i % 60 {
            p @ 0..15 => {
                self.focus("Terminal");
                self.xdo(&["type", "--delay", "5", COMMANDS[(i / 60 + p) % COMMANDS.len()]]);
                self.xdo(&["key", "Return"]);
            }
            p @ 15..30 => {
                // Reading: the wheel turns a notch or two over the text.
                self.focus("季度报告");
                let notches = if p % 5 == 0 { "4" } else { "1" };
                self.xdo(&[
                    "search",
                    "--name",
                    "季度报告",
                    "mousemove",
                    "--window",
                    "%1",
                    "600",
                    "500",
                    "click",
                    "--repeat",
                    notches,
                    "5",
                ]);
            }
            p @ 30..36 => self.focus(if p % 2 == 0 { "Terminal" } else { "季度报告" }),
            36..50 => {}
            p => {
                if p == 50 {
                    // Writing notes in the box pinned to the window's bottom.
                    self.click("季度报告", 500, 950);
                }
                self.xdo(&["type", "--delay", "5", "会议纪要 follow up 客户合同 "]);
            }
        }
    }
}

/// Record the session's raw frames to `path`; returns capture wall ms per frame.
fn record(b: &ScreenBench, dir: &Path, path: &Path) -> anyhow::Result<f64> {
    let session = Session::start(dir)?;
    let target = Target { display: Some(session.display.clone()), ..Default::default() };
    let mut grabber = open_screen(&target).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut grab_ns = 0u128;
    for i in 0..b.frames {
        session.act(i);
        std::thread::sleep(Duration::from_millis(250));
        let t = Instant::now();
        let img = grabber.grab().map_err(|e| anyhow::anyhow!("capture: {e}"))?;
        grab_ns += t.elapsed().as_nanos();
        anyhow::ensure!((img.width, img.height) == (W, H), "captured {}x{}", img.width, img.height);
        out.write_all(&img.rgb)?;
        if i % 60 == 59 {
            eprintln!("recorded {}/{} frames", i + 1, b.frames);
        }
    }
    out.flush()?;
    Ok(grab_ns as f64 / b.frames as f64 / 1e6)
}

fn frames(path: &Path) -> anyhow::Result<impl Iterator<Item = Image>> {
    let mut r = BufReader::with_capacity(FRAME, std::fs::File::open(path)?);
    Ok(std::iter::from_fn(move || {
        let mut rgb = vec![0; FRAME];
        r.read_exact(&mut rgb).ok()?;
        Some(Image { width: W, height: H, rgb })
    }))
}

#[derive(Debug, Clone, Copy)]
struct Pass {
    setting: u32,
    bytes: u64,
    cpu_ms: f64,
    worst: f64,
    mean: f64,
    stored: usize,
}

/// Candor's codec at `quality`: every frame composed back and compared.
fn candor(path: &Path, n: usize, quality: u32, verbose: bool) -> anyhow::Result<Pass> {
    let mut enc = Encoder::new(EncoderOptions { quality: quality as u8, ..Default::default() });
    let mut canvas = Canvas::new();
    let (mut bytes, mut cpu, mut worst, mut sum, mut stored) = (0u64, 0u64, 1.0f64, 0.0, 0);
    for img in frames(path)? {
        let t = cpu_ns(libc::RUSAGE_THREAD);
        let parts = enc.encode(&img)?;
        cpu += cpu_ns(libc::RUSAGE_THREAD) - t;
        stored += usize::from(!parts.is_empty());
        for p in &parts {
            bytes += p.bytes.len() as u64;
            canvas.apply(&p.bytes)?;
        }
        let s = ssim(canvas.image().context("no picture")?, &img);
        if verbose && !parts.is_empty() {
            let b: usize = parts.iter().map(|p| p.bytes.len()).sum();
            let t: u32 = parts.iter().map(|p| p.tiles).sum();
            let copies = candor_screen::Header::parse(&parts[0].bytes).map(|(h, _)| h.copies.len()).unwrap_or(0);
            let key = parts[0].key;
            eprintln!("frame {stored:>4}: {t:>4} tiles ({copies} copied) {b:>8} bytes key {key} ssim {s:.4}");
        }
        worst = worst.min(s);
        sum += s;
    }
    Ok(Pass { setting: quality, bytes, cpu_ms: cpu as f64 / n as f64 / 1e6, worst, mean: sum / n as f64, stored })
}

/// libx264 at `crf` (all-intra when `intra`), decoded back and compared.
fn x264(path: &Path, dir: &Path, n: usize, crf: u32, intra: bool) -> anyhow::Result<Pass> {
    let out = dir.join("x264.mkv");
    let size = format!("{W}x{H}");
    let crf_s = crf.to_string();
    let mut args = vec!["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size];
    args.extend(["-framerate", "0.1", "-i", path.to_str().context("path")?, "-c:v", "libx264", "-preset", "medium"]);
    args.extend(["-crf", &crf_s, "-pix_fmt", "yuv420p"]);
    if intra {
        args.extend(["-x264-params", "keyint=1"]);
    }
    args.push(out.to_str().context("path")?);
    let t = cpu_ns(libc::RUSAGE_CHILDREN);
    let ok = Command::new("ffmpeg").args(&args).status().context("running ffmpeg")?.success();
    anyhow::ensure!(ok, "ffmpeg failed to encode");
    let cpu = cpu_ns(libc::RUSAGE_CHILDREN) - t;
    let bytes = std::fs::metadata(&out)?.len();
    let mut dec = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i", out.to_str().context("path")?, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut pipe = BufReader::with_capacity(FRAME, dec.stdout.take().context("ffmpeg stdout")?);
    let (mut worst, mut sum, mut count) = (1.0f64, 0.0, 0);
    for img in frames(path)? {
        let mut rgb = vec![0; FRAME];
        pipe.read_exact(&mut rgb).context("x264 decoded fewer frames")?;
        let s = ssim(&Image { width: W, height: H, rgb }, &img);
        worst = worst.min(s);
        sum += s;
        count += 1;
    }
    dec.wait()?;
    anyhow::ensure!(count == n, "compared {count} of {n} frames");
    Ok(Pass { setting: crf, bytes, cpu_ms: cpu as f64 / n as f64 / 1e6, worst, mean: sum / n as f64, stored: n })
}

/// The cheapest setting in `lo..=hi` whose worst frame passes, by bisection
/// (`cheaper_up`: higher settings are cheaper, as x264's CRF).
fn cheapest(
    lo: u32,
    hi: u32,
    cheaper_up: bool,
    gate: f64,
    mut run: impl FnMut(u32) -> anyhow::Result<Pass>,
) -> anyhow::Result<Pass> {
    let (mut lo, mut hi) = (lo, hi);
    let mut best: Option<Pass> = None;
    while lo <= hi {
        let mid = (lo + hi) / 2;
        let p = run(mid)?;
        eprintln!("  setting {mid}: {} bytes, worst SSIM {:.4}", p.bytes, p.worst);
        let pass = p.worst >= gate;
        if pass {
            best = Some(p);
        }
        match (pass, cheaper_up) {
            (true, true) | (false, false) => lo = mid + 1,
            _ if mid == 0 => break,
            _ => hi = mid - 1,
        }
    }
    best.with_context(|| format!("no setting reaches worst-frame SSIM {gate}"))
}

fn line(name: &str, p: &Pass, n: usize) {
    let day = p.bytes as f64 * PER_DAY / n as f64 / 1e6;
    println!(
        "{name:<28} setting {:>3}  {day:>7.1} MB/day  {:>6.2} ms CPU/frame  worst SSIM {:.4}  mean {:.4}  frames stored {}",
        p.setting, p.cpu_ms, p.worst, p.mean, p.stored
    );
}

pub fn run(b: ScreenBench) -> anyhow::Result<()> {
    need("ffmpeg", "ffmpeg")?;
    let dir = tempfile::tempdir()?;
    let raw: PathBuf = b.frames_file.clone().unwrap_or_else(|| dir.path().join("frames.rgb"));
    let grab_ms = if std::fs::metadata(&raw).is_ok_and(|m| m.len() == (FRAME * b.frames) as u64) {
        eprintln!("reusing the frames in {}", raw.display());
        f64::NAN
    } else {
        eprintln!("recording {} captures of a scripted office session at {W}x{H}…", b.frames);
        record(&b, dir.path(), &raw)?
    };
    let n = b.frames;
    eprintln!("Candor tile codec: searching the lowest WebP quality that keeps every frame ≥ {}", b.gate);
    let ours = cheapest(0, 100, false, b.gate, |q| candor(&raw, n, q, false))?;
    if b.verbose {
        candor(&raw, n, ours.setting, true)?;
    }
    let default = candor(&raw, n, u32::from(candor_screen::encode::DEFAULT_QUALITY), false)?;
    eprintln!("x264 (default GOP): searching the highest CRF that keeps every frame ≥ {}", b.gate);
    let gop = cheapest(10, 51, true, b.gate, |c| x264(&raw, dir.path(), n, c, false))?;
    eprintln!("x264 all-intra: searching the highest CRF that keeps every frame ≥ {}", b.gate);
    let intra = cheapest(10, 51, true, b.gate, |c| x264(&raw, dir.path(), n, c, true))?;
    println!(
        "session: {n} captures of {W}x{H} (one per simulated 10 s: {:.1} h), capture {grab_ms:.1} ms/frame (MIT-SHM)",
        n as f64 / 360.0
    );
    line("candor tiles (WebP q)", &ours, n);
    line("candor tiles, default quality", &default, n);
    line("x264 medium (CRF)", &gop, n);
    line("x264 medium all-intra (CRF)", &intra, n);
    println!(
        "ratio bytes candor/x264 = {:.2} (goal ≤ 1), candor/x264-all-intra = {:.2}; CPU per frame candor/x264 = {:.2}",
        ours.bytes as f64 / gop.bytes as f64,
        ours.bytes as f64 / intra.bytes as f64,
        ours.cpu_ms / gop.cpu_ms
    );
    Ok(())
}
