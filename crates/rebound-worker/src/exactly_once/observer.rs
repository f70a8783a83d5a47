//! What an observer learns about each transaction: which input records it
//! covers, and whether it committed.

/// One input partition's share of a transaction: the consumed records with
/// offsets in `first..next` of `topic`/`partition`; committing moves the
/// group's position there to `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRange {
    /// Input topic.
    pub topic: String,
    /// Input partition.
    pub partition: i32,
    /// The first offset in the transaction.
    pub first: i64,
    /// One past the last offset in the transaction.
    pub next: i64,
}

/// Told about every transaction of a pipeline, in order. `txn` numbers the
/// transactions of one pipeline run from 1. Calls happen on the pipeline's
/// task: keep them short.
pub trait CommitObserver: Send + Sync + 'static {
    /// The transaction is about to commit (its output is all sent).
    fn committing(&self, txn: u64, inputs: &[InputRange]) {
        let _ = (txn, inputs);
    }
    /// The commit returned success: output and offsets are visible together.
    fn committed(&self, txn: u64, inputs: &[InputRange]) {
        let _ = (txn, inputs);
    }
    /// The transaction was aborted; its input will be consumed again.
    fn aborted(&self, txn: u64, inputs: &[InputRange]) {
        let _ = (txn, inputs);
    }
}
