//! Delivery status of an outbound message. Meta's receipts arrive out of order and more than once, so
//! the status only moves forward: pending < sent < delivered < read. `failed` ends the sequence, except
//! that a delivered or read receipt proves the message did arrive and wins over an earlier failure.

/// Values match `scifer.inbox.v1.DeliveryStatus`, which is also what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Inbound messages have no delivery status.
    Unspecified,
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryState {
    pub fn to_i32(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Pending => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Failed => 5,
        }
    }

    pub fn from_i32(value: i32) -> Self {
        match value {
            1 => Self::Pending,
            2 => Self::Sent,
            3 => Self::Delivered,
            4 => Self::Read,
            5 => Self::Failed,
            _ => Self::Unspecified,
        }
    }

    /// Position in the forward-only sequence; `Failed` sits outside it.
    fn rank(self) -> Option<u8> {
        match self {
            Self::Pending => Some(1),
            Self::Sent => Some(2),
            Self::Delivered => Some(3),
            Self::Read => Some(4),
            Self::Unspecified | Self::Failed => None,
        }
    }

    /// The state after a receipt saying `incoming`, or `None` when the receipt changes nothing
    /// (it is older news, or the message is inbound).
    pub fn advance(self, incoming: Self) -> Option<Self> {
        let next = match (self, incoming) {
            (Self::Unspecified, _) | (_, Self::Unspecified) => None,
            // A failure only ends a message that had not yet reached the customer.
            (Self::Pending | Self::Sent, Self::Failed) => Some(Self::Failed),
            (_, Self::Failed) => None,
            // Delivered or read after a failure: Meta's later word is that it arrived.
            (Self::Failed, Self::Delivered | Self::Read) => Some(incoming),
            (Self::Failed, _) => None,
            (current, incoming) => match (current.rank(), incoming.rank()) {
                (Some(c), Some(i)) if i > c => Some(incoming),
                _ => None,
            },
        };
        next.filter(|n| *n != self)
    }

    /// The status a newly stored outbound message starts with, given the receipts already seen for
    /// its thread (Messenger watermarks may arrive before the echo they cover).
    pub fn initial_outbound(sent_at_ms: i64, delivered_watermark_ms: i64, read_watermark_ms: i64) -> Self {
        if read_watermark_ms > 0 && sent_at_ms <= read_watermark_ms {
            Self::Read
        } else if delivered_watermark_ms > 0 && sent_at_ms <= delivered_watermark_ms {
            Self::Delivered
        } else {
            Self::Sent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryState::{self, *};

    #[test]
    fn status_only_moves_forward() {
        assert_eq!(Sent.advance(Delivered), Some(Delivered));
        assert_eq!(Sent.advance(Read), Some(Read));
        assert_eq!(Read.advance(Delivered), None, "read before delivered stays read");
        assert_eq!(Delivered.advance(Sent), None);
        assert_eq!(Read.advance(Read), None, "a repeated receipt changes nothing");
        assert_eq!(Pending.advance(Sent), Some(Sent));
    }

    #[test]
    fn failed_is_terminal_except_for_proof_of_delivery() {
        assert_eq!(Sent.advance(Failed), Some(Failed));
        assert_eq!(Pending.advance(Failed), Some(Failed));
        assert_eq!(Failed.advance(Sent), None);
        assert_eq!(Failed.advance(Delivered), Some(Delivered));
        assert_eq!(Failed.advance(Read), Some(Read));
        assert_eq!(Delivered.advance(Failed), None);
        assert_eq!(Read.advance(Failed), None);
        assert_eq!(Failed.advance(Failed), None);
    }

    #[test]
    fn inbound_messages_have_no_status() {
        assert_eq!(DeliveryState::Unspecified.advance(Read), None);
        assert_eq!(Sent.advance(DeliveryState::Unspecified), None);
    }

    #[test]
    fn stored_watermarks_decide_the_first_status() {
        assert_eq!(DeliveryState::initial_outbound(100, 0, 0), Sent);
        assert_eq!(DeliveryState::initial_outbound(100, 100, 0), Delivered);
        assert_eq!(DeliveryState::initial_outbound(100, 150, 120), Read);
        assert_eq!(DeliveryState::initial_outbound(200, 150, 120), Sent);
    }

    #[test]
    fn values_round_trip_through_the_store() {
        for s in [DeliveryState::Unspecified, Pending, Sent, Delivered, Read, Failed] {
            assert_eq!(DeliveryState::from_i32(s.to_i32()), s);
        }
    }
}
