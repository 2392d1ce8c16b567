//! Chat audit: messages from the WeCom chat archive (or an import) are
//! normalised ([`message`]), stored by the server, and indexed for substring
//! search ([`index`], over [`text`]'s character bigrams, ordered by time or
//! by [`rank`]), shown only where the contacts in them agree ([`consent`]).

pub mod consent;
pub mod import;
pub mod index;
pub mod message;
pub mod rank;
pub mod text;
pub mod wecom;
