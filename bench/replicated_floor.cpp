// cafraft-floor: the fastest replicated write this machine allows, with no framework.
//
// Four processes with one thread each, as close to the hardware as a replicated log gets:
// a client sends a value to a leader over TCP and waits for the answer; the leader sends it
// to two followers, writes it into its own log file and fdatasyncs, waits for the first
// follower's acknowledgement and answers; each follower writes, fdatasyncs and acknowledges.
// Blocking sockets with TCP_NODELAY, log files reserved with fallocate (as cafraft's WAL
// does), no serialization, no elections, no timers: what is left is the two round trips,
// the fdatasyncs and the wake-ups between them. This is the floor of W1 (docs/performance.md):
// a Raft runtime answering one client with one request in flight has at least this to do.
//
//   cafraft-floor [--writes N] [--warmup N] [--value-size B] [--dir DIR] [--memory] [--caf]
//
// --memory skips the fdatasyncs; --caf runs the same members as CAF actors over CAF's
// middleman (bench/replicated_floor_caf.cpp).
//
// Prints one line: key=value pairs (latency in microseconds, CPU of all four processes per
// write). Exit codes: 0 done, 1 usage, 2 a system call or a member failed.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "bench/floor.hpp"

namespace {

using namespace cafraft::floor;

void no_delay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    fail("setsockopt TCP_NODELAY");
}

/// A TCP socket and the address of `port` on 127.0.0.1 (0: one the kernel picks).
std::pair<int, sockaddr_in> loopback_socket(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return {fd, addr};
}

/// A socket listening on 127.0.0.1 at a port the kernel picks; returns it and the port.
std::pair<int, uint16_t> listen_loopback() {
  auto [fd, addr] = loopback_socket(0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0)
    fail("bind/listen");
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail("getsockname");
  return {fd, ntohs(addr.sin_port)};
}

int accept_one(int listener) {
  int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0)
    fail("accept");
  ::close(listener);
  no_delay(fd);
  return fd;
}

int connect_loopback(uint16_t port) {
  auto [fd, addr] = loopback_socket(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    fail("connect");
  no_delay(fd);
  return fd;
}

// A frame on every connection: a 4-byte length and that many bytes. The leader's frame to a
// follower starts with the 8-byte index; a follower answers with the index alone. Buffers keep
// the length in front of the bytes, so that a frame is one write and is never copied.
constexpr size_t length_bytes = sizeof(uint32_t);

/// Reads a frame's bytes into `buf` after `room` bytes left free in front; false at a close.
bool read_frame(int fd, std::vector<char>& buf, size_t room) {
  uint32_t len = 0;
  if (!read_all(fd, &len, sizeof len))
    return false;
  buf.resize(room + len);
  return read_all(fd, buf.data() + room, len);
}

/// Sends `buf` as one frame: its first length_bytes take the length of the rest.
void send_frame(int fd, std::vector<char>& buf) {
  auto len = static_cast<uint32_t>(buf.size() - length_bytes);
  std::memcpy(buf.data(), &len, sizeof len);
  write_all(fd, buf.data(), buf.size());
}

void run_follower(int listener, const std::string& path, bool memory) {
  int leader = accept_one(listener);
  log_file log(path, memory);
  std::vector<char> entry; // index, value
  while (read_frame(leader, entry, 0)) {
    log.append(entry.data(), entry.size());
    write_all(leader, entry.data(), sizeof(uint64_t)); // the index
  }
}

void run_leader(int listener, std::array<uint16_t, 2> followers, const std::string& path,
                bool memory) {
  int client = accept_one(listener);
  std::array<int, 2> peer{connect_loopback(followers[0]), connect_loopback(followers[1])};
  std::array<uint64_t, 2> acked{0, 0};
  log_file log(path, memory);
  std::vector<char> frame; // length, index, value: the client's value read in place
  for (uint64_t index = 1; read_frame(client, frame, length_bytes + sizeof index); ++index) {
    std::memcpy(frame.data() + length_bytes, &index, sizeof index);
    for (int fd : peer)
      send_frame(fd, frame);
    log.append(frame.data() + length_bytes, frame.size() - length_bytes);
    // Committed once one follower has it too (the leader's own write is durable already).
    while (std::max(acked[0], acked[1]) < index) {
      std::array<pollfd, 2> fds{pollfd{peer[0], POLLIN, 0}, pollfd{peer[1], POLLIN, 0}};
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
        fail("poll");
      for (size_t i = 0; i < fds.size(); ++i)
        if (fds[i].revents != 0 && !read_all(peer[i], &acked[i], sizeof acked[i]))
          fail_closed("follower");
    }
    write_all(client, &index, sizeof index);
  }
  // The client is done: close towards the followers and read what they still send (the slower
  // one's acknowledgements) until they close, so that no connection ends with a reset.
  for (int fd : peer) {
    ::shutdown(fd, SHUT_WR);
    uint64_t ignored = 0;
    while (read_all(fd, &ignored, sizeof ignored)) {
    }
  }
}

double cpu_seconds(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

void usage() {
  std::fprintf(stderr, "usage: cafraft-floor [--writes N] [--warmup N] [--value-size B] "
                       "[--dir DIR] [--memory] [--caf]\n");
}

} // namespace

namespace cafraft::floor {

result run_tcp(const options& opts) {
  auto [leader_listener, leader_port] = listen_loopback();
  std::array<int, 2> follower_listener{};
  std::array<uint16_t, 2> follower_port{};
  for (size_t i = 0; i < 2; ++i)
    std::tie(follower_listener[i], follower_port[i]) = listen_loopback();
  for (size_t i = 0; i < 2; ++i) {
    fork_member([&] {
      run_follower(follower_listener[i], opts.dir + "/follower" + std::to_string(i) + ".log",
                   opts.memory);
    });
    ::close(follower_listener[i]);
  }
  fork_member(
      [&] { run_leader(leader_listener, follower_port, opts.dir + "/leader.log", opts.memory); });
  ::close(leader_listener);

  int leader = connect_loopback(leader_port);
  std::vector<char> request(length_bytes + static_cast<size_t>(opts.value_size), 'v');
  result r;
  r.latency_us.reserve(static_cast<size_t>(opts.writes));
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  for (long i = 0; i < opts.warmup + opts.writes; ++i) {
    if (i == opts.warmup)
      start = clock::now();
    auto t0 = clock::now();
    send_frame(leader, request);
    uint64_t index = 0;
    if (!read_all(leader, &index, sizeof index))
      fail_closed("leader");
    if (i >= opts.warmup)
      r.latency_us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
  }
  r.seconds = std::chrono::duration<double>(clock::now() - start).count();
  ::close(leader); // the leader closes towards the followers; all three exit
  return r;
}

} // namespace cafraft::floor

int main(int argc, char** argv) {
  using namespace cafraft::floor;
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto number = [&](long& out) {
      char* end = nullptr;
      if (i + 1 >= argc || (out = std::strtol(argv[++i], &end, 10), *end != '\0') || out < 1) {
        std::fprintf(stderr, "cafraft-floor: %s needs a positive number\n", arg.c_str());
        std::exit(1);
      }
    };
    if (arg == "--writes")
      number(opts.writes);
    else if (arg == "--warmup")
      number(opts.warmup);
    else if (arg == "--value-size")
      number(opts.value_size);
    else if (arg == "--dir" && i + 1 < argc)
      opts.dir = argv[++i];
    else if (arg == "--memory")
      opts.memory = true;
    else if (arg == "--caf")
      opts.caf = true;
    else {
      usage();
      return arg == "-h" || arg == "--help" ? 0 : 1;
    }
  }
  if (opts.dir.empty()) {
    char tmpl[] = "/tmp/cafraft-floor-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      fail("mkdtemp");
    opts.dir = tmpl;
  }
  if (::access(opts.dir.c_str(), W_OK | X_OK) != 0)
    fail(opts.dir.c_str());
  // A member that fails ends its process; the others then see a closed connection, not a
  // signal.
  ::signal(SIGPIPE, SIG_IGN);

  auto r = opts.caf ? run_caf(opts) : run_tcp(opts);
  bool members_ok = reap_members();
  for (const char* name : {"/leader.log", "/follower0.log", "/follower1.log"})
    ::unlink((opts.dir + name).c_str());
  if (!members_ok) {
    std::fprintf(stderr, "cafraft-floor: a member process failed\n");
    return 2;
  }

  // CPU of all four processes over warmup and measured writes alike.
  double cpu = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
  auto& lat = r.latency_us;
  std::sort(lat.begin(), lat.end());
  auto at = [&](double q) {
    return lat[std::min(lat.size() - 1, static_cast<size_t>(q * lat.size()))];
  };
  std::printf("writes=%ld ops_per_s=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f "
              "cpu_us_per_write=%.0f fsync=%s transport=%s\n",
              opts.writes, static_cast<double>(opts.writes) / r.seconds, at(0.5), at(0.9), at(0.99),
              lat.back(), cpu * 1e6 / static_cast<double>(opts.warmup + opts.writes),
              opts.memory ? "off" : "on", opts.caf ? "caf" : "tcp");
  return 0;
}
