//! What the agent is doing, for the person at the desktop: which server it
//! reports to, under which policy, which categories it collects and which it
//! does not, whether software control is on. The running agent rewrites
//! `status.json` in its state directory at every heartbeat (readable by any
//! local user: nothing in it is secret) and `candor agent status` prints it —
//! the agent never hides itself.

use anyhow::Context;
use candor_proto::policy::{EffectivePolicy, PolicyRef};
use candor_proto::software::SoftwareMode;
use candor_proto::Category;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const FILE: &str = "status.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub updated_ms: i64,
    pub agent_id: u64,
    pub server: String,
    pub policy: Option<PolicyRef>,
    /// Categories collected now (policy and consent both say yes).
    pub collecting: Vec<String>,
    pub not_collecting: Vec<String>,
    pub personal_device: bool,
    /// `off`, `deny`, or `allow`, with the number of rules.
    pub software_control: String,
    pub spool_events: u64,
    pub notices: Vec<String>,
    /// The monitoring notice awaiting answers, and where to answer it.
    #[serde(default)]
    pub notice_due: Option<String>,
}

impl Status {
    pub fn new(agent_id: u64, server: &str, p: &EffectivePolicy, spool_events: u64, notices: Vec<String>) -> Status {
        let (collecting, not_collecting): (Vec<Category>, Vec<Category>) =
            Category::GATED.into_iter().partition(|c| p.allows(*c));
        let sw = &p.doc.software;
        let software_control = match sw.mode {
            SoftwareMode::Off if !sw.active() => "off".to_string(),
            SoftwareMode::Off => "installs and downloaded programs only".to_string(),
            SoftwareMode::Deny => format!("deny list ({} rules)", sw.rules.len()),
            SoftwareMode::Allow => format!("allow list ({} rules)", sw.rules.len()),
        };
        Status {
            updated_ms: candor_proto::now_ms(),
            agent_id,
            server: server.to_string(),
            policy: p.policy.clone(),
            collecting: collecting.iter().map(|c| c.as_str().to_string()).collect(),
            not_collecting: not_collecting.iter().map(|c| c.as_str().to_string()).collect(),
            personal_device: p.personal,
            software_control: if p.personal { "off".into() } else { software_control },
            spool_events,
            notices,
            notice_due: p.notice.as_ref().map(|n| {
                format!(
                    "version {} awaits the answer of {} at {}",
                    n.version,
                    n.pending.join(", "),
                    crate::visibility::portal_url(server)
                )
            }),
        }
    }

    /// Replace the file atomically (world-readable).
    pub fn write(&self, state_dir: &Path) -> anyhow::Result<()> {
        let tmp = state_dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, state_dir.join(FILE)).context("replacing status.json")?;
        Ok(())
    }

    pub fn read(state_dir: &Path) -> anyhow::Result<Status> {
        let path = state_dir.join(FILE);
        let data = std::fs::read(&path)
            .with_context(|| format!("no agent status at {} (is the agent running?)", path.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("reading {}", path.display()))
    }

    /// For people: what is collected, in both languages the product speaks.
    pub fn render(&self, now_ms: i64) -> String {
        let none = |v: &[String]| if v.is_empty() { "—".to_string() } else { v.join(", ") };
        let policy = match &self.policy {
            Some(p) => format!("{} r{} ({})", p.name, p.revision, p.scope),
            None => "none / 无".into(),
        };
        let age = (now_ms - self.updated_ms).max(0) / 1000;
        let mut out = format!(
            "Candor agent #{} — reports to {}\n\
             本机由 Candor 代理审计，数据发往上述服务器。\n\n\
             policy / 策略:                 {policy}\n\
             collecting / 正在收集:         {}\n\
             not collecting / 未收集:       {}\n\
             personal device / 个人设备:    {}\n\
             software control / 软件管控:   {}\n\
             waiting to upload / 待上传:    {} events\n\
             updated / 更新于:              {age} s ago\n",
            self.agent_id,
            self.server,
            none(&self.collecting),
            none(&self.not_collecting),
            if self.personal_device { "yes / 是" } else { "no / 否" },
            self.software_control,
            self.spool_events,
        );
        if let Some(n) = &self.notice_due {
            out.push_str(&format!("monitoring notice / 监控告知书: {n}\n"));
        }
        for n in &self.notices {
            out.push_str(&format!("notice / 提示: {n}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_proto::policy::{Collect, PolicyDoc};

    #[test]
    fn written_readable_and_rendered() {
        let doc =
            PolicyDoc { collect: Collect { activity: true, web: true, ..Default::default() }, ..Default::default() };
        let consent = [Category::Activity].into_iter().collect();
        let p = EffectivePolicy::compose(None, doc, vec![1], consent);
        let s = Status::new(7, "https://candor.example", &p, 12, vec!["no display".into()]);
        assert_eq!(s.collecting, vec!["activity"]);
        assert!(s.not_collecting.contains(&"web".to_string()), "enabled without consent is not collected");
        let dir = tempfile::tempdir().unwrap();
        s.write(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o644);
        let back = Status::read(dir.path()).unwrap();
        assert_eq!(back, s);
        let text = back.render(back.updated_ms + 5000);
        assert!(text.contains("正在收集:         activity") && text.contains("5 s ago") && text.contains("no display"));
        assert!(Status::read(&dir.path().join("missing")).unwrap_err().to_string().contains("is the agent running"));
    }
}
