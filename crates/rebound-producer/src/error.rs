//! Produce errors, classified by exhaustive match on the error code.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// A record could not be produced.
#[derive(Debug, thiserror::Error)]
#[error(
    "producing to {topic} failed ({}, {attempts} attempt{}): {source}",
    if *retriable { "retriable" } else { "final" },
    if *attempts == 1 { "" } else { "s" }
)]
pub struct ProduceError {
    /// Destination topic.
    pub topic: String,
    /// Whether trying again may succeed.
    pub retriable: bool,
    /// How many times the record was tried (more than 1 only with
    /// [`ProducerConfig::with_retry`](crate::ProducerConfig::with_retry)).
    pub attempts: u32,
    /// The client error.
    #[source]
    pub source: KafkaError,
}

impl ProduceError {
    pub(crate) fn new(topic: &str, source: KafkaError) -> Self {
        ProduceError {
            topic: topic.to_string(),
            retriable: source.rdkafka_error_code().is_none_or(is_retriable),
            attempts: 1,
            source,
        }
    }
}

/// Whether a produce that failed with `code` may succeed if tried again.
pub fn is_retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    match code {
        C::QueueFull
        | C::MessageTimedOut
        | C::RequestTimedOut
        | C::OperationTimedOut
        | C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::NetworkException
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::UnknownTopicOrPartition
        | C::CoordinatorLoadInProgress
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::Retry
        | C::OutOfOrderSequenceNumber
        | C::KafkaStorageError
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::PreviousInProgress
        // The topic is not (yet) in the cluster's metadata: the local code
        // librdkafka returns once it cached "no such topic". Kafka's Java
        // client treats an unknown topic as retriable (it may be being
        // created); a misspelt topic fails once the caller's bound is hit.
        | C::UnknownTopic => true,
        C::MessageSizeTooLarge
        | C::InvalidMessage
        | C::InvalidMessageSize
        | C::InvalidRecord
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::InvalidTopic
        | C::InvalidRequiredAcks
        | C::UnsupportedVersion
        | C::UnsupportedForMessageFormat
        | C::ProducerFenced
        | C::InvalidProducerEpoch
        | C::Fatal
        | C::InvalidArgument
        | C::UnknownPartition => false,
        // Anything else: assume it may clear up; the caller bounds retries.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(is_retriable(RDKafkaErrorCode::MessageTimedOut));
        assert!(is_retriable(RDKafkaErrorCode::AllBrokersDown));
        assert!(is_retriable(RDKafkaErrorCode::UnknownTopic));
        assert!(is_retriable(RDKafkaErrorCode::UnknownTopicOrPartition));
        assert!(!is_retriable(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(!is_retriable(RDKafkaErrorCode::TopicAuthorizationFailed));
    }
}
