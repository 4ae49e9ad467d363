"""A local Apache Kafka (KRaft) from its Maven Central jars: ``aiguillage kafka up``, the tests, the bench."""

from aiguillage.kafka_local.cluster import LocalKafka, LocalKafkaError
from aiguillage.kafka_local.jars import KAFKA_VERSION, KafkaJarsError, fetch

__all__ = ["KAFKA_VERSION", "KafkaJarsError", "LocalKafka", "LocalKafkaError", "fetch"]
