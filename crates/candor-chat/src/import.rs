//! Import formats for chat exports from other tools (documented in
//! `docs/chat-import.md`): JSON Lines of archive-shaped messages, or CSV with
//! the columns `msgid,msgtime,from,tolist,roomid,msgtype,content`.
//! A bad line is reported with its number; the lines after it still import.

use crate::message::{self, ChatMessage};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "jsonl" | "json" => Ok(Format::JsonLines),
            "csv" => Ok(Format::Csv),
            other => Err(format!("unknown import format {other:?} (expected jsonl or csv)")),
        }
    }
}

/// One line's outcome: its 1-based line number and the message or why not.
pub type Line = (usize, Result<ChatMessage, String>);

pub fn read(format: Format, data: &[u8]) -> Vec<Line> {
    match format {
        Format::JsonLines => json_lines(data),
        Format::Csv => csv_rows(data),
    }
}

fn json_lines(data: &[u8]) -> Vec<Line> {
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| (i + 1, message::parse(l).map_err(|e| e.to_string())))
        .collect()
}

const COLUMNS: [&str; 7] = ["msgid", "msgtime", "from", "tolist", "roomid", "msgtype", "content"];

fn csv_rows(data: &[u8]) -> Vec<Line> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
        Err(e) => return vec![(1, Err(format!("CSV header: {e}")))],
    };
    let col: Vec<Option<usize>> = COLUMNS.iter().map(|c| header.iter().position(|h| h == c)).collect();
    if let Some(missing) =
        ["msgid", "msgtime", "from"].iter().find(|c| col[COLUMNS.iter().position(|x| x == *c).unwrap_or(0)].is_none())
    {
        return vec![(1, Err(format!("CSV header lacks the {missing} column")))];
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = rec.as_ref().ok().and_then(|r| r.position()).map_or(i + 2, |p| p.line() as usize);
        let row = rec.map_err(|e| e.to_string()).and_then(|r| {
            let get = |k: usize| col[k].and_then(|c| r.get(c)).unwrap_or("").trim().to_string();
            let msgtime: i64 = get(1).parse().map_err(|_| format!("msgtime {:?} is not a number", get(1)))?;
            let tolist: Vec<String> =
                get(3).split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
            let msgtype = Some(get(5)).filter(|t| !t.is_empty()).unwrap_or_else(|| "text".into());
            let content = get(6);
            let payload = match msgtype.as_str() {
                "text" => json!({ "content": content }),
                "file" => json!({ "filename": content }),
                "link" => json!({ "title": content }),
                "agree" | "disagree" => json!({ "userid": content }),
                other => {
                    return Err(format!("msgtype {other:?} cannot come from CSV (text, file, link, agree, disagree)"))
                }
            };
            let mut v = json!({ "msgid": get(0), "action": "send", "from": get(2), "tolist": tolist,
                                "roomid": get(4), "msgtime": msgtime, "msgtype": msgtype });
            if let Value::Object(o) = &mut v {
                o.insert(msgtype.clone(), payload);
            }
            message::from_value(v).map_err(|e| e.to_string())
        });
        out.push((line, row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_report_bad_lines_and_go_on() {
        let data = b"{\"msgid\":\"a\",\"from\":\"x\",\"msgtime\":1,\"msgtype\":\"text\",\"text\":{\"content\":\"hi\"}}\n\nnot json\n{\"msgid\":\"b\",\"from\":\"x\",\"msgtime\":2,\"msgtype\":\"text\",\"text\":{\"content\":\"yo\"}}\n";
        let lines = read(Format::JsonLines, data);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].1.is_ok() && lines[2].1.is_ok());
        assert_eq!(lines[1].0, 3);
        assert!(lines[1].1.is_err());
    }

    #[test]
    fn csv_rows_become_messages() {
        let data = "msgid,msgtime,from,tolist,roomid,msgtype,content\nm1,1700000000,zhangsan,lisi;wmX,,text,\"报价单, 见附件\"\nm2,notatime,a,,,text,x\nm3,1700000001000,wmX,zhangsan,,disagree,wmX\n";
        let lines = read(Format::Csv, data.as_bytes());
        let m1 = lines[0].1.as_ref().unwrap();
        assert_eq!((m1.ts_ms, m1.tolist.len(), m1.text.as_str()), (1_700_000_000_000, 2, "报价单, 见附件"));
        assert_eq!(lines[1].0, 3);
        assert!(lines[1].1.as_ref().unwrap_err().contains("msgtime"));
        assert_eq!(lines[2].1.as_ref().unwrap().consent.as_ref().map(|c| c.agree), Some(false));
        assert!(read(Format::Csv, b"a,b\n1,2\n")[0].1.is_err());
    }
}
