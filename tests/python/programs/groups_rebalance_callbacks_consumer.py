#!/usr/bin/env python3
"""A consumer-group member written for Apache Kafka that saves and restores its own positions
in rebalance callbacks.

It never commits while processing. `on_revoke` commits (synchronously) the position after the
last processed message of every revoked partition; `on_assign` looks up the committed offsets
of the new partitions and assigns them at those positions (the beginning when nothing is
committed). Runs until SIGTERM or SIGINT; closing the consumer revokes (and so commits)
everything it still holds. Processing appends `PARTITION OFFSET KEY` to the output file.

Usage: groups_rebalance_callbacks_consumer.py BOOTSTRAP TOPIC GROUP OUTPUT_FILE
"""

import signal
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

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
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    positions = {}  # partition -> next offset to process

    def on_revoke(c, partitions):
        to_commit = [TopicPartition(topic, p.partition, positions[p.partition])
                     for p in partitions if p.partition in positions]
        if to_commit:
            c.commit(offsets=to_commit, asynchronous=False)
        for p in partitions:
            positions.pop(p.partition, None)
        print(f"revoked {sorted(p.partition for p in partitions)}, saved "
              f"{sorted((tp.partition, tp.offset) for tp in to_commit)}", flush=True)

    def on_assign(c, partitions):
        committed = c.committed(partitions, timeout=10)
        start = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                 for tp in committed]
        c.assign(start)
        print(f"assigned {sorted(tp.partition for tp in start)} at offsets "
              f"{[tp.offset for tp in sorted(start, key=lambda tp: tp.partition)]}", flush=True)

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
            positions[msg.partition()] = msg.offset() + 1
            processed += 1
    consumer.close()
    print(f"closed after {processed} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
