#!/usr/bin/env python3
"""A consumer-group member written for Apache Kafka: cooperative-sticky, static membership.

Subscribes to a topic with `partition.assignment.strategy=cooperative-sticky` and a
`group.instance.id`, commits synchronously after processing every message, and runs until it
gets SIGTERM or SIGINT, then closes the consumer and exits 0.

Processing a message means appending `PARTITION OFFSET KEY` to the output file (flushed), then
committing it. Rebalance events are printed to stdout.

Usage: groups_coop_static_consumer.py BOOTSTRAP TOPIC GROUP INSTANCE_ID OUTPUT_FILE
"""

import signal
import sys

from confluent_kafka import Consumer, KafkaException

running = True


def stop(signum, frame):
    global running
    running = False


def main() -> int:
    bootstrap, topic, group, instance_id, output = sys.argv[1:6]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.instance.id": instance_id,
        "client.id": instance_id,
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 2000,
    })

    def on_assign(c, partitions):
        print(f"assigned {sorted(p.partition for p in partitions)}", flush=True)

    def on_revoke(c, partitions):
        print(f"revoked {sorted(p.partition for p in partitions)}", flush=True)

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    processed = 0
    with open(output, "a", encoding="utf-8") as out:
        while running:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                print(f"consumer error: {msg.error()}", file=sys.stderr, flush=True)
                if msg.error().fatal():
                    raise KafkaException(msg.error())
                continue
            out.write(f"{msg.partition()} {msg.offset()} {msg.key().decode()}\n")
            out.flush()
            consumer.commit(message=msg, asynchronous=False)
            processed += 1
    consumer.close()
    print(f"closed after {processed} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
