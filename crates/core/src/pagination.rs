//! Offset/keyset pagination as Coder's list endpoints take it.

use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pagination {
    /// Only rows after this id in the list's order.
    pub after_id: Option<Uuid>,
    /// 0 means no limit.
    pub limit: u64,
    pub offset: u64,
}
