//! Live screens: who is watching which endpoint, and the fan-out of the
//! pictures its agent sends. One upstream per agent however many admins
//! watch: the agent streams while anyone does (the effective policy asks it
//! to) and viewers share each picture through a broadcast channel; a slow
//! viewer skips pictures instead of holding the others back.

use axum::body::Bytes;
use candor_proto::policy::LiveRequest;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// Pictures a viewer may fall behind before it skips to the newest.
const BACKLOG: usize = 4;
/// Thumbnails in flight for all wall viewers together.
const WALL_BACKLOG: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    View,
    Wall,
}

/// One picture as the viewers receive it.
#[derive(Debug, Clone, Serialize)]
pub struct FrameHead {
    pub agent: u64,
    pub display: String,
    /// When the agent captured it (its clock), for the viewer's latency figure.
    pub captured_ms: i64,
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Frame {
    pub head: FrameHead,
    pub jpeg: Bytes,
}

impl Frame {
    /// The WebSocket message: a 4-byte big-endian header length, the header
    /// as JSON, then the JPEG.
    pub fn message(&self) -> Vec<u8> {
        let head = serde_json::to_vec(&self.head).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + head.len() + self.jpeg.len());
        out.extend_from_slice(&(head.len() as u32).to_be_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.jpeg);
        out
    }
}

struct Channel {
    viewers: usize,
    walls: usize,
    tx: broadcast::Sender<Arc<Frame>>,
}

pub struct Live {
    channels: Mutex<HashMap<u64, Channel>>,
    wall: broadcast::Sender<Arc<Frame>>,
    /// The policy epoch: bumped when an endpoint gains its first or loses its last viewer.
    epoch: watch::Sender<u64>,
}

/// Held while one viewer watches; dropping it ends the watching.
pub struct Watching {
    live: Arc<Live>,
    agents: Vec<u64>,
    kind: Kind,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut changed = false;
        if let Ok(mut m) = self.live.channels.lock() {
            for a in &self.agents {
                if let Some(c) = m.get_mut(a) {
                    let n = match self.kind {
                        Kind::View => &mut c.viewers,
                        Kind::Wall => &mut c.walls,
                    };
                    *n = n.saturating_sub(1);
                    changed |= *n == 0;
                    if c.viewers == 0 && c.walls == 0 {
                        m.remove(a);
                    }
                }
            }
        }
        if changed {
            self.live.epoch.send_modify(|e| *e += 1);
        }
    }
}

impl Live {
    pub fn new(epoch: watch::Sender<u64>) -> Arc<Live> {
        Arc::new(Live { channels: Mutex::new(HashMap::new()), wall: broadcast::channel(WALL_BACKLOG).0, epoch })
    }

    /// What the agent should stream now (`None`: nothing).
    pub fn request(&self, agent: u64) -> Option<LiveRequest> {
        let m = self.channels.lock().ok()?;
        m.get(&agent).map(|c| LiveRequest { view: c.viewers > 0, wall: c.walls > 0 })
    }

    /// Start watching `agents` (one for live view, those in scope for the
    /// wall); the receiver gets their pictures until the guard is dropped.
    pub fn watch(self: &Arc<Self>, agents: Vec<u64>, kind: Kind) -> (broadcast::Receiver<Arc<Frame>>, Watching) {
        let mut changed = false;
        let rx = {
            let mut m = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            let mut rx = None;
            for a in &agents {
                let c =
                    m.entry(*a).or_insert_with(|| Channel { viewers: 0, walls: 0, tx: broadcast::channel(BACKLOG).0 });
                let n = match kind {
                    Kind::View => &mut c.viewers,
                    Kind::Wall => &mut c.walls,
                };
                changed |= *n == 0;
                *n += 1;
                if kind == Kind::View {
                    rx = Some(c.tx.subscribe());
                }
            }
            rx.unwrap_or_else(|| self.wall.subscribe())
        };
        if changed {
            self.epoch.send_modify(|e| *e += 1);
        }
        (rx, Watching { live: self.clone(), agents, kind })
    }

    /// Hand a picture from an agent to its viewers; false when nobody of that
    /// kind watches (the agent then stops sending it).
    pub fn publish(&self, kind: Kind, frame: Frame) -> bool {
        let Ok(m) = self.channels.lock() else { return false };
        let Some(c) = m.get(&frame.head.agent) else { return false };
        match kind {
            Kind::View if c.viewers > 0 => {
                let _ = c.tx.send(Arc::new(frame));
                true
            }
            Kind::Wall if c.walls > 0 => {
                let _ = self.wall.send(Arc::new(frame));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(agent: u64) -> Frame {
        Frame {
            head: FrameHead { agent, display: ":0".into(), captured_ms: 1, bytes: 3 },
            jpeg: Bytes::from_static(b"\xff\xd8\xff"),
        }
    }

    #[test]
    fn the_agent_streams_while_anyone_watches() {
        let (epoch, _) = watch::channel(0);
        let live = Live::new(epoch.clone());
        assert_eq!(live.request(7), None);
        assert!(!live.publish(Kind::View, frame(7)), "nobody watches");
        let (mut a, ga) = live.watch(vec![7], Kind::View);
        let (mut b, gb) = live.watch(vec![7], Kind::View);
        assert_eq!(*epoch.borrow(), 1, "only the first viewer changes the policy");
        assert_eq!(live.request(7), Some(LiveRequest { view: true, wall: false }));
        assert!(live.publish(Kind::View, frame(7)));
        assert_eq!(a.try_recv().unwrap().head.agent, 7);
        assert_eq!(b.try_recv().unwrap().head.agent, 7, "one upstream, every viewer");
        assert!(!live.publish(Kind::Wall, frame(7)), "no wall watches");
        drop(ga);
        assert_eq!(*epoch.borrow(), 1);
        drop(gb);
        assert_eq!(*epoch.borrow(), 2);
        assert_eq!(live.request(7), None);
    }

    #[test]
    fn wall_viewers_share_one_channel_and_slow_ones_skip() {
        let (epoch, _) = watch::channel(0);
        let live = Live::new(epoch);
        let (mut w, _g) = live.watch(vec![1, 2], Kind::Wall);
        assert_eq!(live.request(2), Some(LiveRequest { view: false, wall: true }));
        assert!(live.publish(Kind::Wall, frame(1)) && live.publish(Kind::Wall, frame(2)));
        assert_eq!((w.try_recv().unwrap().head.agent, w.try_recv().unwrap().head.agent), (1, 2));
        let (mut v, _gv) = live.watch(vec![1], Kind::View);
        for _ in 0..BACKLOG + 3 {
            live.publish(Kind::View, frame(1));
        }
        assert!(matches!(v.try_recv(), Err(broadcast::error::TryRecvError::Lagged(3))));
        let m = frame(1).message();
        let n = u32::from_be_bytes(m[..4].try_into().unwrap()) as usize;
        assert!(std::str::from_utf8(&m[4..4 + n]).unwrap().contains("\"captured_ms\":1"));
        assert_eq!(&m[4 + n..], b"\xff\xd8\xff");
    }
}
