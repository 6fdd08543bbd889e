#!/usr/bin/env python3
"""An ordinary confluent-kafka program, written for Apache Kafka and nothing else.

It creates a topic with the AdminClient, produces keyed JSON orders, reads them back with a
Consumer on explicitly assigned partitions, checks that every order came back intact, and
deletes the topic. Usage: apache_kafka_example.py [BOOTSTRAP] (default localhost:9092).
Exits 0 on success.
"""

import json
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ORDERS = 30


def main() -> int:
    bootstrap = sys.argv[1] if len(sys.argv) > 1 else "localhost:9092"
    topic = f"orders-{uuid.uuid4().hex[:8]}"

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).items():
        future.result()
        print(f"created topic {name}")

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "example-producer", "acks": "all"})
    delivered = []

    def delivery_report(err, msg):
        if err is not None:
            print(f"delivery failed: {err}", file=sys.stderr)
        else:
            delivered.append((msg.partition(), msg.offset()))

    sent = {}
    for i in range(ORDERS):
        order = {"order_id": i, "customer": f"customer-{i % 5}", "amount_cents": 1000 + 17 * i}
        producer.produce(topic, key=order["customer"], value=json.dumps(order), callback=delivery_report)
        producer.poll(0)
        sent[i] = order
    producer.flush(30)
    print(f"produced {len(delivered)} orders")
    if len(delivered) != ORDERS:
        print(f"only {len(delivered)} of {ORDERS} orders were delivered", file=sys.stderr)
        return 1

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "example-order-reader",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    metadata = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.topics[topic].partitions])
    received = {}
    deadline = time.time() + 60
    while len(received) < ORDERS and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        order = json.loads(msg.value())
        if msg.key().decode() != order["customer"]:
            print(f"key {msg.key()!r} does not match order {order}", file=sys.stderr)
            return 1
        received[order["order_id"]] = order
    consumer.close()

    if received != sent:
        missing = sorted(set(sent) - set(received))
        print(f"orders differ; missing {missing}", file=sys.stderr)
        return 1

    for name, future in admin.delete_topics([topic]).items():
        future.result()
        print(f"deleted topic {name}")
    print(f"all messages consumed back: {len(received)} orders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
