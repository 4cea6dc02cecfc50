//! One transaction mechanism for every area (01 "Transactions").

use crate::StoreError;
use std::future::Future;

/// A store that can open a transaction. Dropping an uncommitted `Tx` rolls it back.
pub trait Transactional {
    type Tx: Committable + Send;
    fn begin(&self) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;
}

/// An open transaction.
pub trait Committable {
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
