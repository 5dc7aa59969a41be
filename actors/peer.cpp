#include <cafraft/actors/peer.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>

#include <caf/all.hpp>

#include <cafraft/actors/connection.hpp>
#include <cafraft/actors/guards.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/actors/pass_on.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft {

namespace {

struct peer_state {
  std::string local_id;
  std::string peer_id;
  std::shared_ptr<spdlog::logger> log;
  dial_options dial;
  caf::actor node;       // the local node (null for a dialer): the member's messages go there
  caf::actor remote;     // the connection (or, in-process, the member's node)
  caf::actor connecting; // the connection whose handshake is under way
  uint64_t sent = 0;
  uint64_t dropped = 0;
  std::chrono::milliseconds backoff{0};
  uint64_t dial_gen = 0;
  bool dialing = false;
  std::vector<caf::actor> watchers; // told when the connection breaks (connection_watch_atom)
  std::minstd_rand rng;             // jitter of redials: seeded only by a peer that dials
  static inline const char* name = "cafraft.peer";
};

/// The peer actor. While connected, the Raft messages a role sends through it go on to the
/// member as they are enqueued (actors/pass_on.hpp), sent as by this peer, as if it had
/// handled them, and so do clients' requests, as their requesters sent them; other requests
/// and everything while not connected are queued and handled.
class peer_actor : public inspected<peer_state> {
public:
  using super = inspected<peer_state>;
  using super::super;

  pass_on direct;                  // the member's node while connected
  std::atomic<uint64_t> passed{0}; // Raft messages passed on

  void enqueue(caf::mailbox_element_ptr x, caf::execution_unit* eu) override {
    if (!x->mid.is_request() && is_raft_message(x->content()) && direct.pass(x, eu, ctrl())) {
      passed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // A client's request goes on as it came (its answer goes straight to the requester), as
    // delegating it would.
    if (x->mid.is_request() &&
        (is_client_request(x->content()) || x->content().match_elements<pb::BatchRequest>()) &&
        direct.pass(x, eu)) {
      passed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    super::enqueue(std::move(x), eu);
  }
};

using peer_ptr = peer_actor*;

/// Where the member is reached now (null: not connected).
void set_remote(peer_ptr self, caf::actor remote) {
  auto& st = self->state;
  // A connection shared by the groups of the process learns which group this peer's messages
  // are for before the first of them, which pass_on enqueues after this (docs/groups.md).
  if (remote && st.dial.groups && st.dial.group != 0)
    self->send(remote, lane_atom::value, st.dial.group, st.node);
  st.remote = std::move(remote);
  self->direct.set(caf::actor_cast<caf::strong_actor_ptr>(self->state.remote));
}

void dial(peer_ptr self);

void redial_later(peer_ptr self) {
  auto& st = self->state;
  st.backoff =
      st.backoff.count() == 0 ? st.dial.backoff_min : std::min(st.backoff * 2, st.dial.backoff_max);
  // Jitter: two nodes that dial each other at the same moment do not collide again and again.
  std::uniform_int_distribution<int64_t> jitter{0, st.backoff.count()};
  self->delayed_send(self, st.backoff / 2 + std::chrono::milliseconds{jitter(st.rng) / 2},
                     retry_atom::value, ++st.dial_gen);
}

void dial(peer_ptr self) {
  auto& st = self->state;
  if (st.dial.address.empty() || st.remote || st.dialing)
    return;
  std::string host;
  uint16_t port = 0;
  if (!split_address(st.dial.address, host, port)) {
    st.log->error("{} cannot reach {}: bad address {}", st.local_id, st.peer_id, st.dial.address);
    return;
  }
  connection_options opts;
  opts.self.cluster_id = st.dial.cluster_id;
  if (st.node) { // a node's peer: it says who it is, and expects the member at the address
    opts.self.node_id = st.local_id;
    opts.self.expect_node_id = st.peer_id;
  }
  opts.limits = st.dial.limits;
  opts.limits.handshake_timeout = st.dial.connect_timeout;
  opts.node = st.node;
  opts.log = st.log;
  opts.group = st.dial.group;
  opts.groups = st.dial.groups;
  if (st.dial.tls.enabled()) {
    std::string why;
    opts.tls = tls_context::shared(st.dial.tls, why);
    if (!opts.tls) {
      st.log->error("{} cannot reach {}: {}", st.local_id, st.peer_id, why);
      return;
    }
  }
  auto conn = dial_connection(self->home_system(), host, port, std::move(opts),
                              caf::actor_cast<caf::actor>(self));
  if (!conn) {
    if (st.backoff.count() == 0 || st.backoff >= st.dial.backoff_max)
      st.log->debug("{} cannot reach {} at {}: {}", st.local_id, st.peer_id, st.dial.address,
                    render(conn.error()));
    redial_later(self);
    return;
  }
  st.dialing = true;
  st.connecting = *conn;
  self->monitor(st.connecting);
}

caf::behavior peer_impl(peer_ptr self, caf::actor node, std::string local_id, std::string peer_id,
                        std::shared_ptr<spdlog::logger> log, dial_options opts) {
  auto& st = self->state;
  st.local_id = std::move(local_id);
  st.peer_id = std::move(peer_id);
  st.log = std::move(log);
  st.dial = std::move(opts);
  st.node = std::move(node);
  if (!st.dial.address.empty()) // std::random_device is slow to open, and peers start often
    st.rng.seed(std::random_device{}());
  install_guards(self);
  // The member's node is let go when the peer ends (in-process, nodes hold their peers).
  self->attach_functor([self] { self->direct.set(nullptr); });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& s = self->state;
    if (s.connecting && msg.source == s.connecting.address()) {
      s.connecting = nullptr;
      s.dialing = false;
      if (s.backoff.count() == 0 || s.backoff >= s.dial.backoff_max)
        s.log->debug("{} cannot reach {} at {}: {}", s.local_id, s.peer_id, s.dial.address,
                     render(msg.reason));
      redial_later(self);
      return;
    }
    if (s.remote && msg.source == s.remote.address()) {
      s.log->warn("{} lost the connection to {}: {}", s.local_id, s.peer_id, render(msg.reason));
      set_remote(self, nullptr);
      // The answers to requests delegated over that connection will never come: their
      // requesters hear it now instead of at their timeouts.
      for (auto& w : s.watchers)
        self->send(w, connection_lost_atom::value, caf::actor_cast<caf::actor>(self));
      if (s.node) // its role wakes if the group was quiesced (core::peer_lost)
        self->send(s.node, connection_lost_atom::value, s.peer_id);
      if (!s.dial.address.empty())
        redial_later(self);
      return;
    }
    auto& ws = s.watchers;
    ws.erase(std::remove_if(ws.begin(), ws.end(),
                            [&](const caf::actor& w) { return w.address() == msg.source; }),
             ws.end());
  });
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
        auto& s = self->state;
        bool request = self->current_mailbox_element()->mid.is_request();
        if (!s.remote) {
          ++s.dropped;
          if (request)
            return make_error(
                errc::unreachable,
                s.peer_id + " is not connected" +
                    (s.dial.address.empty() ? std::string{} : " (at " + s.dial.address + ")"));
          return caf::message{};
        }
        ++s.sent;
        if (request) // its answer goes to the requester, not to us
          return self->delegate(s.remote, x.move_content_to_message());
        self->send(s.remote, x.move_content_to_message());
        return caf::message{};
      });
  dial(self);
  return {
      [self](peer_handle_atom, caf::actor& handle) {
        auto& s = self->state;
        if (s.remote == handle)
          return;
        if (s.remote)
          self->demonitor(s.remote.address());
        set_remote(self, std::move(handle));
        if (s.remote) {
          self->monitor(s.remote);
          s.log->info("{} reaches {} now", s.local_id, s.peer_id);
        }
      },
      [self](wire_up_atom, const std::string&) {
        auto& s = self->state;
        if (!s.connecting ||
            caf::actor_cast<caf::actor_addr>(self->current_sender()) != s.connecting.address())
          return;
        set_remote(self, std::move(s.connecting));
        s.connecting = nullptr;
        s.dialing = false;
        s.backoff = std::chrono::milliseconds{0};
        s.log->info("{} reaches {} at {}", s.local_id, s.peer_id, s.dial.address);
        // The process's other groups use this connection too: the node hands it to them.
        if (s.node && s.dial.groups)
          self->send(s.node, peer_handle_atom::value, s.peer_id, s.remote);
      },
      [self](connection_watch_atom) {
        auto& ws = self->state.watchers;
        auto w = caf::actor_cast<caf::actor>(self->current_sender());
        if (!w || std::find(ws.begin(), ws.end(), w) != ws.end())
          return;
        self->monitor(w); // gone watchers are forgotten
        ws.push_back(std::move(w));
      },
      [self](retry_atom, uint64_t gen) {
        if (gen == self->state.dial_gen)
          dial(self);
      },
      [self](peer_stats_atom) {
        auto& s = self->state;
        return caf::make_message(s.sent + self->passed.load(), s.dropped,
                                 static_cast<bool>(s.remote));
      },
      [self](inspect_atom) {
        auto& s = self->state;
        return make_inspection(self, "peer",
                               {{"member", s.peer_id},
                                {"address", s.dial.address},
                                {"connected", s.remote ? "true" : "false"},
                                {"dials", s.dial.address.empty() ? "false" : "true"},
                                {"sent", std::to_string(s.sent + self->passed.load())},
                                {"watchers", std::to_string(s.watchers.size())},
                                {"dropped", std::to_string(s.dropped)},
                                {"backoff_ms", std::to_string(s.backoff.count())}});
      },
  };
}

} // namespace

bool split_address(const std::string& address, std::string& host, uint16_t& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return false;
  auto digits = address.substr(colon + 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 5)
    return false;
  auto n = std::stoul(digits);
  if (n == 0 || n > 65535)
    return false;
  host = address.substr(0, colon);
  port = static_cast<uint16_t>(n);
  return true;
}

caf::actor spawn_peer(caf::local_actor* node, std::string local_id, std::string peer_id,
                      std::shared_ptr<spdlog::logger> log, dial_options dial) {
  return node->spawn<caf::linked>(peer_impl, caf::actor_cast<caf::actor>(node->ctrl()),
                                  std::move(local_id), std::move(peer_id), std::move(log),
                                  std::move(dial));
}

caf::actor spawn_dialer(caf::actor_system& sys, dial_options opts,
                        std::shared_ptr<spdlog::logger> log) {
  auto address = opts.address;
  return sys.spawn(peer_impl, caf::actor{}, std::string{"client"}, address, std::move(log),
                   std::move(opts));
}

} // namespace cafraft
