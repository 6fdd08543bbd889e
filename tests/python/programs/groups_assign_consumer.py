#!/usr/bin/env python3
"""A consumer written for Apache Kafka that reads fixed partitions with assign() and keeps its
position in the group's committed offsets.

Assigns the given partitions without offsets, so consumption starts at the group's committed
offset (or at the beginning when there is none), appends `PARTITION OFFSET KEY` to the output
file for every message, commits it synchronously, and stops after MAX_MESSAGES messages or
when nothing arrives for IDLE_SECONDS. Exits 0.

Usage: groups_assign_consumer.py BOOTSTRAP TOPIC GROUP PARTITIONS(comma-separated)
       OUTPUT_FILE MAX_MESSAGES IDLE_SECONDS
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main() -> int:
    bootstrap, topic, group, parts, output, max_messages, idle = sys.argv[1:8]
    partitions = [int(p) for p in parts.split(",")]
    max_messages, idle = int(max_messages), float(idle)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    processed = 0
    last = time.monotonic()
    with open(output, "a", encoding="utf-8") as out:
        while processed < max_messages and time.monotonic() - last < idle:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.write(f"{msg.partition()} {msg.offset()} {msg.key().decode()}\n")
            out.flush()
            consumer.commit(message=msg, asynchronous=False)
            processed += 1
            last = time.monotonic()
    consumer.close()
    print(f"consumed {processed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
