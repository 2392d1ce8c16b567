//! A WebSocket client for the console's live routes, over TLS with the
//! server's CA pinned, as an admin (bearer token) or with a browser's Origin.

use futures_util::StreamExt;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Connect to `path`; the HTTP status when the server refuses the upgrade.
pub async fn connect(server: &super::Server, path: &str, token: &str, origin: Option<&str>) -> Result<Socket, u16> {
    let tls = candor_agent::net::pinned_tls(&server.ca_fingerprint()).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp).await.unwrap();
    let mut req = format!("wss://127.0.0.1:{}{path}", server.port).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket {path}: {e}"),
    }
}

/// A picture as the server sends it: its header and the JPEG.
pub struct Picture {
    pub head: serde_json::Value,
    pub jpeg: Vec<u8>,
}

/// The next picture, skipping other messages; `None` when the socket closed.
pub async fn next_picture(ws: &mut Socket) -> Option<Picture> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => {
                let n = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
                let head = serde_json::from_slice(&b[4..4 + n]).unwrap();
                return Some(Picture { head, jpeg: b[4 + n..].to_vec() });
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// The next text message (the wall's list of tiles).
pub async fn next_text(ws: &mut Socket) -> String {
    loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            return t.to_string();
        }
    }
}
