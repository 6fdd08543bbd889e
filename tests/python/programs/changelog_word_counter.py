#!/usr/bin/env python3
"""A stateful stream processor written for Apache Kafka with confluent-kafka, keeping its state
in a compacted changelog topic the way Kafka Streams, Faust and Quix Streams do.

It counts words: each input record's key is a word; a key starting with `-` deletes the word
(`-apple` forgets apple). The state, a count per word, lives in memory and in the changelog
topic: every change is written there as key = the word, value = the count as decimal text, and
a deleted word as a tombstone (a null value). Changelog records and input offsets are committed
in one transaction (KIP-447), so the changelog holds exactly the state of the committed input.

At start the processor fences any earlier instance (init_transactions), restores the state by
reading the whole changelog (read_committed) up to its end, then joins the group and goes on from the committed input offsets. A commit
happens after BATCH records or COMMIT_INTERVAL_S seconds. Prints `restored K keys from R
records`, `processed PARTITION OFFSET` for each input record and `committed N records` for
each commit. Runs until SIGTERM or SIGINT, then commits, closes and exits 0.

Usage: changelog_word_counter.py BOOTSTRAP INPUT_TOPIC CHANGELOG_TOPIC GROUP
(the transactional id is GROUP-counter)
"""

import signal
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

BATCH = 100
COMMIT_INTERVAL_S = 1.0

running = True


def stop(signum, frame):
    global running
    running = False


def restore(bootstrap: str, changelog: str) -> dict[bytes, int]:
    """The state the changelog holds: the latest value per key, tombstones removing keys."""
    reader = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused-restore-reader",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    partitions = reader.list_topics(changelog, timeout=30).topics[changelog].partitions
    reader.assign([TopicPartition(changelog, p, OFFSET_BEGINNING) for p in partitions])
    state: dict[bytes, int] = {}
    remaining = set(partitions)
    records = 0
    deadline = time.monotonic() + 60
    while remaining:
        if time.monotonic() > deadline:
            raise RuntimeError(f"changelog partitions {sorted(remaining)} never reached their end")
        msg = reader.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                remaining.discard(msg.partition())
                continue
            raise KafkaException(msg.error())
        records += 1
        if msg.value() is None:
            state.pop(msg.key(), None)
        else:
            state[msg.key()] = int(msg.value())
    reader.close()
    print(f"restored {len(state)} keys from {records} records", flush=True)
    return state


class Counter:
    def __init__(self, bootstrap: str, source: str, changelog: str, group: str):
        self.source = source
        self.changelog = changelog
        # Fence a crashed predecessor first: its open transaction is aborted, so the restore
        # below reads exactly the committed state.
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": f"{group}-counter",
        })
        self.producer.init_transactions()
        self.counts = restore(bootstrap, changelog)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            # A static member: a restarted instance takes its place at once (KIP-345) instead
            # of waiting for the crashed one's session to time out.
            "group.instance.id": f"{group}-counter",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        })
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.began: float | None = None
        self.pending = 0

    def run(self) -> None:
        self.consumer.subscribe([self.source], on_revoke=lambda c, p: self.commit())
        while running:
            msg = self.consumer.poll(0.2)
            if msg is not None:
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
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
        key = msg.key()
        if key.startswith(b"-"):
            word = key[1:]
            self.counts.pop(word, None)
            self.producer.produce(self.changelog, key=word, value=None)
        else:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.producer.produce(self.changelog, key=key, value=str(self.counts[key]).encode())
        self.producer.poll(0)
        self.next_offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        self.pending += 1
        print(f"processed {msg.partition()} {msg.offset()}", flush=True)

    def commit(self) -> None:
        if self.began is None:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self.next_offsets.items())]
        self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata())
        self.producer.commit_transaction()
        print(f"committed {self.pending} records", flush=True)
        self.began = None
        self.pending = 0
        self.next_offsets.clear()


def main() -> int:
    bootstrap, source, changelog, group = sys.argv[1:5]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Counter(bootstrap, source, changelog, group).run()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
