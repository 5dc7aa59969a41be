// Raw bytes of cafraft's protocol for the process tests that play a misbehaving peer
// (docs/protocol.md): a plain TCP connection to a node on 127.0.0.1, frames, a Hello.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <cafraft/messages/wire.pb.h>
#include <cafraft/runtime/wire.hpp>

namespace cafraft::test {

/// A blocking TCP connection to 127.0.0.1:port (-1 when refused).
inline int tcp_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

/// `f` as it goes on the wire: its length, then its bytes.
inline std::string frame_bytes(const pb::Frame& f) {
  std::vector<char> out;
  wire::append_frame(f, out);
  return {out.begin(), out.end()};
}

/// The Hello of a client (`node_id` empty) or of a node.
inline std::string hello(const std::string& node_id) {
  pb::Frame f;
  auto* h = f.mutable_hello();
  h->set_magic(wire::magic);
  h->set_min_version(wire::min_version);
  h->set_max_version(wire::max_version);
  h->set_node_id(node_id);
  return frame_bytes(f);
}

} // namespace cafraft::test
