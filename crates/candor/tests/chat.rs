//! Chat audit end to end against a real server: thousands of archive-shaped
//! messages of every type imported (with bad lines among them), stored once,
//! searched by substring with recall and precision checked against a
//! brute-force scan of the generated corpus for every query, consent hiding
//! (external contacts who never agreed or later declined, per conversation:
//! one who agreed with one employee stays hidden with another; employees
//! without chat consent), DLP alerts with masked evidence only for visible messages,
//! the access log, an index rebuilt after it was lost, retention with a legal
//! hold, and the console page in real Chromium.

mod common;

use common::browser::Browser;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const WORDS: &[&str] = &[
    "报价单",
    "客户",
    "合同",
    "价格",
    "发票",
    "会议",
    "明天",
    "下午",
    "项目",
    "进度",
    "iPhone15",
    "MacBook",
    "确认",
    "付款",
    "快递",
    "样品",
    "技术",
    "方案",
    "需要",
    "可以",
    "谢谢",
    "好的",
    "我们",
    "你们",
    "签字",
    "盖章",
    "邮件",
    "附件",
    "哈哈",
    "老板",
    "单价",
    "户口",
    "同事",
    "OK",
    "好 的",
    "，",
    "。",
    "2024年",
    "Q3",
    "数据",
];
const VALID_ID: &str = "11010519491231002X";
const BAD_ID: &str = "110105194912310021";
const CARD: &str = "4111 1111 1111 1111";

/// A generated message and the text search must find it by.
struct Gen {
    line: String,
    msgid: String,
    text: String,
    people: Vec<String>,
    room: String,
}

/// Consent as this test models it, apart from the server's code: an employee
/// without chat consent hides every message they take part in; an external
/// contact (`wo…`, `wm…`) hides the messages of each conversation where they
/// have not agreed — a room, or their one-to-one chat with one employee.
struct Shown<'a> {
    unconsented: &'a [&'a str],
    /// (contact, "room:<id>" or "user:<employee>")
    agreed: &'a [(&'a str, &'a str)],
}

impl Shown<'_> {
    fn shows(&self, g: &Gen) -> bool {
        let external = |p: &str| p.starts_with("wo") || p.starts_with("wm");
        let agreed = |c: &str, scope: String| self.agreed.iter().any(|(a, s)| *a == c && *s == scope);
        !g.people.iter().any(|p| self.unconsented.contains(&p.as_str()))
            && g.people.iter().filter(|c| external(c)).all(|c| {
                if g.room.is_empty() {
                    g.people.iter().filter(|e| !external(e)).all(|e| agreed(c, format!("user:{e}")))
                } else {
                    agreed(c, format!("room:{}", g.room))
                }
            })
    }
}

fn phrase(rng: &mut StdRng) -> String {
    (0..rng.gen_range(2..8)).map(|_| WORDS[rng.gen_range(0..WORDS.len())]).collect()
}

fn fold(s: &str) -> String {
    s.chars().map(candor_chat::text::fold).collect()
}

/// The corpus: conversations among employees and external contacts, every
/// message type the archive knows plus an unknown one.
fn corpus(n: usize, start_ms: i64) -> Vec<Gen> {
    let mut rng = StdRng::seed_from_u64(7);
    let convs: &[(&str, &[&str], &str)] = &[
        ("zhangsan", &["wmAgree01"], ""),
        ("zhangsan", &["wangwu"], ""),
        ("zhangsan", &["lisi"], ""),
        ("wangwu", &["wmNever02"], ""),
        ("wangwu", &["woLater03"], ""),
        ("zhangsan", &["wangwu", "wmAgree01"], "wrRoom1"),
        // wmAgree01 agreed with zhangsan, not with wangwu.
        ("wangwu", &["wmAgree01"], ""),
    ];
    let mut out = Vec::new();
    for i in 0..n {
        let (from, to, room) = convs[i % convs.len()];
        let msgid = format!("m{i:05}");
        let ts = start_ms + i as i64 * 1000;
        let env = |t: &str| json!({"msgid": msgid, "action": "send", "from": from, "tolist": to, "roomid": room, "msgtime": ts, "msgtype": t});
        let p = phrase(&mut rng);
        let (mut v, text) = match i % 23 {
            0 => (env("file"), format!("{p}.pdf")),
            1 => (env("link"), format!("{p}\n说明{p}")),
            2 => {
                let inner = json!({"content": p}).to_string();
                let img = json!({"md5sum": "ab", "filesize": 10, "sdkfileid": "SDK1"}).to_string();
                (env("mixed"), p.clone()).tap(|v| {
                    v["mixed"] =
                        json!({"item": [{"type": "text", "content": inner}, {"type": "image", "content": img}]})
                })
            }
            3 => {
                let inner = json!({"content": p}).to_string();
                (env("chatrecord"), format!("聊天记录\n{p}"))
                    .tap(|v| v["chatrecord"] = json!({"title": "聊天记录", "item": [{"type": "ChatRecordText", "msgtime": ts / 1000, "content": inner, "from_chatroom": false}]}))
            }
            4 => (env("image"), String::new())
                .tap(|v| v["image"] = json!({"sdkfileid": "SDKimg", "md5sum": "cd", "filesize": 600_000})),
            5 => (env("voice"), String::new())
                .tap(|v| v["voice"] = json!({"sdkfileid": "SDKv", "voice_size": 100, "play_length": 3})),
            6 => (env("location"), format!("{p}\n北京市海淀区")).tap(|v| {
                v["location"] =
                    json!({"title": p, "address": "北京市海淀区", "latitude": 39.9, "longitude": 116.3, "zoom": 15})
            }),
            7 => (env("markdown"), p.clone()).tap(|v| v["info"] = json!({"content": p})),
            8 => (env("news"), format!("{p}\n新闻"))
                .tap(|v| v["info"] = json!({"item": [{"title": p, "description": "新闻"}]})),
            9 => (env("calendar"), format!("{p}\n三楼")).tap(|v| {
                v["calendar"] =
                    json!({"title": p, "place": "三楼", "starttime": ts / 1000, "endtime": ts / 1000 + 3600})
            }),
            10 => (env("voip_doc_share"), format!("{p}.docx")).tap(|v| {
                v["voip_doc_share"] =
                    json!({"filename": format!("{p}.docx"), "sdkfileid": "SDKd", "md5sum": "ef", "filesize": 4})
            }),
            11 => (env("future_type"), String::new()).tap(|v| v["future_type"] = json!({"anything": p})),
            12 => (env("card"), format!("某某公司\n{p}"))
                .tap(|v| v["card"] = json!({"corpname": "某某公司", "userid": p})),
            13 => (env("todo"), format!("{p}\n待办")).tap(|v| v["todo"] = json!({"title": p, "content": "待办"})),
            14 if i > 100 => {
                let pre = format!("m{:05}", i - 92);
                (env("revoke"), String::new()).tap(|v| {
                    v["action"] = json!("recall");
                    v["revoke"] = json!({"pre_msgid": pre});
                })
            }
            15 => (env("text"), format!("身份证{VALID_ID}，{p}")),
            16 => (env("text"), format!("卡号{CARD}，{p}")),
            17 => (env("text"), format!("编号{BAD_ID}{p}")),
            // Seconds instead of milliseconds, and a raw control character.
            18 => (env("text"), format!("{p}\t{p}")).tap(|v| v["msgtime"] = json!(ts / 1000)),
            _ => (env("text"), p.clone()),
        };
        let t = v["msgtype"].as_str().unwrap().to_string();
        if t == "file" {
            v["file"] = json!({"filename": text, "sdkfileid": "SDKf", "md5sum": "00", "filesize": 1});
        } else if t == "link" {
            v["link"] = json!({"title": p, "description": format!("说明{p}"), "link_url": ""});
        } else if t == "text" {
            v["text"] = json!({"content": text});
        }
        let mut line = v.to_string();
        if i % 23 == 18 {
            line = line.replace("\\t", "\t");
        }
        let people = std::iter::once(from).chain(to.iter().copied()).map(String::from).collect();
        out.push(Gen { line, msgid, text, people, room: room.to_string() });
    }
    out
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Value)) -> Self;
}

impl Tap for (Value, String) {
    fn tap(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.0);
        self
    }
}

async fn import(api: &AdminApi, format: &str, body: String) -> Value {
    let r = api
        .client
        .post(format!("{}/api/v1/chat/import?format={format}", api.url))
        .bearer_auth(api.token())
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "import: {}", r.status());
    r.json().await.unwrap()
}

/// Every msgid the search API returns for `q`, following pages.
async fn search_all(api: &AdminApi, q: &str, extra: &str) -> (u64, BTreeSet<String>) {
    let mut found = BTreeSet::new();
    let mut total = 0;
    loop {
        let enc: String = url_escape(q);
        let r = api.get(&format!("/api/v1/chat/search?q={enc}&limit=500&offset={}{extra}", found.len())).await;
        total = r["total"].as_u64().unwrap_or(total);
        let hits = r["hits"].as_array().unwrap();
        if hits.is_empty() {
            return (total, found);
        }
        for h in hits {
            assert!(found.insert(h["msgid"].as_str().unwrap().to_string()), "a hit twice");
        }
    }
}

fn url_escape(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// What a fake HTTP service saw: (request line, body).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A plain HTTP stand-in for a WeCom service: `answer(request line, body)` gives the JSON reply.
async fn http_fake(answer: fn(&str, &str) -> String) -> (u16, Seen) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let keep = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else { continue };
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < head_end + 4 + len {
                        continue;
                    }
                    let line = text.lines().next().unwrap_or("").to_string();
                    let body = String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + len]).to_string();
                    let reply = answer(&line, &body);
                    keep.lock().unwrap().push((line, body));
                    buf.drain(..head_end + 4 + len);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        reply.len()
                    );
                    let _ = sock.write_all((head + &reply).as_bytes()).await;
                }
            });
        }
    });
    (port, seen)
}

/// An SMTP server that accepts every message and keeps it.
async fn smtp_fake() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let keep = keep.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 fake ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            keep.lock().unwrap().push(data.take().unwrap_or_default());
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, mails)
}

/// The WeCom group robot.
async fn robot() -> (u16, Seen) {
    http_fake(|_, _| r#"{"errcode":0,"errmsg":"ok"}"#.to_string()).await
}

/// qyapi: a token for the archive secret, and archiving consent per pair and per room.
fn qyapi(line: &str, body: &str) -> String {
    let now = candor_proto::now_ms() / 1000;
    if line.starts_with("GET /cgi-bin/gettoken?") {
        return if line.contains("corpid=ww-test") && line.contains("corpsecret=archive-secret") {
            json!({"errcode": 0, "errmsg": "ok", "access_token": "TOKEN", "expires_in": 7200}).to_string()
        } else {
            json!({"errcode": 40001, "errmsg": "invalid credential"}).to_string()
        };
    }
    if !line.contains("access_token=TOKEN") {
        return json!({"errcode": 40014, "errmsg": "invalid access_token"}).to_string();
    }
    let req: Value = serde_json::from_str(body).unwrap_or_default();
    // wmAgree01 agrees with zhangsan, not with wangwu; woLater03 declines.
    let status =
        |u: &Value, c: &str| if c == "woLater03" || (c == "wmAgree01" && u == "wangwu") { "Disagree" } else { "Agree" };
    if line.contains("/msgaudit/get_permit_user_list") {
        // zhaoliu chats with a contact but is not archived: the sync must not ask about that pair.
        return json!({"errcode": 0, "errmsg": "ok", "ids": ["zhangsan", "wangwu"]}).to_string();
    }
    if line.contains("/msgaudit/groupchat/get") {
        return if req["roomid"] == "wrTeam2" {
            json!({"errcode": 0, "errmsg": "ok", "roomname": "销售周会", "creator": "zhangsan", "notice": "",
                   "room_create_time": now, "members": [{"memberid": "zhangsan", "jointime": now}, {"memberid": "wangwu", "jointime": now}]})
            .to_string()
        } else {
            json!({"errcode": 301052, "errmsg": "chat archive expired"}).to_string()
        };
    }
    let info: Vec<Value> = if line.contains("/msgaudit/check_single_agree") {
        let pairs = req["info"].as_array().cloned().unwrap_or_default();
        pairs
            .iter()
            .map(|p| {
                let c = p["exteranalopenid"].as_str().unwrap_or("");
                json!({"userid": p["userid"], "exteranalopenid": c, "agree_status": status(&p["userid"], c), "status_change_time": now})
            })
            .collect()
    } else if line.contains("/msgaudit/check_room_agree") && req["roomid"] == "wrRoom1" {
        vec![json!({"exteranalopenid": "wmAgree01", "agree_status": "Agree", "status_change_time": now})]
    } else {
        return json!({"errcode": 40058, "errmsg": "bad request"}).to_string();
    };
    json!({"errcode": 0, "errmsg": "ok", "agreeinfo": info}).to_string()
}

#[tokio::test]
async fn chat_import_search_consent_dlp_and_console() {
    let tmp = tempfile::tempdir().unwrap();
    let (robot_port, robot_got) = robot().await;
    let (smtp_port, mails) = smtp_fake().await;
    let mut server = Server::start(
        tmp.path(),
        &format!(
            "[alerts]\nwecom_webhook = \"http://127.0.0.1:{robot_port}/cgi-bin/webhook/send?key=test\"\n\
             smtp_url = \"smtp://127.0.0.1:{smtp_port}\"\nsmtp_to = [\"安全组 <security@example.com>\"]\n"
        ),
    )
    .await;
    let team = server.team().await;
    let emp = |name: &str, user: &str| json!({"name": name, "username": user});
    let mut ids = std::collections::HashMap::new();
    for (name, user) in [("张三", "zhangsan"), ("李四", "lisi"), ("王五", "wangwu")] {
        ids.insert(user, team.sys.post("/api/v1/employees", emp(name, user)).await["id"].as_u64().unwrap());
    }
    team.consent(ids["zhangsan"], "chat", true).await;
    team.consent(ids["wangwu"], "chat", true).await;
    team.consent(ids["lisi"], "chat", true).await;
    team.consent(ids["lisi"], "chat", false).await; // withdrawn: the latest record counts

    let start = candor_proto::now_ms() - 86_400_000;
    let n = 3000;
    let gens = corpus(n, start);
    let agree = |id: &str, who: &str, to: &[&str], room: &str, ts: i64, kind: &str| {
        json!({"msgid": id, "action": "send", "from": who, "tolist": to, "roomid": room, "msgtime": ts, "msgtype": kind,
               kind: {"userid": who, format!("{kind}_time"): ts}})
        .to_string()
    };
    // First half, with consent messages (two one-to-one, one in the room) and bad lines among them.
    let mut first: Vec<String> = gens[..n / 2].iter().map(|g| g.line.clone()).collect();
    first.insert(0, agree("a1", "wmAgree01", &["zhangsan"], "", start - 5000, "agree"));
    first.insert(1, agree("a2", "woLater03", &["wangwu"], "", start - 5000, "agree"));
    first.insert(2, "{\"msgid\": \"broken".into());
    first.insert(3, r#"{"msgid":"nomsgtime","from":"x","msgtype":"text","text":{"content":"y"}}"#.into());
    first.insert(4, agree("a3", "wmAgree01", &["zhangsan", "wangwu"], "wrRoom1", start - 5000, "agree"));
    let t0 = std::time::Instant::now();
    let r = import(&team.sec, "jsonl", first.join("\n")).await;
    let first_ms = t0.elapsed().as_millis();
    assert_eq!((r["stored"].as_u64(), r["errors"].as_u64()), (Some(n as u64 / 2 + 3), Some(2)), "{r}");
    assert!(r["first_errors"][0].as_str().unwrap().starts_with("line 3:"), "{r}");
    // The second half, and the first again: stored once.
    let rest: Vec<String> = gens.iter().map(|g| g.line.clone()).collect();
    let r = import(&team.sec, "jsonl", rest.join("\n")).await;
    assert_eq!((r["stored"].as_u64(), r["duplicates"].as_u64()), (Some(n as u64 / 2), Some(n as u64 / 2)), "{r}");
    println!("imported {n} messages; the first {} in {first_ms} ms", n / 2);
    let errors = team.sec.get("/api/v1/chat/errors").await;
    assert_eq!(errors.as_array().unwrap().len(), 2, "{errors}");

    // Stored text is what each type carries.
    {
        let db = server.db();
        for g in gens.iter().take(60) {
            let content: String =
                db.query_row("SELECT content FROM chat_messages WHERE msgid = ?1", [&g.msgid], |r| r.get(0)).unwrap();
            assert_eq!(content, g.text, "{}", g.line);
        }
        let recalled: i64 =
            db.query_row("SELECT count(*) FROM chat_messages WHERE revoked_by IS NOT NULL", [], |r| r.get(0)).unwrap();
        assert!(recalled > 50, "recalled messages are kept and marked: {recalled}");
        let seconds: i64 =
            db.query_row("SELECT ts_ms FROM chat_messages WHERE msgid = 'm00018'", [], |r| r.get(0)).unwrap();
        assert_eq!(seconds, (start + 18_000) / 1000 * 1000, "seconds read as seconds");
    }

    let agreed = [("wmAgree01", "user:zhangsan"), ("woLater03", "user:wangwu"), ("wmAgree01", "room:wrRoom1")];
    let shown_now = Shown { unconsented: &["lisi"], agreed: &agreed };
    let check = async |queries: &[String], shown: &Shown<'_>| -> (usize, usize) {
        let mut checked = 0;
        let mut hits = 0;
        for q in queries {
            let fq = fold(q);
            let truth: BTreeSet<String> = gens
                .iter()
                .filter(|g| shown.shows(g))
                .filter(|g| fold(&g.text).contains(&fq))
                .map(|g| g.msgid.clone())
                .collect();
            let (total, found) = search_all(&team.sec, q, "").await;
            assert_eq!(found, truth, "query {q:?}: recall and precision must be 1");
            assert_eq!(total as usize, truth.len(), "query {q:?}: total");
            checked += 1;
            hits += truth.len();
        }
        (checked, hits)
    };
    let mut queries: Vec<String> = [
        "价单",
        "户合同",
        "iphone15",
        "IPHONE",
        "15",
        "哈哈哈",
        "价",
        "单签",
        "合同签字",
        ".pdf",
        "好的谢谢",
        "不存在的词",
        "，我们",
        "q3数据",
        "海淀",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rng = StdRng::seed_from_u64(11);
    while queries.len() < 60 {
        let g = &gens[rng.gen_range(0..n)];
        let chars: Vec<char> = g.text.chars().collect();
        if chars.len() < 4 {
            continue;
        }
        let len = rng.gen_range(2..5);
        let at = rng.gen_range(0..chars.len() - len);
        // The API trims queries, as people type stray spaces.
        let q: String = chars[at..at + len].iter().collect::<String>().trim().to_string();
        if !q.is_empty() && !q.contains('\n') {
            queries.push(q);
        }
    }
    let (checked, hits) = check(&queries, &shown_now).await;
    println!("recall 1.0 and precision 1.0 on {checked} queries ({hits} expected hits) against brute force");

    // woLater03 declines: that conversation disappears from then on.
    let later = candor_proto::now_ms();
    import(&team.sec, "jsonl", agree("d1", "woLater03", &["wangwu"], "", later, "disagree")).await;
    let agreed_after = [agreed[0], agreed[2]];
    let shown_after = Shown { unconsented: &["lisi"], agreed: &agreed_after };
    check(&queries[..20], &shown_after).await;
    let contacts = team.sec.get("/api/v1/chat/contacts").await;
    assert_eq!(contacts["hidden"], json!(["lisi"]), "employees without chat consent: {contacts}");
    assert_eq!(
        contacts["hidden_scopes"],
        json!([{"contact": "wmAgree01", "scope": "user:wangwu"}, {"contact": "wmNever02", "scope": "user:wangwu"},
               {"contact": "woLater03", "scope": "user:wangwu"}]),
        "contacts' conversations without agreement: {contacts}"
    );
    let scoped: Vec<(&str, &str, bool)> = contacts["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["contact"].as_str().unwrap(), c["scope"].as_str().unwrap(), c["agree"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        scoped,
        [
            ("wmAgree01", "room:wrRoom1", true),
            ("wmAgree01", "user:zhangsan", true),
            ("woLater03", "user:wangwu", false)
        ]
    );

    // Filters: an employee, a type, a time range.
    let zs = search_all(&team.sec, "", &format!("&employee={}", ids["zhangsan"])).await.0;
    let truth_zs = gens.iter().filter(|g| g.people.contains(&"zhangsan".to_string()) && shown_after.shows(g)).count();
    assert_eq!(zs as usize, truth_zs + 2, "zhangsan's messages (and the two agree messages sent to him)");
    let files = search_all(&team.sec, "", "&type=file").await.0;
    assert_eq!(
        files as usize,
        gens.iter().filter(|g| g.line.contains("\"msgtype\":\"file\"") && shown_after.shows(g)).count()
    );
    let ranged = search_all(&team.sec, "", &format!("&from={}&to={}", start + 100_000, start + 200_000)).await.0;
    assert!(ranged > 0 && ranged <= 100, "{ranged}");

    // Hits carry highlights; the conversation view; hidden ones are refused.
    let r = team.sec.get(&format!("/api/v1/chat/search?q={}&limit=5", url_escape("价单"))).await;
    let hit = &r["hits"][0];
    let (a, b) =
        (hit["highlights"][0][0].as_u64().unwrap() as usize, hit["highlights"][0][1].as_u64().unwrap() as usize);
    let marked: String = hit["text"].as_str().unwrap().chars().skip(a).take(b - a).collect();
    assert_eq!(marked, "价单");
    let conv = team.sec.get(&format!("/api/v1/chat/messages/{}/conversation?before=3&after=3", hit["id"])).await;
    assert!(conv.as_array().unwrap().iter().any(|m| m["id"] == hit["id"]) && conv.as_array().unwrap().len() <= 7);
    let lisi_msg: i64 = server
        .db()
        .query_row("SELECT id FROM chat_messages WHERE receivers LIKE '%lisi%' LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let (s, _) =
        team.sec.call(reqwest::Method::GET, &format!("/api/v1/chat/messages/{lisi_msg}/conversation"), None).await;
    assert_eq!(s, 404, "no consent, no conversation");
    let (s, _) = team.sys.call(reqwest::Method::GET, "/api/v1/chat/search?q=a", None).await;
    assert_eq!(s, 403, "the system admin reads no chats");
    let (s, _) =
        team.sec.call(reqwest::Method::GET, &format!("/api/v1/chat/search?q={}", "长".repeat(101)), None).await;
    assert_eq!(s, 400);

    // DLP: visible messages with a valid ID or card number raise one alert each, masked.
    let alerts = team.sec.get("/api/v1/alerts?kind=dlp_chat&limit=1000").await;
    let alerts = alerts.as_array().unwrap();
    let expected = gens
        .iter()
        .filter(|g| g.text.contains(VALID_ID) || g.text.contains(CARD))
        .filter(|g| shown_now.shows(g))
        .count();
    assert_eq!(alerts.len(), expected, "one alert per visible message with an ID or card number");
    for a in alerts {
        let ev = a["data"]["evidence"].to_string();
        assert!(!ev.contains(VALID_ID) && !ev.contains("4111 1111 1111 1111"), "evidence is masked: {ev}");
        assert!(ev.contains("110***********002X") || ev.contains("411* **** **** 1111"), "{ev}");
    }
    // Rules can be changed; a bad one is refused with its name.
    let (s, v) = team
        .sec
        .call(reqwest::Method::PUT, "/api/v1/dlp/rules", Some(json!([{"name": "坏", "kind": "regex", "pattern": "("}])))
        .await;
    assert_eq!(s, 400, "{v}");
    team.sec
        .put(
            "/api/v1/dlp/rules",
            json!([{"name": "机密", "severity": "warning", "kind": "keywords", "words": ["绝密文件"]}]),
        )
        .await;
    let r = import(
        &team.sec,
        "csv",
        "msgid,msgtime,from,tolist,roomid,msgtype,content\nc1,1700000000,zhangsan,wangwu,,text,这是绝密文件请勿外传\n"
            .into(),
    )
    .await;
    assert_eq!((r["stored"].as_u64(), r["alerts"].as_u64()), (Some(1), Some(1)), "{r}");
    // Every alert also went to the WeCom group robot, masked like in the console.
    wait_until(std::time::Duration::from_secs(10), "alerts at the robot", async || {
        robot_got.lock().unwrap().len() == expected + 1
    })
    .await;
    let posts: Vec<String> = robot_got.lock().unwrap().iter().map(|(_, body)| body.clone()).collect();
    let post: Value = serde_json::from_str(posts.last().unwrap()).unwrap();
    assert_eq!(post["msgtype"], "text");
    let content = post["text"]["content"].as_str().unwrap();
    assert!(content.contains("机密") && content.contains("dlp_chat"), "{content}");
    assert!(!posts.iter().any(|p| p.contains(VALID_ID)), "evidence is masked at the robot too");
    // And by e-mail.
    wait_until(std::time::Duration::from_secs(10), "alert e-mails", async || {
        mails.lock().unwrap().len() == expected + 1
    })
    .await;
    let mail = mails.lock().unwrap().last().cloned().unwrap();
    assert!(mail.contains("Subject: [Candor warning] dlp_chat") && mail.contains("security@example.com"), "{mail}");

    // Relevance: where 华为 stands as a word comes first, though older; newest first by default.
    import(
        &team.sec,
        "csv",
        "msgid,msgtime,from,tolist,roomid,msgtype,content\n\
         r1,1700000100,zhangsan,wangwu,,text,华为手机到了\nr2,1700000200,zhangsan,wangwu,,text,为中华为人民服务\n"
            .into(),
    )
    .await;
    let first = async |order: &str| {
        let r = team.sec.get(&format!("/api/v1/chat/search?q={}&order={order}", url_escape("华为"))).await;
        assert_eq!(r["total"], 2, "{r}");
        r["hits"][0]["text"].as_str().unwrap().to_string()
    };
    assert_eq!(first("newest").await, "为中华为人民服务");
    assert_eq!(first("relevance").await, "华为手机到了");
    let (s, _) = team.sec.call(reqwest::Method::GET, "/api/v1/chat/search?q=a&order=best", None).await;
    assert_eq!(s, 400, "an unknown order");

    // Every search and conversation opened is in the access log.
    let log = team.aud.get("/api/v1/access-log?limit=1000").await.to_string();
    assert!(log.contains("chat.search") && log.contains("chat.conversation") && log.contains("价单"), "access log");

    // The index is rebuilt from the store when it is lost.
    server.kill9();
    std::fs::remove_dir_all(tmp.path().join("data/chat-index")).unwrap();
    server.restart().await;
    let team2 = AdminApi::login(&server.url, &server.ca_fingerprint(), "sec", &team.sec_password).await;
    let (total, _) = search_all(&team2, "价单", "").await;
    let truth = gens.iter().filter(|g| shown_after.shows(g) && g.text.contains("价单")).count();
    assert_eq!(total as usize, truth, "rebuilt index finds the same");

    // The console page: search, highlights, the conversation.
    let b = Browser::start().await;
    b.login(&format!("{}/", server.url), "sec", &team.sec_password).await;
    b.click("#nav-chat").await;
    b.page_ok("chat").await;
    b.fill("#page-chat input[name=q]", "价单").await;
    b.click("#page-chat form button").await;
    b.wait_text("#chat-total", &truth.to_string()).await;
    assert_eq!(b.text("#chat-results tbody tr mark").await, "价单");
    b.click("#chat-results tbody tr").await;
    b.wait_text("#chat-conversation", "价单").await;
    assert_eq!(b.count("#chat-conversation tr.current").await, 1);
    b.page_ok("chat").await;
    b.screenshot("chat").await;
}

#[tokio::test]
async fn chat_retention_spares_legal_holds_and_clears_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[retention]\nchat_days = 1\n").await;
    let team = server.team().await;
    let mut ids = Vec::new();
    for u in ["zhangsan", "wangwu", "zhaoliu"] {
        let id = team.sys.post("/api/v1/employees", json!({"name": u, "username": u})).await["id"].as_u64().unwrap();
        team.consent(id, "chat", true).await;
        ids.push(id);
    }
    let old = candor_proto::now_ms() - 3 * 86_400_000;
    let recent = candor_proto::now_ms() - 3_600_000;
    let csv = format!(
        "msgid,msgtime,from,tolist,roomid,msgtype,content\n\
         o1,{old},zhangsan,wangwu,,text,旧的报价单\no2,{old},zhaoliu,wangwu,,text,旧的报价单二\n\
         n1,{recent},zhangsan,wangwu,,text,新的报价单\n"
    );
    assert_eq!(import(&team.sec, "csv", csv).await["stored"], 3);
    assert_eq!(search_all(&team.sec, "报价单", "").await.0, 3);
    team.sec.put(&format!("/api/v1/employees/{}/legal-hold", ids[2]), json!({"reason": "诉讼"})).await;
    let purged = team.sec.post("/api/v1/retention/purge", json!({})).await;
    let chat = purged.as_array().unwrap().iter().find(|r| r["category"] == "chat").unwrap();
    assert_eq!(chat["events"], 1, "{purged}");
    // `total` comes from the index alone: the purged message's entry is gone too.
    let (total, found) = search_all(&team.sec, "报价单", "").await;
    assert_eq!((total, found), (2, ["n1".to_string(), "o2".to_string()].into()));
    let pending: i64 = server.db().query_row("SELECT count(*) FROM chat_unindex", [], |r| r.get(0)).unwrap();
    assert_eq!(pending, 0);
}

/// Builds the fake SDK (a cdylib of this workspace) and returns its path.
fn fake_sdk() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--locked", "-p", "wecom-fake-sdk"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "building the fake SDK");
    // The test binary is target/<profile>/deps/chat-…; the library is in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let so = exe.parent().unwrap().parent().unwrap().join("libwecom_fake_sdk.so");
    assert!(so.exists(), "{}", so.display());
    so
}

fn rsa_pems(rng: &mut StdRng) -> (String, String) {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    let key = rsa::RsaPrivateKey::new(rng, 2048).unwrap();
    let private = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap().to_string();
    let public = key.to_public_key().to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
    (private, public)
}

#[tokio::test]
async fn chat_archive_through_the_sdk() {
    use md5::{Digest, Md5};
    let tmp = tempfile::tempdir().unwrap();
    let so = fake_sdk();
    let mut rng = StdRng::seed_from_u64(99);
    let (k1, p1) = rsa_pems(&mut rng);
    let (k2, p2) = rsa_pems(&mut rng);
    // Secrets at rest: the archive secret and key 1 sealed under the server's master key (`candor secret
    // seal`); key 2 left in clear, which works with a warning.
    let data_dir = tmp.path().join("server/data");
    let seal = |plain: &str| -> String {
        use std::io::Write;
        let mut child = std::process::Command::new(BIN)
            .args(["secret", "seal", "--config", "/nonexistent.toml", "--data-dir", data_dir.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(plain.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let sealed_secret = seal("archive-secret\n");
    let sealed_key1 = seal(&k1);
    assert!(sealed_secret.starts_with("candor-sealed:v1:") && !sealed_key1.contains("PRIVATE KEY"));
    std::fs::write(tmp.path().join("key1.pem"), &sealed_key1).unwrap();
    std::fs::write(tmp.path().join("key2.pem"), &k2).unwrap();

    // Media over 512 KB (three chunks) with its MD5.
    let big: Vec<u8> = (0..1_300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(tmp.path().join("big.bin"), &big).unwrap();
    let big_md5: String = Md5::digest(&big).iter().map(|b| format!("{b:02x}")).collect();

    let start = candor_proto::now_ms() - 86_400_000;
    let n = 2000;
    let gens = corpus(n, start);
    let mut messages = Vec::new();
    let mut push = |msgid: &str, plaintext: String, key_ver: u32, corrupt: Option<&str>| {
        let seq = messages.len() as u64 + 1;
        messages
            .push(json!({"seq": seq, "msgid": msgid, "key_ver": key_ver, "plaintext": plaintext, "corrupt": corrupt}));
    };
    let consent = |id: &str, who: &str, to: &str, ts: i64, kind: &str| {
        json!({"msgid": id, "action": "send", "from": who, "tolist": [to], "roomid": "", "msgtime": ts, "msgtype": kind,
               kind: {"userid": who, format!("{kind}_time"): ts}})
        .to_string()
    };
    push("a1", consent("a1", "wmAgree01", "zhangsan", start - 5000, "agree"), 1, None);
    push("a2", consent("a2", "woLater03", "wangwu", start - 5000, "agree"), 1, None);
    for (i, g) in gens.iter().enumerate() {
        // The company's key changes half-way: old messages keep version 1.
        push(&g.msgid, g.line.clone(), if i < n / 2 { 1 } else { 2 }, None);
        if i == 700 {
            let file = json!({"msgid": "big", "action": "send", "from": "zhangsan", "tolist": ["wangwu"], "roomid": "",
                              "msgtime": start + 700_500, "msgtype": "file",
                              "file": {"filename": "季度报价单.xlsx", "sdkfileid": "BIG", "md5sum": big_md5, "filesize": big.len()}});
            push("big", file.to_string(), 1, None);
            push("bad-base64", consent("bad-base64", "wmAgree01", "zhangsan", start, "agree"), 1, Some("base64"));
            push("bad-version", consent("bad-version", "wmAgree01", "zhangsan", start, "agree"), 3, None);
            push("bad-json", "{\"msgid\":\"bad-json\", \"from\": ".into(), 2, None);
        }
    }
    push("d1", consent("d1", "woLater03", "wangwu", candor_proto::now_ms(), "disagree"), 2, None);
    // An internal group (named by groupchat/get) and a one-to-one chat of an employee WeCom does not archive.
    let plain = |id: &str, from: &str, to: &[&str], room: &str| {
        json!({"msgid": id, "action": "send", "from": from, "tolist": to, "roomid": room, "msgtime": start + 5000,
               "msgtype": "text", "text": {"content": "周会改到三点"}})
        .to_string()
    };
    push("team1", plain("team1", "zhangsan", &["wangwu"], "wrTeam2"), 2, None);
    push("zl1", plain("zl1", "zhaoliu", &["wmOther04"], ""), 2, None);
    let total = messages.len() as u64;
    let script = json!({
        "corpid": "ww-test", "secret": "archive-secret",
        "public_keys": {"1": p1, "2": p2},
        "messages": messages,
        "media": {"BIG": tmp.path().join("big.bin")},
        "fail_calls": {"GetChatData#2": 10001, "GetMediaData#2": 10001, "GetMediaData#3": 10002},
    });
    std::fs::write(tmp.path().join("script.json"), script.to_string()).unwrap();
    // SAFETY (edition 2021: safe): the test process is single-threaded here and the server inherits it.
    std::env::set_var("WECOM_FAKE_SDK_SCRIPT", tmp.path().join("script.json"));
    // The documented smoke test (`candor chat-archive check`), on the fake and on a library that is not the SDK.
    let check = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(["chat-archive", "check", "--sdk"]).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let so_arg = so.to_str().unwrap();
    let (ok, out) = check(&[so_arg, "--corpid", "ww-test", "--secret", "archive-secret"]);
    assert!(ok && out.contains("all 17 symbols bound") && out.contains("errcode 0, 1 message(s)"), "{out}");
    let (ok, out) = check(&["/lib/x86_64-linux-gnu/libz.so.1"]);
    assert!(!ok && out.contains("symbol NewSdk missing"), "{out}");
    let (api_port, api_seen) = http_fake(qyapi).await;
    let config = format!(
        "[chat.wecom]\nsdk_path = \"{}\"\ncorpid = \"ww-test\"\nsecret = \"{sealed_secret}\"\npoll_secs = 1\nbatch = 500\n\
         api_base = \"http://127.0.0.1:{api_port}\"\nconsent_sync_secs = 2\n\
         [chat.wecom.private_keys]\n1 = \"{}\"\n2 = \"{}\"\n",
        so.display(),
        tmp.path().join("key1.pem").display(),
        tmp.path().join("key2.pem").display()
    );
    let mut server = Server::start(&tmp.path().join("server"), &config).await;
    let cursor = |server: &Server| -> i64 {
        server.db().query_row("SELECT coalesce(max(seq), 0) FROM chat_cursors", [], |r| r.get(0)).unwrap()
    };
    // Generous: on a loaded 2-core CI machine the 2,000 RSA decryptions alone take tens of seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while cursor(&server) != total as i64 {
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(tmp.path().join("server/server-1.err")).unwrap_or_default();
            panic!("the archive was not pulled to the end (cursor {}):\n{log}", cursor(&server));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let stored = |server: &Server| -> i64 {
        server.db().query_row("SELECT count(*) FROM chat_messages WHERE source = 'wecom'", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(stored(&server), total as i64 - 3, "every readable message stored once");
    let log = std::fs::read_to_string(tmp.path().join("server/server-1.err")).unwrap_or_default();
    assert!(log.contains("key2.pem is stored in clear") && !log.contains("chat.wecom.secret is stored"), "{log}");

    // Errors are recorded with their position and the pull went on; the 10001s were retried.
    let errors: Vec<(String, String)> = {
        let db = server.db();
        let mut st =
            db.prepare("SELECT position, error FROM chat_errors WHERE position NOT LIKE 'media of m%'").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    let text = format!("{errors:?}");
    assert!(text.contains("encrypt_random_key is not base64"), "{text}");
    assert!(text.contains("no private key for publickey_ver 3"), "{text}");
    assert!(text.contains("message: not JSON"), "{text}");
    assert_eq!(errors.len(), 3, "nothing else failed (no pull error: the network errors were retried): {text}");
    let unretried: i64 = server
        .db()
        .query_row("SELECT count(*) FROM chat_errors WHERE error LIKE '%10001%' OR error LIKE '%10002%'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unretried, 0, "scripted 10001/10002 on media were retried chunk-wise");

    // The big file arrived in three chunks, checked against its MD5, into the blob store.
    let media: String =
        server.db().query_row("SELECT media FROM chat_messages WHERE msgid = 'big'", [], |r| r.get(0)).unwrap();
    let media: Value = serde_json::from_str(&media).unwrap();
    let key = media[0]["blob"].as_str().expect("blob key");
    let on_disk =
        std::fs::read(tmp.path().join("server/data/blobs").join(&key[..2]).join(&key[2..4]).join(key)).unwrap();
    assert_eq!(on_disk, big);

    // Search over what came through the SDK, under consent.
    let team = server.team().await;
    for (name, user) in [("张三", "zhangsan"), ("王五", "wangwu")] {
        let id =
            team.sys.post("/api/v1/employees", json!({"name": name, "username": user})).await["id"].as_u64().unwrap();
        team.consent(id, "chat", true).await;
    }
    // qyapi says wmNever02 agreed after all (and woLater03 did not): the sync records it.
    let api_rows = |server: &Server| -> i64 {
        let sql =
            "SELECT count(*) FROM chat_contact_consent WHERE source = 'api' AND contact = 'wmNever02' AND agree = 1";
        server.db().query_row(sql, [], |r| r.get(0)).unwrap()
    };
    wait_until(std::time::Duration::from_secs(20), "consent synced from qyapi", async || api_rows(&server) > 0).await;
    let seen = api_seen.lock().unwrap().clone();
    assert!(seen.iter().any(|(l, b)| l.contains("check_single_agree") && b.contains("exteranalopenid")), "{seen:?}");
    assert!(seen.iter().any(|(l, b)| l.contains("check_room_agree") && b.contains("wrRoom1")), "{seen:?}");
    let named = |server: &Server| -> i64 {
        server.db().query_row("SELECT count(*) FROM chat_room_names", [], |r| r.get(0)).unwrap()
    };
    wait_until(std::time::Duration::from_secs(20), "internal room named", async || named(&server) > 0).await;
    // That sync saw the last batch (wrTeam2 and zhaoliu's chat came together) and asked nothing about zhaoliu.
    let seen = api_seen.lock().unwrap().clone();
    assert!(seen.iter().any(|(l, _)| l.contains("get_permit_user_list")), "{seen:?}");
    assert!(!seen.iter().any(|(_, b)| b.contains("zhaoliu")), "only archived employees' pairs are asked about");
    let contacts = team.sec.get("/api/v1/chat/contacts").await;
    assert_eq!(contacts["archived"], json!(["wangwu", "zhangsan"]), "{contacts}");
    assert_eq!(
        contacts["rooms"],
        json!([{"roomid": "wrTeam2", "name": "销售周会", "creator": "zhangsan", "members": 2}]),
        "{contacts}"
    );
    // What qyapi said per pair and per room, over the agree messages (older).
    let agreed = [("wmAgree01", "user:zhangsan"), ("wmNever02", "user:wangwu"), ("wmAgree01", "room:wrRoom1")];
    let shown = Shown { unconsented: &["lisi"], agreed: &agreed };
    let truth = gens.iter().filter(|g| shown.shows(g) && g.text.contains("价单")).count();
    let (found, _) = search_all(&team.sec, "价单", "").await;
    assert_eq!(found as usize, truth + 1, "corpus hits and the file name 季度报价单.xlsx");
    let contacts = team.sec.get("/api/v1/chat/contacts").await;
    let hidden = contacts["hidden_scopes"].to_string();
    assert!(hidden.contains(r#"{"contact":"woLater03","scope":"user:wangwu"}"#), "the late disagree hides: {contacts}");
    assert!(hidden.contains(r#"{"contact":"wmAgree01","scope":"user:wangwu"}"#), "declined with wangwu: {contacts}");

    // A restart continues from the cursor: nothing is stored twice.
    server.kill9();
    server.restart().await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(stored(&server), total as i64 - 3);
    assert_eq!(cursor(&server), total as i64);
}
