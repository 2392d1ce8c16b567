//! The application catalogue: friendly names, categories and icons from
//! freedesktop.org `.desktop` files, looked up by executable name or
//! WM_CLASS. Files are untrusted (any user-installed package can ship one):
//! sizes and counts are bounded and odd lines are skipped.

use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MAX_FILE: u64 = 64 * 1024;
const MAX_FILES: usize = 10_000;
const MAX_ICON: u64 = 32 * 1024;
const DIRS: &[&str] = &[
    "/usr/share/applications",
    "/usr/local/share/applications",
    "/var/lib/flatpak/exports/share/applications",
    "/var/lib/snapd/desktop/applications",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEntry {
    pub desktop_id: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub categories: Vec<String>,
    pub icon: Option<String>,
    exec: Option<String>,
    wm_class: Option<String>,
}

#[derive(Debug, Default)]
pub struct Catalogue {
    entries: Vec<AppEntry>,
    by_key: HashMap<String, usize>,
}

/// Parse the `[Desktop Entry]` group of one file; `None` for hidden,
/// non-application or nameless entries.
pub fn parse(desktop_id: &str, text: &str) -> Option<AppEntry> {
    let mut in_entry = false;
    let mut kv: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_entry = line == "[Desktop Entry]";
            continue;
        }
        if !in_entry || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            kv.entry(k.trim()).or_insert(v.trim());
        }
    }
    let yes = |k: &str| kv.get(k).is_some_and(|v| *v == "true");
    if kv.get("Type").is_some_and(|t| *t != "Application") || yes("Hidden") {
        return None;
    }
    let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let name = clip(kv.get("Name").filter(|n| !n.is_empty())?, 128);
    let name_zh = kv.get("Name[zh_CN]").or_else(|| kv.get("Name[zh]")).map(|n| clip(n, 128));
    let categories =
        kv.get("Categories").map(|c| c.split(';').filter(|c| !c.is_empty()).take(16).map(|c| clip(c, 64)).collect());
    Some(AppEntry {
        desktop_id: clip(desktop_id, 256),
        name,
        name_zh,
        categories: categories.unwrap_or_default(),
        icon: kv.get("Icon").map(|i| clip(i, 256)),
        exec: kv.get("TryExec").or_else(|| kv.get("Exec")).and_then(|e| exec_name(e)),
        wm_class: kv.get("StartupWMClass").map(|c| c.to_lowercase()),
    })
}

/// Executable base name from an Exec line: skips `env VAR=…` and flatpak's
/// `run` wrapper is left as is (its WM_CLASS still matches).
fn exec_name(exec: &str) -> Option<String> {
    let mut words = exec.split_whitespace().map(|w| w.trim_matches('"'));
    let mut first = words.next()?;
    if first.rsplit('/').next() == Some("env") {
        first = words.find(|w| !w.contains('=') && !w.starts_with('-'))?;
    }
    let base = first.rsplit('/').next()?;
    (!base.is_empty()).then(|| base.to_string())
}

impl Catalogue {
    /// Read the system's application directories.
    pub fn load() -> Catalogue {
        Catalogue::from_dirs(DIRS.iter().map(Path::new))
    }

    pub fn from_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Catalogue {
        let mut cat = Catalogue::default();
        let mut seen = 0;
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(dir) else { continue };
            for entry in rd.flatten() {
                seen += 1;
                if seen > MAX_FILES {
                    tracing::warn!("more than {MAX_FILES} .desktop files; the rest are ignored");
                    return cat;
                }
                let path = entry.path();
                let Some(id) = path.file_name().and_then(|n| n.to_str()).filter(|n| n.ends_with(".desktop")) else {
                    continue;
                };
                if entry.metadata().map(|m| !m.is_file() || m.len() > MAX_FILE).unwrap_or(true) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else { continue };
                if let Some(e) = parse(id, &text) {
                    cat.add(e);
                }
            }
        }
        cat
    }

    fn add(&mut self, e: AppEntry) {
        let i = self.entries.len();
        let stem = e.desktop_id.trim_end_matches(".desktop").to_lowercase();
        for key in [e.exec.clone(), e.wm_class.clone(), Some(stem)].into_iter().flatten() {
            // The first file wins, as in XDG_DATA_DIRS order.
            self.by_key.entry(key.to_lowercase()).or_insert(i);
        }
        self.entries.push(e);
    }

    /// The entry for an application id (executable name) or WM_CLASS.
    pub fn find(&self, app: &str, wm_class: Option<&str>) -> Option<&AppEntry> {
        std::iter::once(app)
            .chain(wm_class)
            .find_map(|k| self.by_key.get(&k.to_lowercase()))
            .and_then(|i| self.entries.get(*i))
    }
}

/// A PNG for an icon name from hicolor or pixmaps (SVG and XPM are skipped:
/// the console shows a letter instead). Bounded and checked for the PNG magic.
pub fn icon_png(icon: &str) -> Option<String> {
    let candidates: Vec<PathBuf> = if icon.starts_with('/') {
        vec![PathBuf::from(icon)]
    } else if icon.contains('/') || icon.contains("..") {
        return None;
    } else {
        ["48x48", "64x64", "32x32", "128x128"]
            .iter()
            .map(|s| PathBuf::from(format!("/usr/share/icons/hicolor/{s}/apps/{icon}.png")))
            .chain(std::iter::once(PathBuf::from(format!("/usr/share/pixmaps/{icon}.png"))))
            .collect()
    };
    candidates.iter().find_map(|p| {
        let meta = std::fs::metadata(p).ok()?;
        if !meta.is_file() || meta.len() > MAX_ICON {
            return None;
        }
        let bytes = std::fs::read(p).ok()?;
        bytes.starts_with(b"\x89PNG\r\n\x1a\n").then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_finds_by_exec_wm_class_or_id() {
        let text = "[Desktop Entry]\nType=Application\nName=WPS 文字\nName[zh_CN]=WPS文字\nExec=env LANG=zh_CN /opt/kingsoft/wps-office/office6/wps %f\nStartupWMClass=Wps\nCategories=Office;WordProcessor;\nIcon=wps-office2019-wpsmain\n[Desktop Action New]\nName=ignored\n";
        let e = parse("wps-office-wps.desktop", text).unwrap();
        assert_eq!(e.name, "WPS 文字");
        assert_eq!(e.name_zh.as_deref(), Some("WPS文字"));
        assert_eq!(e.categories, vec!["Office", "WordProcessor"]);
        let mut c = Catalogue::default();
        c.add(e);
        assert!(c.find("wps", None).is_some());
        assert!(c.find("unknown", Some("WPS")).is_some());
        assert!(c.find("wps-office-wps", None).is_some());
        assert!(c.find("nothing", Some("else")).is_none());
    }

    #[test]
    fn hostile_files_are_bounded_or_skipped() {
        assert!(parse("x.desktop", "[Desktop Entry]\nType=Link\nName=x\n").is_none());
        assert!(parse("x.desktop", "garbage\0\u{fffd}=\n[Desktop Entry]\nExec=\n").is_none(), "no name");
        let long = format!("[Desktop Entry]\nName={}\nExec=\"\"\n", "名".repeat(10_000));
        let e = parse("x.desktop", &long).unwrap();
        assert_eq!(e.name.chars().count(), 128);
        assert_eq!(e.exec, None);
        assert_eq!(icon_png("../../etc/passwd"), None);
        assert_eq!(icon_png("/etc/passwd"), None, "not a PNG");
    }

    #[test]
    fn reads_this_machines_applications() {
        // Debian's xterm package ships debian-xterm.desktop (the test script installs it).
        let c = Catalogue::load();
        if std::path::Path::new("/usr/share/applications/debian-xterm.desktop").exists() {
            let e = c.find("xterm", Some("XTerm")).expect("xterm in the catalogue");
            assert_eq!(e.name, "XTerm");
            assert!(e.categories.iter().any(|c| c == "TerminalEmulator"));
        }
    }
}
