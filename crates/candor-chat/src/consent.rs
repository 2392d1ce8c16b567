//! Where an external contact's archiving consent applies. WeCom records it
//! per conversation: for a one-to-one chat per employee–contact pair
//! (`check_single_agree`), for a group chat per room and contact
//! (`check_room_agree`). A contact who agreed with one salesperson and
//! declined with another is therefore shown in the first conversation and
//! hidden in the second. A *scope* names that conversation side:
//! `user:<employee userid>` or `room:<roomid>`; the empty scope is a record
//! that applies to every conversation of the contact (kept from before
//! consent was scoped).

use crate::message::is_external;

/// The scope of a group chat.
pub fn room(roomid: &str) -> String {
    format!("room:{roomid}")
}

/// The scope of a one-to-one chat with an employee.
pub fn user(userid: &str) -> String {
    format!("user:{userid}")
}

/// The scopes in which `contact`'s consent decides whether a message of this
/// conversation may be shown: its room, or each employee in it (a
/// one-to-one chat has one), or — with no employee in it — the contact as
/// a whole.
pub fn scopes<'a>(contact: &str, people: impl IntoIterator<Item = &'a str>, roomid: &str) -> Vec<String> {
    if !roomid.is_empty() {
        return vec![room(roomid)];
    }
    let mut out: Vec<String> =
        people.into_iter().filter(|p| !p.is_empty() && *p != contact && !is_external(p)).map(user).collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// The index term of one (contact, scope).
pub fn key(contact: &str, scope: &str) -> String {
    format!("{contact}\u{1f}{scope}")
}

/// Every (contact, scope) a message among `people` (sender and receivers)
/// depends on: it may be shown only while each of them is "agree".
pub fn pairs(people: &[&str], roomid: &str) -> Vec<(String, String)> {
    let mut contacts: Vec<&str> = people.iter().copied().filter(|p| is_external(p)).collect();
    contacts.sort_unstable();
    contacts.dedup();
    contacts
        .into_iter()
        .flat_map(|c| scopes(c, people.iter().copied(), roomid).into_iter().map(move |s| (c.to_string(), s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_conversation() {
        assert_eq!(pairs(&["zhangsan", "wmA"], ""), [("wmA".into(), "user:zhangsan".into())]);
        assert_eq!(pairs(&["wmA", "zhangsan"], ""), [("wmA".into(), "user:zhangsan".into())]);
        assert_eq!(
            pairs(&["zhangsan", "wmA", "wangwu", "woB"], "wr1"),
            [("wmA".into(), "room:wr1".into()), ("woB".into(), "room:wr1".into())]
        );
        assert!(pairs(&["zhangsan", "wangwu"], "").is_empty(), "no external contact");
        assert_eq!(scopes("wmA", ["wmA", "wmB"], ""), [""], "no employee: the contact as a whole");
        assert_eq!(key("wmA", "user:zhangsan"), "wmA\u{1f}user:zhangsan");
    }
}
