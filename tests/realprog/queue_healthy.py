"""queue_healthy.py: the healthy twin of queue_stuck.py, run unmodified by
Debian's interpreter under the preload (tests/integration/test_python.py).

A producer thread puts an item on each of two queues every 1.4 s (sleeping
in between), forever. "consumer" takes them with an untimed
queue.Queue().get(); "poller" with get(timeout=0.25) in a loop, counting
the timeouts. Main joins the producer (which never ends). Nothing here is
stuck: every wait ends, by a put or a timeout.

Prints "READY main=TID producer=TID consumer=TID poller=TID" once all
threads run, then "GOT consumer=N poller=N timeouts=N" after every item the
poller takes.
"""
import queue
import threading
import time

PERIOD = 1.4   # past the settle time (1 s): the consumer is judged while parked


def produce(queues):
    n = 0
    while True:
        time.sleep(PERIOD)
        n += 1
        for q in queues:
            q.put(n)


def consume(q, counts):
    while True:
        counts["consumer"] = q.get()


def poll(q, counts):
    while True:
        try:
            counts["poller"] = q.get(timeout=0.25)
        except queue.Empty:
            counts["timeouts"] += 1
            continue
        print("GOT consumer=%d poller=%d timeouts=%d"
                  % (counts["consumer"], counts["poller"], counts["timeouts"]), flush=True)


def main():
    counts = {"consumer": 0, "poller": 0, "timeouts": 0}
    for_consumer, for_poller = queue.Queue(), queue.Queue()
    tids = queue.SimpleQueue()

    def named(target, *args):
        def run():
            tids.put((threading.current_thread().name, threading.get_native_id()))
            target(*args)
        return run

    threads = [threading.Thread(target=named(consume, for_consumer, counts), name="consumer"),
               threading.Thread(target=named(poll, for_poller, counts), name="poller"),
               threading.Thread(target=named(produce, [for_consumer, for_poller]), name="producer")]
    for t in threads:
        t.start()
    roles = dict(tids.get() for _ in threads)
    print("READY main=%d producer=%d consumer=%d poller=%d"
          % (threading.get_native_id(), roles["producer"], roles["consumer"], roles["poller"]), flush=True)
    threads[2].join()   # the producer runs for ever


if __name__ == "__main__":
    main()
