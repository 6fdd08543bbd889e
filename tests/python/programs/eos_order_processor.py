#!/usr/bin/env python3
"""An exactly-once stream processor written for Apache Kafka with confluent-kafka.

It reads orders (JSON `{"order": N, "qty": Q, "price_cents": P}`) from an input topic as a
static member of a consumer group and writes one priced order per input record to an output
topic: the same key and the JSON value `{"order": N, "total_cents": Q*P, "source":
"TOPIC/PARTITION/OFFSET"}`. Output and consumer offsets are committed in one transaction
(send_offsets_to_transaction with the consumer's group metadata, KIP-447), so after a crash
the next instance with the same transactional id aborts what the crashed one left open and
goes on from the committed offsets: read_committed readers of the output see every order once.

A transaction is committed after BATCH records or COMMIT_INTERVAL_S seconds after it began,
whichever comes first, and before partitions are revoked. Every processed record is printed as
`processed PARTITION OFFSET` and every commit as `committed N records`. Runs until SIGTERM or
SIGINT, then commits the open transaction, closes and exits 0.

Usage: eos_order_processor.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP INSTANCE_ID
(the transactional id is GROUP-INSTANCE_ID)
"""

import json
import signal
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

BATCH = 50
COMMIT_INTERVAL_S = 3.0

running = True


def stop(signum, frame):
    global running
    running = False


def price(msg) -> bytes:
    order = json.loads(msg.value())
    return json.dumps({
        "order": order["order"],
        "total_cents": order["qty"] * order["price_cents"],
        "source": f"{msg.topic()}/{msg.partition()}/{msg.offset()}",
    }).encode()


class Processor:
    def __init__(self, bootstrap: str, source: str, sink: str, group: str, instance: str):
        self.sink = sink
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.instance.id": instance,
            "client.id": f"{group}-{instance}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10000,
        })
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": f"{group}-{instance}",
            "client.id": f"{group}-{instance}",
        })
        self.producer.init_transactions()
        self.source = source
        self.next_offsets: dict[tuple[str, int], int] = {}  # consumed in the open transaction
        self.began: float | None = None  # when the open transaction began
        self.pending = 0  # records produced in the open transaction

    def run(self) -> None:
        self.consumer.subscribe([self.source], on_assign=self.on_assign, on_revoke=self.on_revoke)
        while running:
            msg = self.consumer.poll(0.2)
            if msg is not None:
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    print(f"consumer error: {msg.error()}", file=sys.stderr, flush=True)
                else:
                    self.process(msg)
            if self.began is not None and (self.pending >= BATCH
                                           or time.monotonic() - self.began >= COMMIT_INTERVAL_S):
                self.commit()
        self.commit()
        self.consumer.close()

    def process(self, msg) -> None:
        if self.began is None:
            self.producer.begin_transaction()
            self.began = time.monotonic()
        self.producer.produce(self.sink, key=msg.key(), value=price(msg))
        self.producer.poll(0)
        self.next_offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        self.pending += 1
        print(f"processed {msg.partition()} {msg.offset()}", flush=True)

    def commit(self) -> None:
        if self.began is None:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self.next_offsets.items())]
        try:
            if offsets:
                self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata())
            self.producer.commit_transaction()
            print(f"committed {self.pending} records", flush=True)
        except KafkaException as e:
            if not e.args[0].txn_requires_abort():
                raise
            print(f"aborting: {e.args[0]}", file=sys.stderr, flush=True)
            self.producer.abort_transaction()
            self.rewind()
        self.began = None
        self.pending = 0
        self.next_offsets.clear()

    def rewind(self) -> None:
        """Goes back to the committed offsets, so the aborted records are processed again."""
        assignment = self.consumer.assignment()
        for tp in self.consumer.committed(assignment, timeout=30):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    def on_assign(self, consumer, partitions) -> None:
        print(f"assigned {sorted(p.partition for p in partitions)}", flush=True)

    def on_revoke(self, consumer, partitions) -> None:
        print(f"revoked {sorted(p.partition for p in partitions)}", flush=True)
        self.commit()


def main() -> int:
    bootstrap, source, sink, group, instance = sys.argv[1:6]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Processor(bootstrap, source, sink, group, instance).run()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
