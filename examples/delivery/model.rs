//! The order and its statuses: the vocabulary every stage, the store and the API share.

use serde::Serialize;

/// Where an order is. The order of the variants is the order of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Status {
    Placed,
    Accepted,
    Assigned,
    SlipFilled,
    HandedToLogistics,
    Delivered,
    Failed,
}

impl Status {
    pub(crate) const ALL: [Status; 7] = [
        Status::Placed,
        Status::Accepted,
        Status::Assigned,
        Status::SlipFilled,
        Status::HandedToLogistics,
        Status::Delivered,
        Status::Failed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Placed => "placed",
            Status::Accepted => "accepted",
            Status::Assigned => "assigned",
            Status::SlipFilled => "slip_filled",
            Status::HandedToLogistics => "handed_to_logistics",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An order as the shop accepted it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Order {
    pub(crate) id: u64,
    pub(crate) item: String,
    pub(crate) quantity: u32,
    pub(crate) address: String,
}

impl Order {
    /// The delivery zone, from the address: stable across restarts, so a resumed order goes
    /// to the same zone's couriers and depot.
    pub(crate) fn zone(&self, zones: usize) -> usize {
        // FNV-1a: std's hasher is randomly seeded per process.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.address.trim().to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % zones.max(1) as u64) as usize
    }
}

/// One stored transition, as `/events` sends it and `history` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Transition {
    pub(crate) id: u64,
    pub(crate) status: Status,
    /// Unix time in milliseconds, with microseconds as the fraction.
    pub(crate) at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

pub(crate) fn us_to_ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

pub(crate) const ZONE_NAMES: [&str; 4] = ["north", "east", "south", "west"];
