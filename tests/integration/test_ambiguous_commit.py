#!/usr/bin/env python3
"""A log COMMIT whose reply is lost: PostgreSQL committed, the coordinator
never heard it and retries the batch. The retry must recognise its own rows
and carry the payments on, not take them for somebody else's duplicates.

A TCP proxy between the coordinator and PostgreSQL forwards everything;
once armed it lets the next COMMIT through and cuts the connection instead
of forwarding the server's answer. (Found by the bank chaos test.)"""
import socket
import threading
import time
import urllib.parse

from harness import PaytxTestCase, main

# COMMIT as a simple query, and as the Parse message of an unnamed
# statement, which is how the coordinator sends it in the pipeline that
# carries its batch (one round trip: the batch's results and the COMMIT's
# come back in the one reply the proxy drops).
COMMITS = (b"Q\x00\x00\x00\x0bCOMMIT\x00", b"P\x00\x00\x00\x0e\x00COMMIT\x00\x00\x00")


class CommitReplyCutter:
    def __init__(self, target):
        self.target = target
        self.armed = threading.Event()
        self.cut = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            state = {}
            for src, dst, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up, state),
                                 daemon=True).start()

    def _pump(self, src, dst, upstream, state):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and self.armed.is_set() and any(c in data for c in COMMITS):
                    self.armed.clear()
                    state["drop_reply"] = True
                elif not upstream and state.get("drop_reply"):
                    self.cut.set()  # the server committed and answered: drop it
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


class AmbiguousCommit(PaytxTestCase):

    start_services = False

    def test_lost_commit_reply_does_not_strand_the_payment(self):
        coord_dsn = self.d.dsn("coord", "coordinator")
        pg = urllib.parse.urlsplit(coord_dsn)
        cutter = CommitReplyCutter((pg.hostname, pg.port))
        self.addCleanup(cutter.close)
        # The proxy reads the protocol: no TLS through it.
        via_proxy = coord_dsn.replace(":%d/" % pg.port, ":%d/" % cutter.port) + \
            ("&" if "?" in coord_dsn else "?") + "sslmode=disable"
        self.d.ctl("migrate")
        for s in self.d.shards:
            self.d.start_ledger(s)
        self.d.start_coordinator(PAYTX_LEASE_MS=3000, PAYTX_PG_DSN=via_proxy)
        self.alice_and_bob(1000)
        time.sleep(1)  # idle: no log transaction in progress
        cutter.armed.set()
        corr = self.d.submit({"payment_id": "cut-1", "from": self.a, "to": self.b,
                              "amount": 100, "currency": "EUR"})
        self.assertTrue(cutter.cut.wait(10), "no COMMIT went through the proxy")
        out, _ = self.d.wait_reply(corr, timeout=30)
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.d.balance(self.b), (100, 0))
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()
