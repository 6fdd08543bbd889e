#!/usr/bin/env python3
"""An exactly-once consume-transform-produce program written for Apache Kafka with kafka-python 3.

It reads an input topic as a static member of a consumer group (read_committed, no auto
commit) and writes, for every input record, one record to the same partition number of an
output topic: the same key and the value `done:VALUE@OFFSET`. Each poll's records (at most
BATCH) are one transaction of a transactional producer: begin_transaction, send, flush,
send_offsets_to_transaction(offsets, consumer.group_metadata()) and commit_transaction. The
producer is initialised (init_transactions) before the consumer joins, so a new instance with
the same transactional id fences its predecessor and aborts the transaction it left open
before the group's committed offsets are read.

When sending the offsets or committing fails with an error the transaction can be aborted
(e.g. the group's generation moved, KIP-447), the transaction is aborted and the consumer goes
back to the committed offsets; any other error ends the program with a traceback (exit 1).

It prints `ready` after init_transactions, `open T N` once transaction T's N records are
written (flushed) and before its offsets and commit, `committed T N` after the commit and
`aborted T N: ERROR` after an abort; T counts this instance's transactions from 1. With
EOS_PAUSE_AT=T and EOS_PAUSE_FILE=PATH it waits after `open T N` while PATH exists (at most
EOS_PAUSE_MAX_S seconds, default 60), which leaves a transaction open on purpose.
EOS_TXN_DELAY_S (default 0) is a pause after every commit, to pace the program. Runs until
SIGTERM or SIGINT, then closes and exits 0.

Usage: eos_kafka_python_processor.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP INSTANCE_ID
(the transactional id is GROUP-INSTANCE_ID)
"""

import os
import signal
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

BATCH = 10

running = True


def stop(signum, frame):
    global running
    running = False


def transform(record) -> bytes:
    return b"done:" + record.value + b"@" + str(record.offset).encode()


def main() -> int:
    bootstrap, source, sink, group, instance = sys.argv[1:6]
    pause_at = int(os.environ.get("EOS_PAUSE_AT", "0"))
    pause_file = os.environ.get("EOS_PAUSE_FILE", "")
    pause_max = float(os.environ.get("EOS_PAUSE_MAX_S", "60"))
    txn_delay = float(os.environ.get("EOS_TXN_DELAY_S", "0"))
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    common = dict(bootstrap_servers=bootstrap, client_id=f"{group}-{instance}",
                  request_timeout_ms=30_000, reconnect_backoff_max_ms=1_000)
    producer = KafkaProducer(transactional_id=f"{group}-{instance}", max_block_ms=30_000, **common)
    producer.init_transactions()
    print("ready", flush=True)

    consumer = KafkaConsumer(
        source,
        group_id=group,
        group_instance_id=instance,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=10_000,
        max_poll_records=BATCH,
        **common,
    )
    txn = 0
    while running:
        batch = [r for records in consumer.poll(timeout_ms=200).values() for r in records]
        if not batch:
            continue
        txn += 1
        ends = {}
        producer.begin_transaction()
        futures = []
        for record in batch:
            futures.append(producer.send(sink, key=record.key, value=transform(record), partition=record.partition))
            ends[(record.topic, record.partition)] = record.offset + 1
        try:
            producer.flush()
            for f in futures:
                f.get(timeout=30)
            print(f"open {txn} {len(batch)}", flush=True)
            if txn == pause_at and pause_file:
                deadline = time.monotonic() + pause_max
                while os.path.exists(pause_file) and time.monotonic() < deadline:
                    time.sleep(0.02)
            offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in sorted(ends.items())}
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()
        except KafkaError as e:
            # Abortable errors leave the producer usable after the abort; a fatal one makes the
            # abort raise too, and the program ends.
            producer.abort_transaction()
            print(f"aborted {txn} {len(batch)}: {e!r}", flush=True)
            rewind(consumer)
            continue
        print(f"committed {txn} {len(batch)}", flush=True)
        if txn_delay:
            time.sleep(txn_delay)

    consumer.close(autocommit=False)
    producer.close(timeout=10)
    print("closed", flush=True)
    return 0


def rewind(consumer) -> None:
    """Goes back to the committed offsets, so the aborted transaction's records are processed again."""
    for tp in consumer.assignment():
        committed = consumer.committed(tp, timeout_ms=30_000)
        if committed is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)


if __name__ == "__main__":
    sys.exit(main())
