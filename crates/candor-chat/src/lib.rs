//! Chat audit: messages from the WeCom chat archive (or an import) are
//! normalised ([`message`]), stored by the server, and indexed for substring
//! search ([`index`], over [`text`]'s character bigrams).

pub mod import;
pub mod index;
pub mod message;
pub mod text;
pub mod wecom;
