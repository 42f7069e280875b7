"""queue_stuck.py: a Python program with a classic hang, run unmodified by
Debian's interpreter under the preload (tests/integration/test_python.py).

A consumer thread waits in queue.Queue().get() for an item nobody will ever
put, and the main thread joins it: the whole interpreter is asleep, both
threads in untimed waits on CPython locks (semaphores in glibc).

Prints "READY main=TID consumer=TID" once the consumer is about to block,
then hangs until killed.
"""
import queue
import threading


def consume(q, started):
    started.put(threading.get_native_id())
    q.get()   # nobody ever puts: blocks for good


def main():
    q = queue.Queue()
    started = queue.SimpleQueue()
    consumer = threading.Thread(target=consume, args=(q, started), name="consumer")
    consumer.start()
    tid = started.get()
    print("READY main=%d consumer=%d" % (threading.get_native_id(), tid), flush=True)
    consumer.join()   # never returns


if __name__ == "__main__":
    main()
