// A cafraft cluster spread over two actor systems in one process, talking cafraft's protocol
// over real sockets on 127.0.0.1 (actors/connection.hpp). Real time, so every wait here is
// bounded.
//
// Addresses: a member's address is the "127.0.0.1:<port>" its node is served on, so a
// not_leader redirect names a port that really reaches the leader. The port must be in the
// node_config before spawn_node, but serve_node() only runs after it, so each port is reserved
// first: a socket with SO_REUSEADDR is bound to 127.0.0.1:0 (the kernel picks a free port)
// and is held, never listening, until the node is served on that port (its listener sets
// reuse_addr); then it is closed. No other process can take the port in between.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "realtime.hpp"
#include <cafraft/actors/client.hpp>
#include <cafraft/actors/connection.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/actors/peer.hpp>
#include <cafraft/actors/remote_client.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/storage.hpp>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr const char* logger_name = "remote-test";

// Every wait in this file is bounded by one of these.
constexpr auto leader_budget = 5s;
constexpr auto catch_up_budget = 3s;
constexpr auto shutdown_budget = 3s;

using remote_config = cafraft::test::network_test_config;

// A free TCP port on 127.0.0.1, held until release() (see the comment at the top).
class port_reservation {
public:
  port_reservation() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0)
      return;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    if (::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      release();
      return;
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      release();
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  port_reservation(const port_reservation&) = delete;
  port_reservation& operator=(const port_reservation&) = delete;
  ~port_reservation() { release(); }

  uint16_t port() const { return port_; }
  void release() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

long ms_since(steady::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count());
}

using cafraft::test::eventually;

// A dialer of `address` on `sys` (actors/peer.hpp), once it is connected; null after 5 s.
caf::actor dial(caf::actor_system& sys, const std::string& address) {
  cafraft::dial_options o;
  o.address = address;
  auto d = cafraft::spawn_dialer(sys, o, cafraft::get_logger(logger_name));
  caf::scoped_actor self{sys};
  bool connected = false;
  eventually(5s, [&] {
    self->request(d, 1s, cafraft::peer_stats_atom::value)
        .receive([&](uint64_t, uint64_t, bool c) { connected = c; }, [](caf::error&) {});
    return connected;
  });
  if (!connected) {
    caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
    return {};
  }
  return d;
}

class RemoteCluster : public ::testing::Test {
protected:
  struct placed {
    std::string id;
    caf::actor_system* sys;
    uint64_t seed; // node_config::seed: fixes the node's election timeouts
  };
  using placement = std::vector<placed>;

  remote_config cfg_a;
  remote_config cfg_b;
  caf::actor_system sys_a{cfg_a};
  caf::actor_system sys_b{cfg_b};

  std::vector<cafraft::member> members;
  std::map<std::string, caf::actor_system*> home; // id -> the system the node lives on
  std::map<std::string, caf::actor> nodes;        // id -> node handle on its own system
  std::map<std::string, std::string> addresses;   // id -> "127.0.0.1:<port>"
  std::map<std::string, uint16_t> ports;          // id -> served port
  // For each system: id -> a handle usable there (the node itself, or a dialer of it).
  std::map<const caf::actor_system*, std::map<std::string, caf::actor>> views;
  std::vector<caf::actor> dialers;
  // The nodes find_leader() asks (set by each test; a stopped node is removed).
  std::map<std::string, caf::actor> candidates;

  static void SetUpTestSuite() { cafraft::get_logger(logger_name)->set_level(spdlog::level::warn); }

  const char* name_of(const caf::actor_system* sys) const { return sys == &sys_a ? "A" : "B"; }

  // Spawns one node per entry of `where` on the given system, serves each on its own port
  // (its peers dial each other's addresses) and dials, from every system, every node living
  // elsewhere.
  void start(const placement& where) {
    std::map<std::string, std::unique_ptr<port_reservation>> reserved;
    for (auto& [id, sys, seed] : where) {
      auto r = std::make_unique<port_reservation>();
      ASSERT_NE(r->port(), 0) << "cannot reserve a port for " << id;
      addresses[id] = "127.0.0.1:" + std::to_string(r->port());
      members.push_back({id, addresses[id]});
      home[id] = sys;
      reserved[id] = std::move(r);
    }
    for (auto& [id, sys, seed] : where) {
      cafraft::node_config nc;
      nc.id = id;
      nc.members = members;
      nc.seed = seed;
      nc.logger_name = logger_name;
      nc.dial_peers = true;
      nc.storage = std::make_shared<cafraft::memory_storage>(); // this test is about the network
      auto n = cafraft::spawn_node(*sys, nc);
      ASSERT_TRUE(n) << "spawn_node(" << id << "): " << cafraft::render(n.error());
      nodes[id] = *n;
    }
    for (auto& [id, sys, seed] : where) {
      auto want = reserved[id]->port();
      cafraft::node_config nc;
      nc.id = id;
      auto p = cafraft::serve_node(*sys, nodes[id], nc, addresses[id]);
      reserved[id]->release();
      ASSERT_TRUE(p) << "serve_node(" << id << ", " << want << "): " << cafraft::render(p.error());
      ASSERT_EQ(p->second, want);
      ports[id] = p->second;
    }
    // Handles: local where the node lives on the same system, a dialer over the network else.
    for (caf::actor_system* sys : {&sys_a, &sys_b}) {
      auto& view = views[sys];
      for (auto& [id, node_sys, seed] : where) {
        if (node_sys == sys) {
          view[id] = nodes[id];
          continue;
        }
        auto d = dial(*sys, addresses[id]);
        ASSERT_TRUE(d) << "cannot dial " << id << " from system " << name_of(sys);
        view[id] = d;
        dialers.push_back(d);
      }
    }
  }

  // The id of a node that reports itself leader (the highest term if several do), or "".
  std::string find_leader(cafraft::client& c, std::chrono::milliseconds budget,
                          uint64_t* term_out = nullptr) {
    std::string leader;
    uint64_t term = 0;
    eventually(budget, [&] {
      for (auto& [id, ignored] : candidates)
        if (auto st = c.status(id); st && st->role() == "leader" && st->term() >= term) {
          leader = id;
          term = st->term();
        }
      return !leader.empty();
    });
    if (term_out != nullptr)
      *term_out = term;
    return leader;
  }

  // Waits until node `id` has applied `index`.
  bool applied(cafraft::client& c, const std::string& id, uint64_t index) {
    return eventually(catch_up_budget, [&] {
      auto st = c.status(id);
      return st && st->applied_index() >= index;
    });
  }

  // Stops every node that is still running and waits (bounded) until each is down.
  void stop_all() {
    for (auto* sys : {&sys_a, &sys_b}) {
      caf::scoped_actor self{*sys};
      size_t pending = 0;
      for (auto& [id, node] : nodes)
        if (home[id] == sys && node) {
          self->monitor(node);
          self->send_exit(node, caf::exit_reason::user_shutdown);
          ++pending;
        }
      bool timed_out = false;
      for (size_t i = 0; i < pending && !timed_out; ++i)
        self->receive([](const caf::down_msg&) {},
                      caf::after(std::chrono::milliseconds{shutdown_budget}) >>
                          [&] { timed_out = true; });
      EXPECT_FALSE(timed_out) << "a node on system " << name_of(sys) << " did not stop";
    }
  }

  void TearDown() override {
    stop_all();
    // Drop every handle and dialer before the systems go away.
    for (auto& d : dialers)
      caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
    dialers.clear();
    candidates.clear();
    views.clear();
    nodes.clear();
  }
};

// (a) n1, n2 on system A, n3 on system B; the client runs on B and reaches n1 and n2 through
// the network. A leader is elected, a write commits, a linearizable read returns it, and n3
// applies the same index.
TEST_F(RemoteCluster, ElectsCommitsAndReadsAcrossSystems) {
  auto t0 = steady::now();
  // Seeds 1, 2, 3 give first election timeouts of 169, 253 and 250 ms: n1 (system A) usually
  // leads, so the client on B writes through the network. Any leader is accepted.
  ASSERT_NO_FATAL_FAILURE(start({{"n1", &sys_a, 1}, {"n2", &sys_a, 2}, {"n3", &sys_b, 3}}));
  candidates = views[&sys_b];
  cafraft::client c{sys_b, views[&sys_b]};
  uint64_t term = 0;
  auto leader = find_leader(c, leader_budget, &term);
  ASSERT_FALSE(leader.empty()) << "no leader within " << leader_budget.count() << " s";
  std::printf("[remote] %s (system %s) leads term %llu after %ld ms\n", leader.c_str(),
              name_of(home[leader]), static_cast<unsigned long long>(term), ms_since(t0));

  auto w = c.put("color", "blue");
  ASSERT_TRUE(w) << cafraft::render(w.error());
  EXPECT_GT(w->index(), 0u);
  auto r = c.get("color");
  ASSERT_TRUE(r) << cafraft::render(r.error());
  EXPECT_TRUE(r->found());
  EXPECT_EQ(r->value(), "blue");

  for (auto& id : {"n1", "n2", "n3"})
    EXPECT_TRUE(applied(c, id, w->index())) << id << " did not apply index " << w->index();
  auto st3 = c.status("n3");
  ASSERT_TRUE(st3) << cafraft::render(st3.error());
  EXPECT_GE(st3->commit_index(), w->index());
  // n3 learned the data through the network: a stale read served by n3 itself.
  auto local = c.get("color", true, "n3");
  ASSERT_TRUE(local) << cafraft::render(local.error());
  EXPECT_TRUE(local->found());
  EXPECT_EQ(local->value(), "blue");
  // A query in the state machine's own format travels the same way, linearizable through the
  // leader and stale from n3 (the KV store's format: a pb::KvQuery, answered with an encoded
  // pb::GetResponse).
  cafraft::pb::KvQuery kq;
  kq.set_key("color");
  auto q = c.query_as<cafraft::pb::GetResponse>(kq);
  ASSERT_TRUE(q) << cafraft::render(q.error());
  EXPECT_EQ(q->value(), "blue");
  auto qs = c.query_as<cafraft::pb::GetResponse>(kq, true, "n1");
  ASSERT_TRUE(qs) << cafraft::render(qs.error());
  EXPECT_EQ(qs->value(), "blue");
}

// (b) A follower asked over the network answers not_leader, naming the leader's id and the
// address it is published on.
TEST_F(RemoteCluster, FollowerRedirectsOverTheNetworkWithLeaderAddress) {
  // Seeds 1, 2, 3 give first election timeouts of 169, 253 and 250 ms: n1 (system A) usually
  // leads, so the client on B writes through the network. Any leader is accepted.
  ASSERT_NO_FATAL_FAILURE(start({{"n1", &sys_a, 1}, {"n2", &sys_a, 2}, {"n3", &sys_b, 3}}));
  candidates = views[&sys_b];
  cafraft::client c{sys_b, views[&sys_b]};
  auto leader = find_leader(c, leader_budget);
  ASSERT_FALSE(leader.empty()) << "no leader within " << leader_budget.count() << " s";
  auto w = c.put("k", "v"); // afterwards every follower has heard from the leader
  ASSERT_TRUE(w) << cafraft::render(w.error());
  for (auto& [id, ignored] : nodes)
    EXPECT_TRUE(eventually(catch_up_budget,
                           [&, id = id] {
                             auto st = c.status(id);
                             return st && st->leader_id() == leader &&
                                    st->applied_index() >= w->index();
                           }))
        << id << " does not know leader " << leader;

  // Ask every follower from the *other* system, so that request and error cross the network.
  int asked = 0;
  for (auto& [id, sys] : home) {
    if (id == leader)
      continue;
    auto* other = sys == &sys_a ? &sys_b : &sys_a;
    auto handle = views[other][id];
    ASSERT_NE(handle, nodes[id]) << "expected a dialer for " << id;
    caf::scoped_actor self{*other};
    {
      cafraft::pb::PutRequest put;
      put.set_key("k");
      put.set_value("through a follower");
      caf::error err;
      bool answered_ok = false;
      self->request(handle, 2s, put)
          .receive([&](const cafraft::pb::WriteResponse&) { answered_ok = true; },
                   [&](caf::error& e) { err = std::move(e); });
      EXPECT_FALSE(answered_ok) << "follower " << id << " accepted a write";
      EXPECT_EQ(err, cafraft::make_error(cafraft::errc::not_leader))
          << id << ": " << cafraft::render(err);
      std::string hint_id, hint_address;
      ASSERT_TRUE(cafraft::leader_hint(err, hint_id, hint_address))
          << id << ": no leader hint in " << cafraft::render(err);
      EXPECT_EQ(hint_id, leader);
      EXPECT_EQ(hint_address, addresses[leader]);
      EXPECT_EQ(hint_address, "127.0.0.1:" + std::to_string(ports[leader]));
      std::printf("[remote] %s (system %s) asked from system %s: %s\n", id.c_str(), name_of(sys),
                  name_of(other), cafraft::render(err).c_str());
    }
    {
      cafraft::pb::GetRequest get; // linearizable: only the leader serves it
      get.set_key("k");
      caf::error err;
      self->request(handle, 2s, get)
          .receive([](const cafraft::pb::GetResponse&) {},
                   [&](caf::error& e) { err = std::move(e); });
      std::string hint_id, hint_address;
      ASSERT_TRUE(cafraft::leader_hint(err, hint_id, hint_address))
          << id << ": " << cafraft::render(err);
      EXPECT_EQ(hint_id, leader);
      EXPECT_EQ(hint_address, addresses[leader]);
    }
    ++asked;
  }
  EXPECT_EQ(asked, 2);
  // The address in the redirect really reaches the leader: connect to it from the other system.
  auto& other = home[leader] == &sys_a ? sys_b : sys_a;
  auto via_address = dial(other, addresses[leader]);
  ASSERT_TRUE(via_address) << "cannot dial " << addresses[leader];
  dialers.push_back(via_address);
  caf::scoped_actor self{other};
  bool is_leader = false;
  self->request(via_address, 2s, cafraft::status_atom::value)
      .receive(
          [&](const cafraft::pb::NodeStatus& st) {
            is_leader = st.id() == leader && st.role() == "leader";
          },
          [&](caf::error& e) { ADD_FAILURE() << cafraft::render(e); });
  EXPECT_TRUE(is_leader) << "nothing at " << addresses[leader] << " says it leads";
}

// (c) n1 on system A, n2 and n3 on system B. With n2 stopped, any commit needs both n1 and n3,
// i.e. votes and acknowledgements across the network.
TEST_F(RemoteCluster, CommitNeedsTheOtherSystemWhenOneNodeIsDown) {
  // Seeds 2, 4, 3 give first election timeouts of 253, 167 and 250 ms: n2 usually leads, so
  // stopping it usually forces a new election between n1 and n3 as well. Any leader is accepted.
  ASSERT_NO_FATAL_FAILURE(start({{"n1", &sys_a, 2}, {"n2", &sys_b, 4}, {"n3", &sys_b, 3}}));
  candidates = views[&sys_a];
  cafraft::client c{sys_a, views[&sys_a]};
  uint64_t term = 0;
  auto leader = find_leader(c, leader_budget, &term);
  ASSERT_FALSE(leader.empty()) << "no leader within " << leader_budget.count() << " s";
  auto first = c.put("before", "three nodes");
  ASSERT_TRUE(first) << cafraft::render(first.error());

  // Stop n2 and wait until it is gone.
  {
    caf::scoped_actor self{sys_b};
    self->monitor(nodes["n2"]);
    self->send_exit(nodes["n2"], caf::exit_reason::user_shutdown);
    bool down = false;
    self->receive([&](const caf::down_msg&) { down = true; }, caf::after(2s) >> [] {});
    ASSERT_TRUE(down) << "n2 did not stop";
  }
  c.forget("n2");
  candidates.erase("n2");
  auto t_stop = steady::now();

  // Whoever leads now (n1 or n3; a new election if n2 led) commits only with the other one's
  // vote and acknowledgement, which cross between system A and system B.
  auto w = c.put("after", "two nodes on two systems");
  ASSERT_TRUE(w) << cafraft::render(w.error());
  EXPECT_GT(w->index(), first->index());
  uint64_t new_term = 0;
  auto new_leader = find_leader(c, leader_budget, &new_term);
  ASSERT_TRUE(new_leader == "n1" || new_leader == "n3") << "leader: '" << new_leader << "'";
  std::printf("[remote] before: %s led term %llu; n2 stopped; %s leads term %llu, write "
              "committed at index %llu after %ld ms\n",
              leader.c_str(), static_cast<unsigned long long>(term), new_leader.c_str(),
              static_cast<unsigned long long>(new_term),
              static_cast<unsigned long long>(w->index()), ms_since(t_stop));
  if (leader == "n2") {
    EXPECT_GT(new_term, term); // a new election, with votes across the systems
  }

  auto r = c.get("after");
  ASSERT_TRUE(r) << cafraft::render(r.error());
  EXPECT_TRUE(r->found());
  EXPECT_EQ(r->value(), "two nodes on two systems");
  for (auto& id : {"n1", "n3"})
    EXPECT_TRUE(applied(c, id, w->index())) << id << " did not apply index " << w->index();
  // Both remaining nodes hold both writes.
  for (auto& id : {"n1", "n3"})
    for (auto& key : {"before", "after"}) {
      auto s = c.get(key, true, id);
      ASSERT_TRUE(s) << id << "/" << key << ": " << cafraft::render(s.error());
      EXPECT_TRUE(s->found()) << id << " lacks " << key;
    }
}

// A request on its way over a connection that breaks fails at once with connection_lost, not
// at its timeout: the dialer (actors/peer.hpp) hears of the break and tells the waiting
// request (actors/ask.hpp). Here the far side is an actor that takes requests and never
// answers, and it goes away with one request pending.
struct black_hole_state {
  std::vector<caf::response_promise> held;
  std::shared_ptr<std::atomic<int>> taken;
};

caf::behavior black_hole(caf::stateful_actor<black_hole_state>* self,
                         std::shared_ptr<std::atomic<int>> taken) {
  self->state.taken = std::move(taken);
  return {[self](const cafraft::pb::PutRequest&) {
    self->state.held.push_back(self->make_response_promise());
    ++*self->state.taken;
    return self->state.held.back();
  }};
}

// (d) A connection in n2's name that reaches n3 late and then closes (one n2 had given up on
// during a partition, come through after the heal) must not cut n2 and n3 apart: n3 closes
// n2's older connection when the newer one announces itself, so n2 dials again. Before, n3's
// peer was left with no connection while n2 kept its older one and never dialed: with two
// voters, nothing committed again (found by a nemesis run).
TEST_F(RemoteCluster, ALateConnectionInAMembersNameDoesNotCutItOff) {
  ASSERT_NO_FATAL_FAILURE(start({{"n2", &sys_a, 2}, {"n3", &sys_b, 3}}));
  candidates = views[&sys_b];
  cafraft::client c{sys_b, views[&sys_b]};
  ASSERT_FALSE(find_leader(c, leader_budget).empty());
  auto before = c.put("k", "before");
  ASSERT_TRUE(before) << cafraft::render(before.error());
  // The late connection: n2's identity, dialed from n2's system, closed once n3 took it.
  caf::scoped_actor owner{sys_a};
  cafraft::connection_options opts;
  opts.self.node_id = "n2";
  opts.self.expect_node_id = "n3";
  opts.log = cafraft::get_logger(logger_name);
  auto late = cafraft::dial_connection(sys_a, "127.0.0.1", ports["n3"], opts,
                                       caf::actor_cast<caf::actor>(owner));
  ASSERT_TRUE(late) << cafraft::render(late.error());
  bool up = false;
  owner->receive([&](cafraft::wire_up_atom, const std::string& id) { up = id == "n3"; },
                 caf::after(std::chrono::seconds{3}) >> [] {});
  ASSERT_TRUE(up) << "the late connection was not taken";
  owner->send_exit(*late, caf::exit_reason::user_shutdown);
  // n2 and n3 reach each other again: a write needs both.
  bool committed = eventually(5s, [&] { return static_cast<bool>(c.put("k", "after")); });
  EXPECT_TRUE(committed) << "n2 and n3 stay cut apart after a late connection closed";
  for (auto& id : {"n2", "n3"})
    EXPECT_TRUE(eventually(catch_up_budget, [&] {
      auto r = c.get("k", true, id);
      return r && r->value() == "after";
    })) << id;
}

TEST(RemoteDialer, ARequestOverABrokenConnectionFailsAtOnce) {
  remote_config cfg_a, cfg_b;
  caf::actor_system sys_a{cfg_a}, sys_b{cfg_b};
  auto taken = std::make_shared<std::atomic<int>>(0);
  auto hole = sys_b.spawn(black_hole, taken);
  cafraft::connection_options opts;
  opts.self.node_id = "hole";
  opts.node = hole;
  auto served = cafraft::listen(sys_b, "127.0.0.1", 0, opts);
  ASSERT_TRUE(served) << cafraft::render(served.error());
  auto address = "127.0.0.1:" + std::to_string(served->second);
  {
    cafraft::remote_client rc{sys_a, {address}};
    cafraft::pb::PutRequest req;
    req.set_key("k");
    req.set_value("v");
    auto t0 = steady::now();
    auto pending = std::async(std::launch::async, [&] {
      return rc.ask<cafraft::pb::WriteResponse>(address, req, std::chrono::milliseconds{10000});
    });
    ASSERT_TRUE(eventually(5s, [&] { return taken->load() == 1; })) << "the request never arrived";
    caf::anon_send_exit(hole, caf::exit_reason::kill);
    ASSERT_EQ(pending.wait_for(5s), std::future_status::ready) << "still waiting";
    auto r = pending.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), static_cast<uint8_t>(cafraft::errc::connection_lost))
        << cafraft::render(r.error());
    EXPECT_TRUE(cafraft::is_indefinite(r.error()));
    std::printf("[remote] a request over a broken connection failed after %ld ms\n", ms_since(t0));
  }
  hole = nullptr;
}

} // namespace
