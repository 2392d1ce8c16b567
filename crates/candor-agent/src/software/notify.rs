//! Telling the employee that a program was blocked: a desktop notification
//! naming the program and the rule (sent by [`crate::desktop_notify`]).

/// Show the notification (rate-limited by the caller).
pub fn notify(uid: u32, bus: &str, program: &str, rule: &str) {
    // Both languages: the agent does not know the desktop's locale.
    let title = "程序已被阻止 · Program blocked";
    let body = format!(
        "“{program}” 未能启动：公司软件管控策略（{rule}）不允许运行它。\n\
         “{program}” was not started: the company's software policy ({rule}) does not allow it."
    );
    crate::desktop_notify::show(uid, bus, title, &body, format!("blocked {program}"));
}
