//! What happened to a message: every reply it got, by step, and from them
//! whether it was accepted, refused, not sent, or is unknown.

use super::error::{Error, ErrorKind, Result};
use super::reply::Reply;

/// Which step of a mail transaction the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    #[default]
    None,
    Mail,
    Rcpt,
    Data,
    Message,
    Helo,
}

/// Where a message stands, as far as the client can know. Only a final
/// reply to the whole message — to the end of data or to `BDAT … LAST`;
/// for LMTP, one per accepted recipient — makes it accepted; a chunk's 250
/// never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No message was tried.
    None,
    /// The final reply was read and was positive (LMTP: for at least one
    /// recipient, and every accepted recipient's reply was read).
    Accepted,
    /// The server refused it: MAIL, every RCPT, DATA, a chunk or the
    /// message itself (see `result`). Not delivered.
    Refused,
    /// Certainly not delivered, with no refusal from the server: refused
    /// by the library before sending, or the connection failed before its
    /// end of data was sent.
    NotSent,
    /// The end of data was sent but its final reply never arrived: the
    /// server may or may not have taken it (RFC 1047's window, which SMTP
    /// cannot close).
    Unknown,
}

/// What the server answered for one message.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub mail: Option<Reply>,
    /// RCPT answers, in the order the recipients were given.
    pub rcpts: Vec<Reply>,
    pub data: Option<Reply>,
    /// The final reply (after the body, or to BDAT LAST).
    pub last: Option<Reply>,
    /// LMTP: each recipient's delivery reply; `None` for refused ones.
    pub lmtp: Vec<Option<Reply>>,
    /// Why the message has no complete answer (refused locally, or the
    /// connection failed first).
    pub error: Option<Error>,
    pub(crate) n_rcpts: usize,
    /// Replies still expected for it.
    pub(crate) pending: usize,
    pub(crate) bdat: bool,
    /// Offset in the connection's byte stream just past this message's end
    /// of data, once queued.
    pub(crate) end_at: Option<u64>,
    /// The connection failed after `end_at` had been handed to the kernel.
    pub(crate) end_sent: bool,
    /// MAIL and RCPT were the caller's own verbs (`data` after `mail` and
    /// `rcpt`): only DATA and the final reply are this outcome's.
    pub(crate) envelope_by_caller: bool,
}

impl Outcome {
    /// An outcome for a message that never reached the wire.
    pub fn not_sent(e: Error) -> Self {
        Outcome {
            error: Some(e),
            ..Outcome::default()
        }
    }

    /// A message whose MAIL and RCPT the caller sent with its own verbs.
    pub(crate) fn after_caller_envelope() -> Self {
        Outcome {
            envelope_by_caller: true,
            ..Outcome::default()
        }
    }

    /// Accepted, refused, not sent or unknown: see [`Delivery`].
    pub fn delivery(&self) -> Delivery {
        if self.error.is_none()
            && self.mail.is_none()
            && self.n_rcpts == 0
            && !self.envelope_by_caller
        {
            return Delivery::None;
        }
        match self.result() {
            Ok((Step::None, _)) => Delivery::Accepted,
            Ok(_) => Delivery::Refused,
            Err(_) if self.end_sent => Delivery::Unknown,
            Err(_) => Delivery::NotSent,
        }
    }

    /// MAIL and every RCPT answered, MAIL and at least one RCPT accepted.
    pub fn envelope_accepted(&self) -> bool {
        self.mail.as_ref().is_some_and(|m| m.code == 250)
            && self.rcpts.len() == self.n_rcpts
            && self.rcpts.iter().any(accepted)
    }

    /// Which step the server refused (`Step::None` on success) and the
    /// reply that says so; or the error that left the message unanswered.
    pub fn result(&self) -> Result<(Step, Reply)> {
        let missing = || {
            self.error
                .clone()
                .unwrap_or_else(|| Error::new(ErrorKind::Closed, "no reply for this message"))
        };
        if !self.envelope_by_caller {
            if let (Some(e), None) = (&self.error, &self.mail) {
                return Err(e.clone());
            }
            let mail = self.mail.as_ref().ok_or_else(missing)?;
            if mail.code != 250 {
                return Ok((Step::Mail, mail.clone()));
            }
            // 421: the server is closing; the remaining replies will never
            // come.
            if let Some(r) = self.rcpts.iter().find(|r| r.code == 421) {
                return Ok((Step::Rcpt, r.clone()));
            }
            if !self.rcpts.iter().any(accepted) {
                return match self.rcpts.last() {
                    Some(r) if self.rcpts.len() == self.n_rcpts => Ok((Step::Rcpt, r.clone())),
                    _ => Err(missing()),
                };
            }
        }
        if !self.bdat {
            let data = self.data.as_ref().ok_or_else(missing)?;
            if data.code != 354 {
                return Ok((Step::Data, data.clone()));
            }
        }
        if !self.lmtp.is_empty() {
            let delivered: Vec<&Reply> = self.lmtp.iter().flatten().collect();
            let expected = self.rcpts.iter().filter(|r| accepted(r)).count();
            if delivered.len() < expected && self.error.is_some() {
                return Err(missing());
            }
            return match delivered.iter().rev().find(|r| r.is_positive()) {
                Some(ok) => Ok((Step::None, (*ok).clone())),
                None => Ok((
                    Step::Message,
                    delivered.last().map(|r| (*r).clone()).ok_or_else(missing)?,
                )),
            };
        }
        let last = self.last.as_ref().ok_or_else(missing)?;
        if last.is_positive() {
            Ok((Step::None, last.clone()))
        } else {
            Ok((Step::Message, last.clone()))
        }
    }
}

pub(crate) fn accepted(r: &Reply) -> bool {
    matches!(r.code, 250 | 251)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Reply {
        Reply::new(code, "t")
    }

    #[test]
    fn outcome_names_the_first_refusing_step() {
        let mut o = Outcome {
            mail: Some(reply(550)),
            n_rcpts: 1,
            ..Outcome::default()
        };
        assert_eq!(o.result().unwrap().0, Step::Mail);
        o.mail = Some(reply(250));
        o.rcpts = vec![reply(550)];
        assert_eq!(o.result().unwrap().0, Step::Rcpt);
        o.rcpts = vec![reply(550), reply(250)];
        o.n_rcpts = 2;
        o.data = Some(reply(554));
        assert_eq!(o.result().unwrap().0, Step::Data);
        o.data = Some(reply(354));
        o.last = Some(reply(552));
        assert_eq!(o.result().unwrap(), (Step::Message, reply(552)));
        o.last = Some(reply(250));
        assert_eq!(o.result().unwrap().0, Step::None);
    }

    #[test]
    fn outcome_without_answers_reports_the_error() {
        let o = Outcome {
            error: Some(Error::new(ErrorKind::Closed, "gone")),
            ..Outcome::default()
        };
        assert_eq!(o.result().unwrap_err().kind, ErrorKind::Closed);
    }

    #[test]
    fn lmtp_outcome_succeeds_when_any_recipient_was_delivered() {
        let o = Outcome {
            mail: Some(reply(250)),
            rcpts: vec![reply(250), reply(250)],
            n_rcpts: 2,
            data: Some(reply(354)),
            lmtp: vec![Some(reply(452)), Some(reply(250))],
            ..Outcome::default()
        };
        assert_eq!(o.result().unwrap().0, Step::None);
        let none = Outcome {
            lmtp: vec![Some(reply(452)), Some(reply(550))],
            ..o
        };
        assert_eq!(none.result().unwrap(), (Step::Message, reply(550)));
    }
}
