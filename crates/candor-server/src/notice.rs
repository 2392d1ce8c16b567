//! The company's monitoring notice: what each category of data is collected
//! for, in Chinese and English. Published versions are immutable; employees
//! answer the version in force per category in the portal, and the agent
//! tells those who have not answered yet on their desktop.

use candor_proto::Category;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest title, and longest notice text or purpose, in characters.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 20_000;

/// One text in both languages the console speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

/// What an admin publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeBody {
    pub title: Bilingual,
    /// Who collects, on what legal ground, for how long, whom to ask.
    pub text: Bilingual,
    /// Category → why it is collected. Only categories named here can be
    /// consented to in the portal.
    pub purposes: BTreeMap<String, Bilingual>,
}

impl NoticeBody {
    /// Every problem is named; the notice must be complete in both languages.
    pub fn validate(&self) -> Result<(), String> {
        let check = |what: &str, t: &Bilingual, max: usize| {
            for (lang, s) in [("zh", &t.zh), ("en", &t.en)] {
                if s.trim().is_empty() {
                    return Err(format!("{what} is empty in {lang}"));
                }
                if s.chars().count() > max {
                    return Err(format!("{what} is longer than {max} characters in {lang}"));
                }
            }
            Ok(())
        };
        check("the title", &self.title, MAX_TITLE)?;
        check("the text", &self.text, MAX_TEXT)?;
        if self.purposes.is_empty() {
            return Err("the notice names no category".into());
        }
        for (name, purpose) in &self.purposes {
            let c: Category = name.parse()?;
            if c == Category::System {
                return Err("the system category needs no consent and has no place in the notice".into());
            }
            check(&format!("the purpose of {name}"), purpose, MAX_TEXT)?;
        }
        Ok(())
    }

    /// The categories the notice asks about, in the order of [`Category::GATED`].
    pub fn categories(&self) -> Vec<Category> {
        Category::GATED.into_iter().filter(|c| self.purposes.contains_key(c.as_str())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Bilingual {
        Bilingual { zh: format!("{s}（中文）"), en: s.into() }
    }

    fn body() -> NoticeBody {
        NoticeBody {
            title: t("Monitoring notice"),
            text: t("We record work activity."),
            purposes: [("activity".to_string(), t("time per application")), ("screen".into(), t("audits"))].into(),
        }
    }

    #[test]
    fn a_complete_notice_is_valid_and_lists_its_categories() {
        assert_eq!(body().validate(), Ok(()));
        assert_eq!(body().categories(), vec![Category::Activity, Category::Screen]);
    }

    #[test]
    fn every_gap_is_named() {
        let mut b = body();
        b.text.en = " ".into();
        assert_eq!(b.validate().unwrap_err(), "the text is empty in en");
        let mut b = body();
        b.purposes.insert("keystrokes".into(), t("x"));
        assert!(b.validate().unwrap_err().contains("unknown category \"keystrokes\""));
        let mut b = body();
        b.purposes.insert("system".into(), t("x"));
        assert!(b.validate().unwrap_err().contains("system"));
        let mut b = body();
        b.purposes.clear();
        assert_eq!(b.validate().unwrap_err(), "the notice names no category");
        let mut b = body();
        b.title.zh = "长".repeat(201);
        assert!(b.validate().unwrap_err().contains("longer than 200"));
    }
}
