-- Version 11: what the qyapi sync learns besides consent — the employees
-- WeCom archives (get_permit_user_list, replaced whole each sync) and the
-- names of internal group chats (msgaudit/groupchat/get), shown instead of
-- bare room ids.
CREATE TABLE chat_permit_users (
    userid TEXT PRIMARY KEY,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE chat_room_names (
    roomid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    creator TEXT NOT NULL,
    members INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
