//! Software control against the real kernel: fanotify refuses listed
//! programs (EPERM) for an employee (uid 1000), by name, hash (copies, hard
//! links, renames, hostile names), a file swapped in place, scripts directly
//! and through an interpreter, a flood counted exactly, policy changes within
//! seconds, fail-closed/fail-open timeouts, allow-list mode with the system
//! still working, installs refused with dpkg's database untouched, approved
//! packages installed through apt from a local repository while apt naming
//! anything else is stopped, installs and removals recorded, programs in
//! user-writable places blocked, the desktop notification on a real D-Bus daemon,
//! killing the agent releasing waiting execs, and the weaker kill mode.

mod common;

use common::desktop::notifications;
use common::*;
use serde_json::{json, Value};
use sha2::Digest;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EMPLOYEE: u32 = 1000;

struct Env {
    bus: String,
}

impl Env {
    /// Run `cmd` as the employee; `Err` when the exec itself was refused.
    fn employee(&self, cmd: &mut Command) -> std::io::Result<std::process::ExitStatus> {
        cmd.uid(EMPLOYEE)
            .gid(EMPLOYEE)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    }

    fn refused(&self, path: &Path) -> bool {
        match self.employee(&mut Command::new(path)) {
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{}: {e}", path.display());
                true
            }
            Ok(s) => {
                assert!(s.success(), "{} ran but failed: {s}", path.display());
                false
            }
        }
    }
}

fn attempts(server: &Server) -> Vec<Value> {
    let db = server.db();
    let mut st = db
        .prepare("SELECT payload FROM events WHERE json_extract(payload, '$.type') = 'software_control' ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok(serde_json::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap()))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn count_for(server: &Server, exe: &str, outcome: &str) -> u64 {
    attempts(server)
        .iter()
        .filter(|a| a["exe"] == exe && a["outcome"] == outcome)
        .map(|a| a["count"].as_u64().unwrap())
        .sum()
}

async fn wait_count(server: &Server, exe: &str, outcome: &str, n: u64) -> Vec<Value> {
    wait_until(Duration::from_secs(20), &format!("{n} {outcome} attempts of {exe}"), async || {
        count_for(server, exe, outcome) >= n
    })
    .await;
    attempts(server).into_iter().filter(|a| a["exe"] == exe && a["outcome"] == outcome).collect()
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn set_software(team: &Team, policy: u64, software: Value) {
    team.sec.put(&format!("/api/v1/policies/{policy}"), json!({"doc": {"software": software}})).await;
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

#[tokio::test]
async fn software_control_on_the_real_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut daemon, bus, notes, _listener) = notifications(tmp.path()).await;
    let env = Env { bus };

    // Programs: copies of true, one with extra bytes so that its hash is ours alone.
    let truth = Path::new("/usr/bin/true");
    let game = bin.join("supergame");
    copy(truth, &game);
    let fine = bin.join("fine");
    copy(truth, &fine);
    let leak = bin.join("leak");
    let mut leak_bytes = std::fs::read(truth).unwrap();
    leak_bytes.extend_from_slice(format!("candor-test {}", std::process::id()).as_bytes());
    std::fs::write(&leak, &leak_bytes).unwrap();
    std::fs::set_permissions(&leak, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hash = hex::encode(sha2::Sha256::digest(&leak_bytes));

    let server = Server::start(&tmp.path().join("server"), "").await;
    let mut agent = Agent::enroll(&server, "sw", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(agent.id, &[], false).await;
    let policy = team.sec.get("/api/v1/policies").await[0]["id"].as_u64().unwrap();
    let rules = json!([
        {"name": "游戏", "file": "supergame*"},
        {"name": "泄露工具", "sha256": hash},
        {"name": "脚本游戏", "file": "game.sh"},
    ]);
    // Bad input is refused with the rule named.
    let (status, body) = team
        .sec
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/policies/{policy}"),
            Some(json!({"doc": {"software": {"mode": "deny", "rules": [{"name": "坏", "sha256": "xyz"}]}}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("rules[0] (坏)"), "{body}");
    set_software(&team, policy, json!({"mode": "deny", "rules": rules, "install": {"action": "block"}})).await;
    agent.start(&[]);
    team.wait_applied(agent.id).await;
    let mut game_refusals = 0;
    wait_until(Duration::from_secs(10), "enforcement active", async || {
        let r = env.refused(&game);
        game_refusals += r as u64;
        r
    })
    .await;

    // By name, for the employee only: root and system services are exempt.
    assert!(Command::new(&game).status().unwrap().success(), "root is exempt");
    assert!(!env.refused(truth) && !env.refused(&fine), "other programs run");
    // By hash: copies, hard links, renames and hostile names.
    let copied = bin.join("innocent");
    copy(&leak, &copied);
    let linked = bin.join("hardlink");
    std::fs::hard_link(&leak, &linked).unwrap();
    let renamed = bin.join("renamed");
    copy(&leak, &bin.join("tmpname"));
    std::fs::rename(bin.join("tmpname"), &renamed).unwrap();
    let weird = bin.join(std::ffi::OsStr::from_bytes(b"we\nird\xff"));
    copy(&leak, &weird);
    for p in [&leak, &copied, &linked, &renamed, &weird] {
        assert!(env.refused(p), "{} carries a denied hash", p.display());
    }
    // A file changed in place after an allowed run (same inode): decided anew.
    let swap = bin.join("swap");
    copy(truth, &swap);
    assert!(!env.refused(&swap));
    std::fs::write(&swap, &leak_bytes).unwrap();
    assert!(env.refused(&swap), "the new content is judged, not the cached old one");

    // Scripts: run directly (the kernel gates the script) and through an interpreter (killed after start).
    let script = bin.join("game.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 5\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(env.refused(&script));
    let started = Instant::now();
    let st = env.employee(Command::new("/bin/sh").arg(&script)).unwrap();
    let took = started.elapsed();
    println!("interpreter run ended by {st:?} after {took:?}");
    assert_eq!(st.signal(), Some(libc::SIGKILL), "sh game.sh is killed");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The employee is told which program and which rule, on the desktop bus of
    // the program that tried (started from a shell of that desktop session).
    let st = env.employee(Command::new("/bin/sh").arg("-c").arg(&game)).unwrap();
    assert_eq!(st.code(), Some(126), "the shell reports the refused exec");
    game_refusals += 1;
    let notified = Instant::now();
    while !notes.calls.lock().unwrap().iter().any(|(_, b)| b.contains("supergame") && b.contains("游戏")) {
        assert!(notified.elapsed() < Duration::from_secs(15), "no desktop notification\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("notifications: {:?}", notes.calls.lock().unwrap());

    // A flood: every attempt counted, the machine stays responsive.
    let flood = format!("i=0; while [ $i -lt 500 ]; do {} 2>/dev/null; i=$((i+1)); done", game.display());
    let started = Instant::now();
    let mut flooder = Command::new("/bin/sh");
    flooder.args(["-c", &flood]).uid(EMPLOYEE).gid(EMPLOYEE).stdout(Stdio::null()).stderr(Stdio::null());
    let mut flooder = flooder.spawn().unwrap();
    let probe = Instant::now();
    for _ in 0..20 {
        assert!(Command::new(truth).status().unwrap().success());
    }
    let probe = probe.elapsed();
    assert!(flooder.wait().unwrap().success());
    let flood_took = started.elapsed();
    println!("500 refused execs in {flood_took:?}; 20 other execs meanwhile took {probe:?}");
    assert!(probe < Duration::from_secs(5), "responsive during the flood: {probe:?}");
    game_refusals += 500;
    let game_s = game.to_string_lossy().to_string();
    let ev = wait_count(&server, &game_s, "blocked", game_refusals).await;
    assert_eq!(count_for(&server, &game_s, "blocked"), game_refusals, "every attempt counted once");
    assert!(ev.len() < 50, "folded into few events: {}", ev.len());
    assert_eq!((ev[0]["rule"].as_str(), ev[0]["uid"].as_u64()), (Some("游戏"), Some(EMPLOYEE as u64)));
    assert_eq!(ev[0]["mode"], "fanotify");
    for p in [&leak, &copied, &linked, &renamed, &swap] {
        let e = wait_count(&server, &p.to_string_lossy(), "blocked", 1).await;
        assert_eq!((e[0]["sha256"].as_str(), e[0]["rule"].as_str()), (Some(hash.as_str()), Some("泄露工具")));
    }
    let weird_s = format!("{}/we\\nird\u{fffd}", bin.display());
    wait_count(&server, &weird_s, "blocked", 1).await;
    let sh = wait_count(&server, &script.to_string_lossy(), "blocked", 2).await;
    assert!(sh.iter().any(|e| e["mode"] == "kill") && sh.iter().any(|e| e["mode"] == "fanotify"), "{sh:?}");

    // Installing: dpkg started by the employee (login uid, as through sudo) is refused; the database is untouched.
    let pkg = "candor-test-dummy";
    let deb_dir = tmp.path().join("deb");
    std::fs::create_dir_all(deb_dir.join("DEBIAN")).unwrap();
    std::fs::write(
        deb_dir.join("DEBIAN/control"),
        format!(
            "Package: {pkg}\nVersion: 1.0\nArchitecture: all\nMaintainer: Candor <t@example.com>\nDescription: test\n"
        ),
    )
    .unwrap();
    let deb = tmp.path().join("dummy.deb");
    let built =
        Command::new("dpkg-deb").args(["--build", "--root-owner-group"]).arg(&deb_dir).arg(&deb).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let _ = Command::new("dpkg").args(["--purge", pkg]).output();
    let sudo_like = format!("echo {EMPLOYEE} > /proc/self/loginuid && exec dpkg -i {}", deb.display());
    let out = Command::new("/bin/sh").args(["-c", &sudo_like]).output().unwrap();
    println!("blocked install: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(126), "exec of dpkg refused");
    assert!(!dpkg_installed(pkg), "package database untouched");
    let inst = wait_until(Duration::from_secs(20), "install attempt reported", async || {
        attempts(&server).iter().any(|a| a["reason"] == "install" && a["uid"] == EMPLOYEE)
    });
    inst.await;
    // An administrator's install (root, no login uid) goes through and is recorded, as is its removal.
    let out = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("dpkg").args(["--purge", pkg]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(Duration::from_secs(20), "install and removal recorded", async || {
        let db = server.db();
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM events WHERE json_extract(payload, '$.type') = 'package_change'
                 AND json_extract(payload, '$.package') = ?1",
                [pkg],
                |r| r.get(0),
            )
            .unwrap();
        n >= 2
    })
    .await;

    // Approved packages: an employee's apt may install them (and the dpkg it starts runs);
    // apt naming anything else is stopped as it starts. A local file repository stands in for a mirror.
    let repo = tmp.path().join("repo");
    for d in ["lists/partial", "archives/partial"] {
        std::fs::create_dir_all(repo.join(d)).unwrap();
    }
    std::fs::copy(&deb, repo.join("dummy.deb")).unwrap();
    let deb_bytes = std::fs::read(&deb).unwrap();
    let control = std::fs::read_to_string(deb_dir.join("DEBIAN/control")).unwrap();
    std::fs::write(
        repo.join("Packages"),
        format!(
            "{control}Filename: ./dummy.deb\nSize: {}\nSHA256: {}\n\n",
            deb_bytes.len(),
            hex::encode(sha2::Sha256::digest(&deb_bytes))
        ),
    )
    .unwrap();
    std::fs::write(repo.join("sources.list"), format!("deb [trusted=yes] file:{} ./\n", repo.display())).unwrap();
    let r = repo.display();
    let apt_opts = format!(
        "-o Dir::Etc::SourceList={r}/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists={r}/lists \
         -o Dir::Cache::Archives={r}/archives -o APT::Sandbox::User=root -q -y"
    );
    let out = Command::new("/bin/sh").args(["-c", &format!("apt-get {apt_opts} update")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    set_software(&team, policy, json!({"install": {"action": "block", "approved_packages": [pkg]}})).await;
    team.wait_applied(agent.id).await;
    let as_employee = |args: &str| {
        let line = format!("echo {EMPLOYEE} > /proc/self/loginuid && exec apt-get {apt_opts} {args}");
        Command::new("/bin/sh").args(["-c", &line]).output().unwrap()
    };
    let out = as_employee(&format!("install {pkg} hello"));
    println!("unapproved apt: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "apt naming an unapproved package is stopped");
    assert!(!dpkg_installed(pkg));
    let out = as_employee(&format!("install {pkg}"));
    assert!(out.status.success(), "approved install: {:?} {}", out.status, String::from_utf8_lossy(&out.stdout));
    assert!(dpkg_installed(pkg), "installed through apt and its dpkg");
    let out = Command::new("dpkg").args(["--purge", pkg]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(Duration::from_secs(20), "unapproved apt reported", async || {
        attempts(&server).iter().any(|a| a["reason"] == "install" && a["rule"] == "not approved: hello")
    })
    .await;

    // A policy change takes effect within seconds.
    let changed = Instant::now();
    let mut more = rules.as_array().unwrap().clone();
    more.push(json!({"name": "新规则", "file": "fine"}));
    set_software(&team, policy, json!({"mode": "deny", "rules": more})).await;
    wait_until(Duration::from_secs(10), "new rule enforced", async || env.refused(&fine)).await;
    println!("policy change enforced after {:?}", changed.elapsed());

    // No decision in time (a 900 MiB file still being hashed): fail-closed refuses, fail-open lets it run.
    let big = |name: &str| {
        let p = bin.join(name);
        let mut b = std::fs::read(truth).unwrap();
        b.extend_from_slice(name.as_bytes());
        std::fs::write(&p, b).unwrap();
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(900 << 20).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let (big1, big2) = (big("big1"), big("big2"));
    set_software(
        &team,
        policy,
        json!({"mode": "deny", "rules": rules, "decision_timeout_ms": 20, "fail_closed": true}),
    )
    .await;
    team.wait_applied(agent.id).await;
    assert!(env.refused(&big1), "fail-closed: refused while undecided");
    wait_until(Duration::from_secs(20), "hashed, then decided on its merits", async || !env.refused(&big1)).await;
    set_software(&team, policy, json!({"mode": "deny", "rules": rules, "decision_timeout_ms": 20})).await;
    team.wait_applied(agent.id).await;
    assert!(!env.refused(&big2), "fail-open: runs while undecided");
    let t = wait_count(&server, &big2.to_string_lossy(), "alerted", 1).await;
    assert_eq!(t[0]["reason"], "timeout");
    assert_eq!(wait_count(&server, &big1.to_string_lossy(), "blocked", 1).await[0]["reason"], "timeout");

    // Programs in user-writable places (downloaded, built), blocked by policy; installed ones run.
    set_software(&team, policy, json!({"untrusted": "block"})).await;
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(10), "untrusted places blocked", async || env.refused(&big2)).await;
    assert!(!env.refused(truth), "installed programs run");
    let u = wait_count(&server, &big2.to_string_lossy(), "blocked", 1).await;
    assert_eq!(u[0]["reason"], "untrusted");

    // Allow-list mode: only listed programs, yet shells, system helpers and root keep working.
    set_software(&team, policy, json!({"mode": "allow", "rules": [{"name": "基础工具", "package": "coreutils"}]}))
        .await;
    team.wait_applied(agent.id).await;
    // (Refusals by the previous rules may come first: the agent reports a policy applied
    // a moment before its exec gate has compiled the new rules.)
    let fine_s = fine.to_string_lossy().to_string();
    wait_until(Duration::from_secs(10), "allow list enforced", async || {
        env.refused(&fine)
            && attempts(&server).iter().any(|e| e["exe"] == fine_s.as_str() && e["reason"] == "not_listed")
    })
    .await;
    assert!(!env.refused(truth), "coreutils is listed");
    assert!(env.employee(Command::new("/bin/sh").args(["-c", "/usr/bin/true"])).unwrap().success(), "shell exempt");
    assert!(Command::new(&fine).status().unwrap().success(), "root exempt");

    // The admin sees the attempts: alerts and the typed event query the console page uses.
    let alerts = team.sec.get("/api/v1/alerts").await;
    let kinds: Vec<&str> = alerts.as_array().unwrap().iter().filter_map(|a| a["kind"].as_str()).collect();
    assert!(kinds.contains(&"software_blocked") && kinds.contains(&"install_blocked"), "{kinds:?}");
    let page = team.sec.get("/api/v1/events?category=system&type=software_control&limit=1000").await;
    assert!(page["events"].as_array().unwrap().iter().all(|e| e["payload"]["type"] == "software_control"));

    // Killing the agent releases execs the kernel holds for it.
    // (An employee's own file: the kernel asks about it every time; system
    // programs already allowed may be skipped by the kernel itself.)
    let held = bin.join("held");
    copy(truth, &held);
    std::os::unix::fs::chown(&held, Some(EMPLOYEE), Some(EMPLOYEE)).unwrap();
    let pid = agent.pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let waiting = std::thread::spawn(move || {
        let t = Instant::now();
        let r = Command::new(&held).uid(EMPLOYEE).gid(EMPLOYEE).status();
        (r.map(|s| s.success()).unwrap_or(false), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!waiting.is_finished(), "the exec waits for the (stopped) agent");
    agent.kill9();
    let (ok, waited) = waiting.join().unwrap();
    println!("exec held {waited:?}, released when the agent died");
    assert!(ok && waited >= Duration::from_millis(900));

    // The weaker mode: without fanotify a blocked program is killed right after it starts.
    let mut killer = Agent::enroll(&server, "sw-kill", &fast_agent_toml("[software]\nmechanism = \"kill\"\n"));
    set_software(&team, policy, json!({"mode": "deny", "rules": [{"name": "游戏", "file": "supergame*"}]})).await;
    killer.start(&[]);
    team.wait_applied(killer.id).await;
    let sleeper = bin.join("supergame-sleep");
    copy(Path::new("/usr/bin/sleep"), &sleeper);
    let mut killed = None;
    for _ in 0..20 {
        let t = Instant::now();
        let st = env.employee(Command::new(&sleeper).arg("3")).unwrap();
        if st.signal() == Some(libc::SIGKILL) {
            killed = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!("kill mode: ended after {killed:?}\n{}", killer.log());
    assert!(killed.is_some_and(|d| d < Duration::from_secs(2)), "killed right after start");
    let k = wait_count(&server, &sleeper.to_string_lossy(), "blocked", 1).await;
    assert_eq!(k[0]["mode"], "kill");
    wait_until(Duration::from_secs(10), "weaker mode reported", async || {
        let a = team.sys.get(&format!("/api/v1/agents/{}", killer.id)).await;
        a["agent"]["notices"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("weaker mode"))
    })
    .await;
    killer.stop();
    let _ = daemon.kill();
    let _ = daemon.wait();
}
