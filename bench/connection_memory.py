#!/usr/bin/python3
"""Memory a cafraft-node spends per connection (docs/protocol.md, docs/performance.md).

Starts a one-node cluster, then holds N connections of each kind and reads the node's resident
memory (VmRSS) before and after: connections that never say a word (before their handshake),
clients that finished their handshake and stay idle (they answer the node's pings), and with
--tls the same inside TLS. Prints KiB per connection.

    bench/connection_memory.py [--bin build/bin] [--count 250] [--tls]
"""
import argparse, os, socket, ssl, struct, subprocess, sys, tempfile, time



def hello_frame():
    def field(number, kind, payload):
        return bytes([number << 3 | kind]) + payload
    def string(number, s):
        return field(number, 2, bytes([len(s)]) + s)
    hello = string(1, b"cafraft") + field(2, 0, b"\x01") + field(3, 0, b"\x01")
    frame = string(3, hello)  # Frame.hello
    return struct.pack(">I", len(frame)) + frame


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def settle(pid, seconds=1.5):
    time.sleep(seconds)
    return rss_kib(pid)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default="build/bin")
    p.add_argument("--count", type=int, default=250)  # below the 256 a listener holds per address
    p.add_argument("--tls", action="store_true")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="cafraft-connmem-")
    port = free_port()
    flags = ["--insecure"]
    ctx = None
    if a.tls:
        run = lambda cmd: subprocess.run(cmd, shell=True, cwd=work, check=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.pem")
        for n in ("n1", "client"):
            run("openssl req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s.key -out %s.csr" % (n, n, n))
            run("openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out %s.pem" % (n, n))
        flags = ["--tls-cert", work + "/n1.pem", "--tls-key", work + "/n1.key", "--tls-ca", work + "/ca.pem"]
        ctx = ssl.create_default_context(cafile=work + "/ca.pem")
        ctx.check_hostname = False
        ctx.load_cert_chain(work + "/client.pem", work + "/client.key")
    node = subprocess.Popen([os.path.join(a.bin, "cafraft-node"), "--id", "n1", "--data-dir", work + "/n1",
                             "--listen", "127.0.0.1:%d" % port, "--initial-cluster",
                             "n1=127.0.0.1:%d" % port] + flags,
                            stdout=subprocess.DEVNULL, stderr=open(work + "/n1.log", "w"))
    try:
        time.sleep(1.5)
        base = settle(node.pid)
        # Silent connections: accepted, no handshake.
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.count)]
        with_silent = settle(node.pid)
        for s in silent:
            s.close()
        time.sleep(1.0)
        base2 = settle(node.pid)
        # Idle clients after their handshake (each reads the Welcome; pings are answered by
        # the node's own keep-alive only if read, so they are drained once at the end).
        clients = []
        for _ in range(a.count):
            s = socket.create_connection(("127.0.0.1", port))
            if ctx:
                s = ctx.wrap_socket(s)
            s.sendall(hello_frame())
            length = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL) if not ctx else s.recv(4))[0]
            got = b""
            while len(got) < length:
                got += s.recv(length - len(got))
            clients.append(s)
        with_clients = settle(node.pid, 0.5)
        for s in clients:
            s.close()
        mode = "mutual TLS" if a.tls else "plaintext"
        print("%s, %d connections each; node RSS %d KiB at rest" % (mode, a.count, base))
        print("  silent, before the handshake: %.1f KiB each" % ((with_silent - base) / a.count))
        print("  idle clients after the handshake: %.1f KiB each" % ((with_clients - base2) / a.count))
    finally:
        node.terminate()
        node.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
