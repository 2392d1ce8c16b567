//! One decrypted WeCom chat-archive message (the JSON `DecryptData` yields,
//! which is also Candor's import format) normalised into [`ChatMessage`].
//!
//! Lenient where the archive is known to be untidy: raw control characters
//! inside strings, nested JSON carried in strings (`mixed`, `chatrecord`),
//! times in seconds where milliseconds are documented. Unknown message types
//! are kept with their raw JSON and no text.

use serde_json::Value;

/// Messages larger than this are refused (the archive's own are far smaller).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Searchable text kept per message.
pub const MAX_TEXT_BYTES: usize = 64 << 10;
const MAX_ID_BYTES: usize = 256;
const MAX_RECEIVERS: usize = 5_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChatMessage {
    pub msgid: String,
    /// `send`, `recall` or `switch`.
    pub action: String,
    pub from: String,
    pub tolist: Vec<String>,
    /// Group chat id; empty for a one-to-one chat.
    pub roomid: String,
    pub ts_ms: i64,
    pub msgtype: String,
    /// What search sees: the message's words, file names, titles.
    pub text: String,
    /// Media to fetch with the SDK (`sdkfileid`), with what the message says of it.
    pub media: Vec<MediaRef>,
    /// A contact agreeing to or declining archiving.
    pub consent: Option<ConsentChange>,
    /// For a recall: the message it withdraws.
    pub revokes: Option<String>,
    /// The message as received (re-serialised when it had to be repaired).
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MediaRef {
    pub sdkfileid: String,
    pub md5sum: Option<String>,
    pub size: Option<u64>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConsentChange {
    pub contact: String,
    pub agree: bool,
    pub ts_ms: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MessageError {
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("field {0}: {1}")]
    Field(&'static str, String),
}

/// Values below this are seconds (10^11 ms is March 1973; 10^11 s is year 5138).
const SECONDS_BELOW: i64 = 100_000_000_000;

pub fn to_ms(v: i64) -> i64 {
    if v.abs() < SECONDS_BELOW {
        v.saturating_mul(1000)
    } else {
        v
    }
}

/// Parses JSON, escaping raw control characters inside strings on a second try.
pub fn lenient_json(bytes: &[u8]) -> Result<Value, MessageError> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let repaired = escape_controls(bytes);
            serde_json::from_slice(&repaired).map_err(|_| MessageError::Json(first.to_string()))
        }
    }
}

fn escape_controls(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let (mut in_str, mut escaped) = (false, false);
    for &b in bytes {
        if in_str && b < 0x20 {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
            continue;
        }
        out.push(b);
        if escaped {
            escaped = false;
        } else if in_str && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_str = !in_str;
        }
    }
    out
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn int_field(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn id(v: &Value, key: &'static str, required: bool) -> Result<String, MessageError> {
    let s = str_field(v, key);
    if s.len() > MAX_ID_BYTES {
        return Err(MessageError::Field(key, format!("longer than {MAX_ID_BYTES} bytes")));
    }
    if required && s.trim().is_empty() {
        return Err(MessageError::Field(key, "missing".into()));
    }
    Ok(s.to_string())
}

/// A nested item's content: an object, or a JSON object inside a string.
fn nested(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

struct Text(String);

impl Text {
    fn push(&mut self, s: &str) {
        let s = s.trim();
        if s.is_empty() || self.0.len() >= MAX_TEXT_BYTES {
            return;
        }
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        let room = MAX_TEXT_BYTES - self.0.len();
        let mut cut = s.len().min(room);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.0.push_str(&s[..cut]);
    }

    fn fields(&mut self, v: &Value, keys: &[&str]) {
        for k in keys {
            match v.get(*k) {
                Some(Value::String(s)) => self.push(s),
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).for_each(|s| self.push(s)),
                _ => {}
            }
        }
    }
}

fn media(v: &Value, name_key: &str, size_key: &str) -> Option<MediaRef> {
    let id = str_field(v, "sdkfileid");
    if id.is_empty() || id.len() > 4096 {
        return None;
    }
    let name = str_field(v, name_key);
    Some(MediaRef {
        sdkfileid: id.to_string(),
        md5sum: Some(str_field(v, "md5sum").to_string()).filter(|s| !s.is_empty()),
        size: int_field(v, size_key).and_then(|s| u64::try_from(s).ok()),
        name: Some(name.to_string()).filter(|s| !s.is_empty()),
    })
}

/// Text and media of nested items (`mixed`, `chatrecord`), one level deep per call.
fn items(list: Option<&Value>, text: &mut Text, out: &mut Vec<MediaRef>, depth: u8) {
    let Some(Value::Array(list)) = list else { return };
    for item in list.iter().take(1000) {
        let kind = str_field(item, "type").to_ascii_lowercase();
        let content = nested(item.get("content"));
        match &content {
            Value::String(s) => text.push(s),
            Value::Object(_) => {
                text.fields(&content, &["content", "title", "description", "filename", "address", "link_url"]);
                if let Some(m) = media(&content, "filename", "filesize") {
                    out.push(m);
                }
                if depth < 4 && (kind.contains("mixed") || kind.contains("chatrecord")) {
                    items(content.get("item"), text, out, depth + 1);
                }
            }
            _ => {}
        }
    }
}

pub fn parse(bytes: &[u8]) -> Result<ChatMessage, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge);
    }
    let v = lenient_json(bytes)?;
    from_value(v)
}

pub fn from_value(v: Value) -> Result<ChatMessage, MessageError> {
    if !v.is_object() {
        return Err(MessageError::NotObject);
    }
    let msgid = id(&v, "msgid", true)?;
    let action = match str_field(&v, "action") {
        "" => "send",
        a @ ("send" | "recall" | "switch") => a,
        other => return Err(MessageError::Field("action", format!("unknown action {other:?}"))),
    }
    .to_string();
    let msgtype = if action == "switch" { "switch".to_string() } else { id(&v, "msgtype", true)? };
    let ts = int_field(&v, "msgtime").or_else(|| int_field(&v, "time"));
    let ts_ms = to_ms(ts.ok_or_else(|| MessageError::Field("msgtime", "missing".into()))?);
    let from = if action == "switch" { id(&v, "user", false)? } else { id(&v, "from", true)? };
    let tolist = match v.get("tolist") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_RECEIVERS => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_ID_BYTES)
            .map(String::from)
            .collect(),
        Some(_) => return Err(MessageError::Field("tolist", format!("not a list of at most {MAX_RECEIVERS} ids"))),
    };
    let roomid = id(&v, "roomid", false)?;

    let mut text = Text(String::new());
    let mut media_refs = Vec::new();
    let (mut consent, mut revokes) = (None, None);
    // Most types keep their payload under a key named like the type.
    let key = match msgtype.as_str() {
        "docmsg" => "doc",
        "markdown" | "news" => "info",
        "external_redpacket" => "redpacket",
        t => t,
    };
    let p = v.get(key).cloned().unwrap_or(Value::Null);
    match msgtype.as_str() {
        "text" | "markdown" => text.fields(&p, &["content"]),
        "image" | "voice" | "video" => {
            media_refs.extend(media(&p, "", if msgtype == "voice" { "voice_size" } else { "filesize" }))
        }
        "emotion" => {
            text.fields(&p, &["title"]);
            media_refs.extend(media(&p, "title", "imagesize"));
        }
        "file" | "voip_doc_share" => {
            text.fields(&p, &["filename"]);
            media_refs.extend(media(&p, "filename", "filesize"));
        }
        "link" | "weapp" => text.fields(&p, &["title", "description", "displayname", "link_url"]),
        "card" => text.fields(&p, &["corpname", "userid"]),
        "location" => text.fields(&p, &["title", "address"]),
        "todo" => text.fields(&p, &["title", "content"]),
        "vote" => text.fields(&v, &["votetitle", "voteitem"]),
        "collect" => {
            text.fields(&p, &["room_name", "title"]);
            if let Some(Value::Array(d)) = p.get("details") {
                d.iter().take(1000).for_each(|q| text.fields(q, &["ques"]));
            }
        }
        "redpacket" | "external_redpacket" => text.fields(&p, &["wish"]),
        "meeting" => text.fields(&p, &["topic", "address", "remarks"]),
        "docmsg" => text.fields(&p, &["title", "link_url"]),
        "calendar" => text.fields(&p, &["title", "place", "remarks", "creatorname"]),
        "sphfeed" => text.fields(&p, &["sph_name", "feed_desc"]),
        "news" => {
            if let Some(Value::Array(a)) = p.get("item") {
                a.iter().take(100).for_each(|i| text.fields(i, &["title", "description", "url"]));
            }
        }
        "mixed" | "chatrecord" => {
            text.fields(&p, &["title"]);
            items(p.get("item"), &mut text, &mut media_refs, 0);
        }
        "meeting_voice_call" => {
            media_refs.extend(media(&p, "", ""));
            if let Some(Value::Array(files)) = p.get("demofiledata") {
                files.iter().take(100).for_each(|f| text.fields(f, &["filename"]));
            }
        }
        "revoke" => {
            revokes =
                Some(id(&p, "pre_msgid", true).map_err(|_| MessageError::Field("revoke.pre_msgid", "missing".into()))?)
        }
        "agree" | "disagree" => {
            let contact = id(&p, "userid", false)?;
            let contact = if contact.is_empty() { from.clone() } else { contact };
            let at =
                int_field(&p, if msgtype == "agree" { "agree_time" } else { "disagree_time" }).map_or(ts_ms, to_ms);
            consent = Some(ConsentChange { contact, agree: msgtype == "agree", ts_ms: at });
        }
        _ => {}
    }
    let raw = serde_json::to_string(&v).map_err(|e| MessageError::Json(e.to_string()))?;
    Ok(ChatMessage {
        msgid,
        action,
        from,
        tolist,
        roomid,
        ts_ms,
        msgtype,
        text: text.0,
        media: media_refs,
        consent,
        revokes,
        raw,
    })
}

/// WeCom external contacts (and bots) have ids beginning `wo`, `wm` or `wb`.
pub fn is_external(id: &str) -> bool {
    id.starts_with("wo") || id.starts_with("wm") || id.starts_with("wb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_examples() {
        let m = parse(br#"{"msgid":"CAQQluDa4QUY0On2rYSAgAMgzPrShAE=","action":"send","from":"XuJinSheng","tolist":["icefog"],"roomid":"","msgtime":1547087894783,"msgtype":"text","text":{"content":"test"}}"#).unwrap();
        assert_eq!(
            (m.from.as_str(), m.tolist.clone(), m.ts_ms, m.text.as_str()),
            ("XuJinSheng", vec!["icefog".to_string()], 1547087894783, "test")
        );
        let m = parse(br#"{"msgid":"8891446340739254950_1603875826","action":"send","from":"wmGAgeDQAAvQeaTqWwkMTxGMkvI7OOuQ","tolist":["kenshin"],"roomid":"","msgtime":1603875826656,"msgtype":"agree","agree":{"userid":"wmGAgeDQAAvQeaTqWwkMTxGMkvI7OOuQ","agree_time":1603875826656}}"#).unwrap();
        assert_eq!(
            m.consent,
            Some(ConsentChange {
                contact: "wmGAgeDQAAvQeaTqWwkMTxGMkvI7OOuQ".into(),
                agree: true,
                ts_ms: 1603875826656
            })
        );
        let m = parse(br#"{"msgid":"1","action":"recall","from":"kenshin","tolist":["wmUu"],"roomid":"","msgtime":1603875615723,"msgtype":"revoke","revoke":{"pre_msgid":"14822339130656386894_1603875600"}}"#).unwrap();
        assert_eq!(m.revokes.as_deref(), Some("14822339130656386894_1603875600"));
        let m =
            parse(br#"{"msgid":"125289002219525886280","action":"switch","time":1554119421840,"user":"XuJinSheng"}"#)
                .unwrap();
        assert_eq!((m.msgtype.as_str(), m.from.as_str()), ("switch", "XuJinSheng"));
    }

    #[test]
    fn nested_json_seconds_and_control_characters() {
        let m = parse(b"{\"msgid\":\"m\",\"from\":\"a\",\"tolist\":[\"b\"],\"msgtime\":1594197581,\"msgtype\":\"mixed\",\"mixed\":{\"item\":[{\"type\":\"text\",\"content\":\"{\\\"content\\\":\\\"\xe4\xbd\xa0\xe5\xa5\xbd\\\\n\\\"}\"},{\"type\":\"image\",\"content\":\"{\\\"md5sum\\\":\\\"368b\\\",\\\"filesize\\\":13177,\\\"sdkfileid\\\":\\\"CtYB\\\"}\"}]}}").unwrap();
        assert_eq!(m.ts_ms, 1594197581000);
        assert_eq!(m.text, "你好");
        assert_eq!(m.media[0].sdkfileid, "CtYB");
        let m = parse(b"{\"msgid\":\"m\",\"from\":\"a\",\"msgtime\":1,\"msgtype\":\"text\",\"text\":{\"content\":\"line1\nline2\"}}").unwrap();
        assert_eq!(m.text, "line1\nline2");
    }

    #[test]
    fn unknown_types_are_kept_raw_and_bad_input_named() {
        let m =
            parse(br#"{"msgid":"m","from":"a","msgtime":1,"msgtype":"future_type","future_type":{"x":1}}"#).unwrap();
        assert!(m.text.is_empty() && m.raw.contains("future_type"));
        assert!(matches!(parse(b"{\"msgid\":1"), Err(MessageError::Json(_))));
        assert_eq!(parse(b"[1]"), Err(MessageError::NotObject));
        assert!(matches!(
            parse(br#"{"msgid":"m","from":"a","msgtype":"text"}"#),
            Err(MessageError::Field("msgtime", _))
        ));
        assert!(matches!(parse(br#"{"from":"a","msgtime":1,"msgtype":"text"}"#), Err(MessageError::Field("msgid", _))));
    }
}
