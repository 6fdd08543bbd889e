#!/usr/bin/env python3
"""A consumer-group member written for Apache Kafka 4 that uses the KIP-848 consumer group
protocol (`group.protocol=consumer`): the broker assigns its partitions.

It commits the offset after each message it processes, logs every assignment change, and runs
until SIGTERM or SIGINT; closing the consumer leaves the group. Processing appends
`PARTITION OFFSET KEY` to the output file.

Usage: groups_consumer_protocol_consumer.py BOOTSTRAP TOPIC GROUP OUTPUT_FILE
"""

import signal
import sys

from confluent_kafka import Consumer, KafkaException

running = True


def stop(signum, frame):
    global running
    running = False


def main() -> int:
    bootstrap, topic, group, output = sys.argv[1:5]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    owned = set()

    def on_assign(c, partitions):
        owned.update(p.partition for p in partitions)
        print(f"assigned {sorted(p.partition for p in partitions)}, now {sorted(owned)}", flush=True)

    def on_revoke(c, partitions):
        owned.difference_update(p.partition for p in partitions)
        print(f"revoked {sorted(p.partition for p in partitions)}, now {sorted(owned)}", flush=True)

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    processed = 0
    with open(output, "a", encoding="utf-8") as out:
        while running:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.write(f"{msg.partition()} {msg.offset()} {msg.key().decode()}\n")
            out.flush()
            consumer.commit(message=msg, asynchronous=False)
            processed += 1
    consumer.close()
    print(f"closed after {processed} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
