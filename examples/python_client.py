#!/usr/bin/python3
"""A cafraft client in Python, from the protocol alone (docs/protocol.md).

Needs Debian's python3-protobuf and protoc (protobuf-compiler). It compiles cafraft's two
.proto files, connects to a node, says Hello, writes a key and reads it back linearizably,
following a not_leader answer to the leader's address.

    examples/python_client.py --protos messages/ HOST:PORT KEY VALUE
        [--cert client.pem --key client.key --ca ca.pem]
"""
import argparse, os, shutil, socket, ssl, struct, subprocess, sys, tempfile, time


def compile_protos(proto_dir):
    out = tempfile.mkdtemp(prefix="cafraft-py-")
    pkg = os.path.join(out, "cafraft", "messages")
    os.makedirs(pkg)
    for name in ("raft.proto", "wire.proto"):  # imported as cafraft/messages/<name>
        shutil.copy(os.path.join(proto_dir, name), pkg)
    subprocess.run(["protoc", "-I", out, "--python_out", out,
                    "cafraft/messages/raft.proto", "cafraft/messages/wire.proto"], check=True)
    sys.path.insert(0, out)
    from cafraft.messages import wire_pb2
    return wire_pb2


class Connection:
    def __init__(self, pb, address, tls):
        host, port = address.rsplit(":", 1)
        self.pb, self.next_id = pb, 1
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        if tls:
            ctx = ssl.create_default_context(cafile=tls.ca)
            ctx.check_hostname = False  # nodes are named by id, checked in the handshake
            ctx.load_cert_chain(tls.cert, tls.keyfile)
            self.sock = ctx.wrap_socket(self.sock)
        hello = pb.Frame()
        hello.hello.magic, hello.hello.min_version, hello.hello.max_version = "cafraft", 1, 1
        self.send(hello)
        first = self.receive()
        if first.WhichOneof("body") != "welcome":
            raise RuntimeError("refused: " + first.error.detail)
        self.node = first.welcome.node_id

    def send(self, frame):
        data = frame.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the node closed the connection")
            buf += chunk
        return buf

    def receive(self):
        frame = self.pb.Frame()
        frame.ParseFromString(self.read(struct.unpack(">I", self.read(4))[0]))
        return frame

    def ask(self, fill):
        """Sends a request (fill sets its body) and returns the answer frame."""
        request = self.pb.Frame(id=self.next_id)
        self.next_id += 1
        fill(request)
        self.send(request)
        while True:
            frame = self.receive()
            if frame.WhichOneof("body") == "ping":  # keep-alive: answer it
                self.send(self.pb.Frame(pong=self.pb.Pong()))
            elif frame.answer and frame.id == request.id:
                return frame


def ask_leader(pb, address, tls, fill, deadline=10.0):
    """Asks until a leader answers: follows not_leader, waits out unknown_leader."""
    until = time.time() + deadline
    while time.time() < until:
        conn = Connection(pb, address, tls)
        answer = conn.ask(fill)
        if answer.WhichOneof("body") != "error":
            return answer
        err = answer.error
        if err.code == 1 and err.leader_address:  # not_leader: ask the leader it names
            address = err.leader_address
        elif err.code != 2:  # anything but unknown_leader is final
            raise RuntimeError("error %d: %s" % (err.code, err.detail))
        time.sleep(0.1)
    raise RuntimeError("no leader answered")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protos", required=True, help="the directory of raft.proto and wire.proto")
    p.add_argument("--cert"), p.add_argument("--key", dest="keyfile"), p.add_argument("--ca")
    p.add_argument("address"), p.add_argument("key"), p.add_argument("value")
    a = p.parse_args()
    pb = compile_protos(a.protos)
    tls = a if a.cert else None

    def put(f):
        f.put.key, f.put.value = a.key.encode(), a.value.encode()

    def get(f):
        f.get.key = a.key.encode()

    wrote = ask_leader(pb, a.address, tls, put)
    read = ask_leader(pb, a.address, tls, get)
    print("wrote %s at index %d; read %r" % (a.key, wrote.write_response.index,
                                             read.get_response.value.decode()))
    return 0 if read.get_response.value == a.value.encode() else 1


if __name__ == "__main__":
    sys.exit(main())
