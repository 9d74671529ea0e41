//! The messages the process's listeners (the Connection Request listener, the device state API)
//! send to the owner of a CPE (the shard whose stride holds it), and who owns which CPE.
//!
//! Neither listener holds CPE state: each asks the owner over an unbounded channel (one message
//! per accepted request; the listeners bound their own request rates and connections) and the
//! owner answers from the CPE's state at once, even while the CPE is in a session.
//!
//! - [`answer`]: what an owner answers the API with (a CPE's state as JSON, local changes).
//!
//! A neutral module: the listeners (`api`, `connreq`) and the owners (`engine`) depend on it,
//! not on each other.

pub mod answer;

pub use answer::{Notify, Refusal};

use tokio::sync::{mpsc, oneshot};

/// A request from a listener (Connection Requests, the device state API) to the owner of a CPE.
#[derive(Debug)]
pub enum CpeMsg {
    /// What are this CPE's ConnectionRequestUsername/Password? `None`: no such CPE.
    Lookup { index: u32, reply: oneshot::Sender<Option<(String, String)>> },
    /// Which of your CPEs has this ConnectionRequestUsername, and what is its password? A UDP
    /// Connection Request (TR-069 Annex G) names its CPE only by `un`, so every owner is asked;
    /// `None`: none of this owner's CPEs.
    LookupUser { username: Box<str>, reply: oneshot::Sender<Option<(u32, String)>> },
    /// An authenticated Connection Request: start a `6 CONNECTION REQUEST` session.
    Wake { index: u32 },
    /// The API: the CPE's state as JSON.
    Inspect { index: u32, reply: oneshot::Sender<Result<serde_json::Value, Refusal>> },
    /// The API: change values locally; an active notification starts a session.
    SetLocal { index: u32, params: Vec<(String, String)>, reply: oneshot::Sender<Result<Notify, Refusal>> },
}

impl CpeMsg {
    /// The CPE the message is about (`None`: a question about a username, for every owner).
    pub fn index(&self) -> Option<u32> {
        match self {
            CpeMsg::Lookup { index, .. } | CpeMsg::Wake { index } | CpeMsg::Inspect { index, .. } | CpeMsg::SetLocal { index, .. } => {
                Some(*index)
            }
            CpeMsg::LookupUser { .. } => None,
        }
    }

    /// Answers an API question with `refusal`; the listener messages come back untouched.
    pub fn refuse(self, refusal: Refusal) -> Option<CpeMsg> {
        match self {
            CpeMsg::Inspect { reply, .. } => {
                let _ = reply.send(Err(refusal));
                None
            }
            CpeMsg::SetLocal { reply, .. } => {
                let _ = reply.send(Err(refusal));
                None
            }
            other => Some(other),
        }
    }

    /// Answers an API question for a CPE that is in a session (its state is on the move).
    pub fn refuse_busy(self) -> Option<CpeMsg> {
        self.refuse(Refusal::new(409, "the CPE is in a session; retry when it ends"))
    }
}

/// Who owns which CPE: indices `first..first+count`, split over owners by `(i − first) % n`
/// (the fleet's strided shards; a single CPE has one owner).
#[derive(Debug, Clone)]
pub struct Owners {
    pub first: u32,
    pub count: u32,
    pub senders: Vec<mpsc::UnboundedSender<CpeMsg>>,
}

impl Owners {
    /// `n` owners (at least one) of CPEs `first..first+count`, and the owners' ends of the channels.
    pub fn channels(first: u32, count: u32, n: usize) -> (Owners, Vec<mpsc::UnboundedReceiver<CpeMsg>>) {
        let (senders, receivers) = (0..n.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
        (Owners { first, count, senders }, receivers)
    }

    /// The channel to the owner of CPE `index`, if it is one of ours.
    pub fn owner(&self, index: u32) -> Option<&mpsc::UnboundedSender<CpeMsg>> {
        let rel = index.checked_sub(self.first).filter(|r| *r < self.count)?;
        self.senders.get(rel as usize % self.senders.len().max(1))
    }
}
