// Bytes an attacker or a buggy client could send, against live cafraft-node processes
// (ctest label process; docs/protocol.md). Every class of bad input goes to every node, in
// plaintext and inside TLS opened with a valid certificate of the cluster's CA: the bytes that
// crashed CAF's BASP parser, random bytes of many sizes, frames too long, truncated,
// undecodable, of unknown types, out of order in the handshake, Raft messages from a client
// or in another node's name, a node id the certificate does not name, a slow sender, 1,000
// idle connections. Throughout, every node stays up, the leader stays the leader, and writes
// are served; afterwards /metrics counts each fault.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "process_fixture.hpp"
#include "raw_wire.hpp"
#include <cafraft/messages/wire.pb.h>
#include <cafraft/runtime/wire.hpp>

namespace cafraft::test {
namespace {

/// One connection to a node: plain TCP, or TLS with a certificate of the cluster's CA.
class channel {
public:
  virtual ~channel() = default;
  /// False once the node closed it (or it could not be written).
  bool send(const std::string& bytes) {
    size_t at = 0;
    while (at < bytes.size()) {
      auto n = write_some(bytes.data() + at, bytes.size() - at);
      if (n <= 0)
        return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }

protected:
  virtual long write_some(const char* data, size_t n) = 0;
};

class plain_channel : public channel {
public:
  explicit plain_channel(int fd) : fd_(fd) {}
  ~plain_channel() override { ::close(fd_); }

protected:
  long write_some(const char* data, size_t n) override {
    return ::send(fd_, data, n, MSG_NOSIGNAL);
  }

private:
  int fd_;
};

class tls_channel : public channel {
public:
  tls_channel(SSL_CTX* ctx, int fd) : fd_(fd), ssl_(SSL_new(ctx)) {
    SSL_set_fd(ssl_, fd_);
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~tls_channel() override {
    SSL_free(ssl_);
    ::close(fd_);
  }
  bool ok() const { return ok_; }

protected:
  long write_some(const char* data, size_t n) override {
    return ok_ ? SSL_write(ssl_, data, static_cast<int>(n)) : -1;
  }

private:
  int fd_;
  SSL* ssl_;
  bool ok_ = false;
};

std::string length(uint32_t n) {
  return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
          static_cast<char>(n)};
}

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng());
  return out;
}

bool alive(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

class WireAttack : public ProcessCluster, public ::testing::WithParamInterface<bool> {
protected:
  bool tls() const { return GetParam(); }

  void SetUp() override {
    ProcessCluster::SetUp();
    // A node may close a connection while this test still writes to it: over TLS, OpenSSL's
    // write() would raise SIGPIPE in this process.
    std::signal(SIGPIPE, SIG_IGN);
    // 1,000 connections and then some: raise this process's descriptor limit.
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4096);
    ::setrlimit(RLIMIT_NOFILE, &lim);
    if (tls()) {
      make_ca();
      for (auto n : {"n1", "n2", "n3", "client"})
        make_cert(n);
      ctx_ = SSL_CTX_new(TLS_client_method());
      ASSERT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, (dir + "/client.pem").c_str()), 1);
      ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, (dir + "/client.key").c_str(), SSL_FILETYPE_PEM),
                1);
      ASSERT_EQ(SSL_CTX_load_verify_locations(ctx_, (dir + "/ca.pem").c_str(), nullptr), 1);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    auto initial = initial_cluster(ids);
    for (auto& id : ids) {
      admin[id] = free_port();
      std::vector<std::string> extra{"--initial-cluster", initial, "--admin",
                                     "127.0.0.1:" + std::to_string(admin[id])};
      auto t = tls() ? files(id) : std::vector<std::string>{"--insecure"};
      extra.insert(extra.end(), t.begin(), t.end());
      start_node(id, extra);
    }
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = put("k0", "v0");
      if (!up)
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(up) << "the cluster took no write: see " << dir;
    first_leader = leader_now();
    ASSERT_FALSE(first_leader.empty());
  }

  void TearDown() override {
    if (ctx_ != nullptr)
      SSL_CTX_free(ctx_);
    ProcessCluster::TearDown();
  }

  void make_ca() {
    auto cmd = "cd " + dir +
               " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout "
               "ca.key -out ca.pem >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  void make_cert(const std::string& name) {
    auto cmd = "cd " + dir + " && openssl req -newkey rsa:2048 -nodes -subj /CN=" + name +
               " -keyout " + name + ".key -out " + name + ".csr >/dev/null 2>&1 && openssl x509 " +
               "-req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out " +
               name + ".pem >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::vector<std::string> files(const std::string& name) {
    return {"--tls-cert", dir + "/" + name + ".pem",
            "--tls-key",  dir + "/" + name + ".key",
            "--tls-ca",   dir + "/ca.pem"};
  }

  bool put(const std::string& k, const std::string& v) {
    return ctl(ids, {"--timeout-ms", "3000", "put", k, v},
               tls() ? files("client") : std::vector<std::string>{})
               .code == 0;
  }

  /// The leader's id, as cafraftctl reports it.
  std::string leader_now() {
    auto r = ctl(ids, {"leader"}, tls() ? files("client") : std::vector<std::string>{});
    return r.code == 0 ? r.out.substr(0, r.out.find(' ')) : std::string{};
  }

  /// A new connection to `id` (TLS: its handshake done), or null.
  std::unique_ptr<channel> open(const std::string& id) {
    int fd = tcp_connect(ports[id]);
    if (fd < 0)
      return nullptr;
    if (!tls())
      return std::make_unique<plain_channel>(fd);
    auto c = std::make_unique<tls_channel>(ctx_, fd);
    if (!c->ok())
      return nullptr;
    return c;
  }

  /// Sends `bytes` to every node on a connection of its own, and closes it.
  void to_every_node(const std::string& bytes) {
    for (auto& id : ids)
      if (auto c = open(id))
        c->send(bytes);
    ++attacks;
  }

  /// Every node is up, the first leader still leads, and a write is served.
  void expect_healthy(const std::string& after) {
    for (auto& id : ids)
      ASSERT_TRUE(alive(pids[id])) << id << " died after " << after << ": see " << dir;
    EXPECT_TRUE(put("k-" + std::to_string(attacks), "v")) << "no write after " << after;
    EXPECT_EQ(leader_now(), first_leader) << "the leader changed after " << after;
  }

  /// The value of a wire counter in `id`'s /metrics, summed over its labels matching `label`.
  uint64_t metric(const std::string& id, const std::string& name, const std::string& label = "") {
    auto r = [&] {
      if (!tls())
        return httplib::Client{"127.0.0.1", admin[id]}.Get("/metrics");
      // With TLS the admin endpoints are HTTPS, for client certificates of the cluster's CA.
      httplib::SSLClient https{"127.0.0.1", admin[id], dir + "/client.pem", dir + "/client.key"};
      https.enable_server_certificate_verification(false);
      return https.Get("/metrics");
    }();
    if (!r)
      return 0;
    std::istringstream in{r->body};
    std::string line;
    uint64_t sum = 0;
    while (std::getline(in, line))
      if (line.rfind(name + "{", 0) == 0 && line.find(label) != std::string::npos)
        sum += std::stoull(line.substr(line.rfind(' ') + 1));
    return sum;
  }
  uint64_t closed(const std::string& reason) {
    uint64_t sum = 0;
    for (auto& id : ids)
      sum += metric(id, "cafraft_wire_connections_closed_total", "reason=\"" + reason + "\"");
    return sum;
  }

  std::vector<std::string> ids{"n1", "n2", "n3"};
  std::map<std::string, uint16_t> admin;
  std::string first_leader;
  SSL_CTX* ctx_ = nullptr;
  int attacks = 0;
};

TEST_P(WireAttack, NoBytesOnTheWireTakeANodeDownOrItsLeaderAway) {
  std::mt19937_64 rng{20261205};
  // The 76 bytes that crashed CAF 0.17's BASP parser: 8 zero bytes, 0x80000000, 64 random.
  for (int i = 0; i < 5; ++i)
    to_every_node(std::string(8, '\0') + length(0x80000000u) + random_bytes(rng, 64));
  expect_healthy("the BASP payload");
  // Random bytes of many sizes.
  for (size_t n : {1, 2, 3, 4, 5, 8, 13, 64, 100, 1000, 4095, 4096, 4100, 65536, 1 << 20})
    to_every_node(random_bytes(rng, n));
  expect_healthy("random bytes");
  // Frames too long, before and after the handshake.
  to_every_node(length(0xffffffffu) + random_bytes(rng, 100));
  to_every_node(hello("") + length(64u << 20) + random_bytes(rng, 100));
  // A frame cut short, then the connection closes.
  to_every_node(length(100) + random_bytes(rng, 50));
  to_every_node(hello("") + length(1000) + random_bytes(rng, 10));
  // Bytes that are no Frame.
  to_every_node(length(2) + std::string{0x1a, 0x05});
  to_every_node(hello("") + length(2) + std::string{0x1a, 0x7f});
  // A body of a type this version does not know (field 999), before and after the handshake.
  auto unknown = length(3) + std::string{static_cast<char>(0xb8), 0x3e, 0x01};
  to_every_node(unknown);
  to_every_node(hello("") + unknown);
  // The handshake out of order: a Ping first, a Welcome first, a second Hello.
  pb::Frame ping;
  ping.mutable_ping();
  to_every_node(frame_bytes(ping));
  pb::Frame welcome;
  welcome.mutable_welcome()->set_version(1);
  to_every_node(frame_bytes(welcome));
  to_every_node(hello("") + hello(""));
  // Not our protocol at all: another magic, an HTTP request.
  pb::Frame other;
  other.mutable_hello()->set_magic("basp");
  to_every_node(frame_bytes(other));
  to_every_node("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  // A client that sends a Raft message: a leader of a far later term.
  pb::Frame ae;
  ae.mutable_append_entries()->set_term(1000000);
  ae.mutable_append_entries()->set_leader_id("n9");
  pb::Frame vote;
  vote.mutable_request_vote()->set_term(1000000);
  vote.mutable_request_vote()->set_candidate_id("n9");
  to_every_node(hello("") + frame_bytes(ae));
  to_every_node(hello("") + frame_bytes(vote));
  // A node that speaks in another node's name: n3's handshake, then an AppendEntries as n1,
  // the leader of a far later term (with TLS the handshake itself is refused: the client's
  // certificate does not name n3).
  pb::Frame ae_as_other;
  ae_as_other.mutable_append_entries()->set_term(1000000);
  ae_as_other.mutable_append_entries()->set_leader_id("n1");
  to_every_node(hello("n3") + frame_bytes(ae_as_other));
  // An answer nobody waits for, an error with a code nobody knows.
  pb::Frame stray;
  stray.set_id(77);
  stray.set_answer(true);
  stray.mutable_error()->set_code(250);
  to_every_node(hello("") + frame_bytes(stray));
  // Random frames after a valid handshake: random bodies behind valid lengths.
  for (int i = 0; i < 50; ++i) {
    auto body = random_bytes(rng, 1 + rng() % 300);
    to_every_node(hello("") + length(static_cast<uint32_t>(body.size())) + body);
  }
  expect_healthy("malformed frames");
  if (tls()) {
    // A certificate of the cluster's CA that does not name n2 cannot claim to be n2.
    to_every_node(hello("n2") + frame_bytes(ae));
    expect_healthy("a client claiming a node's id");
    EXPECT_GE(closed("refused"), 3u);
  }
  // A client's certificate acting as a peer, in its own name ("client", the name it holds):
  // the leader of a far later term, and a candidate of one. No member knows that id: its
  // Raft messages are dropped (and logged), or every follower would take it as its leader.
  {
    pb::Frame ae_client, vote_client;
    ae_client.mutable_append_entries()->set_term(2000000);
    ae_client.mutable_append_entries()->set_leader_id("client");
    vote_client.mutable_request_vote()->set_term(2000000);
    vote_client.mutable_request_vote()->set_candidate_id("client");
    for (auto& id : ids) {
      auto c = open(id);
      ASSERT_TRUE(c);
      c->send(hello("client") + frame_bytes(ae_client) + frame_bytes(vote_client));
      std::this_thread::sleep_for(100ms);
    }
    expect_healthy("a client's certificate acting as a peer");
    std::ifstream in{dir + "/" + first_leader + ".log"};
    std::stringstream log;
    log << in.rdbuf();
    EXPECT_NE(log.str().find("drops the Raft messages of client"), std::string::npos)
        << "not logged: see " << dir;
  }
  // A slow sender: a frame's bytes one at a time, while writes go on.
  {
    auto slow = open(first_leader);
    ASSERT_TRUE(slow);
    ASSERT_TRUE(slow->send(hello("") + length(1000)));
    for (int i = 0; i < 20; ++i) {
      slow->send(std::string(1, 'x'));
      std::this_thread::sleep_for(50ms);
    }
    expect_healthy("a slow sender");
  }
  // 1,000 idle connections to the leader: the listener holds at most 256 from one address,
  // closing the oldest that has not finished its handshake for each new one; those left are
  // closed when their handshake times out. A client that connects then still gets in.
  {
    std::vector<int> idle;
    for (int i = 0; i < 1000; ++i) {
      int fd = tcp_connect(ports[first_leader]);
      if (fd >= 0)
        idle.push_back(fd);
    }
    EXPECT_GE(idle.size(), 900u);
    expect_healthy("1,000 idle connections");
    EXPECT_GT(metric(first_leader, "cafraft_wire_connections_closed_total",
                     "reason=\"too_many_connections\""),
              0u);
    bool timed_out = false;
    for (int i = 0; i < 100 && !timed_out; ++i) {
      timed_out = metric(first_leader, "cafraft_wire_connections_closed_total",
                         "reason=\"handshake_timeout\"") >= 200;
      if (!timed_out)
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(timed_out) << "idle connections were not closed";
    for (int fd : idle)
      ::close(fd);
    expect_healthy("1,000 idle connections closed");
  }
  // Each class was counted, and logged.
  for (auto reason :
       {"frame_too_long", "undecodable", "unknown_type", "out_of_order", "refused", "not_allowed"})
    EXPECT_GE(closed(reason), 3u) << reason;
  std::ifstream in{dir + "/" + first_leader + ".log"};
  std::stringstream log;
  log << in.rdbuf();
  EXPECT_NE(log.str().find("closed the connection with"), std::string::npos);
  if (tls()) {
    // Bytes outside TLS to a node that wants TLS end in the TLS layer.
    for (auto& id : ids) {
      int fd = tcp_connect(ports[id]);
      ASSERT_GE(fd, 0);
      plain_channel raw{fd};
      raw.send(std::string(8, '\0') + length(0x80000000u) + random_bytes(rng, 64));
    }
    bool counted = false;
    for (int i = 0; i < 50 && !counted; ++i) {
      counted = closed("tls") >= 3;
      if (!counted)
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(counted);
    expect_healthy("plaintext to a TLS node");
  }
}

INSTANTIATE_TEST_SUITE_P(, WireAttack, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "MutualTls" : "Plaintext"; });

} // namespace
} // namespace cafraft::test
