// The listener of a node served to other processes (actors/connection.hpp): it takes
// connections within the limits, forks a connection actor for each, and makes room under a
// flood by closing the oldest that have not finished their handshake.
#include <map>
#include <string>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <cafraft/actors/connection.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft {

namespace {

using steady = std::chrono::steady_clock;
using wire::fault;

struct child {
  std::string address; // the remote address it came from
  uint64_t seq;        // the order it was accepted in
  bool established;    // its handshake is done
  caf::actor handle;
};

struct listener_state {
  connection_options opts;
  std::map<std::string, size_t> per_address;
  std::map<caf::actor_addr, child> children;
  uint64_t accepted = 0;
  uint64_t turned_away = 0; // refused or evicted for being too many
  steady::time_point last_warning;
  std::string address;     // where it listens
  message_counter handled; // connections taken, for inspections
  static inline const char* name = "cafraft.listener";
};

using listener_actor = caf::stateful_actor<listener_state, caf::io::broker>;

void forget(listener_actor* self, std::map<caf::actor_addr, child>::iterator i) {
  auto& s = self->state;
  if (--s.per_address[i->second.address] == 0)
    s.per_address.erase(i->second.address);
  s.children.erase(i);
}

/// At a limit: the oldest connection that has not finished its handshake (from `address`
/// when that is set) makes room, so that an idle flood cannot keep clients out; false when
/// every connection there is established.
bool evict(listener_actor* self, const std::string* address) {
  auto& s = self->state;
  auto victim = s.children.end();
  for (auto i = s.children.begin(); i != s.children.end(); ++i)
    if (!i->second.established && (address == nullptr || i->second.address == *address) &&
        (victim == s.children.end() || i->second.seq < victim->second.seq))
      victim = i;
  if (victim == s.children.end())
    return false;
  self->send(victim->second.handle, retire_atom::value);
  forget(self, victim);
  return true;
}

void warn_turned_away(listener_actor* self, const std::string& address, const std::string& what) {
  auto& s = self->state;
  ++s.turned_away;
  auto now = steady::now();
  if (s.opts.log && now - s.last_warning >= std::chrono::seconds{1}) {
    s.last_warning = now;
    s.opts.log->warn("{}: too many connections from {}: {} ({} turned away so far)",
                     s.opts.self.node_id, address, what, s.turned_away);
  }
}

/// Takes a connection within the limits, or turns it away.
void take_connection(listener_actor* self, caf::io::connection_handle hdl) {
  auto& s = self->state;
  wire::stats().accepted.fetch_add(1, std::memory_order_relaxed);
  auto address = self->remote_addr(hdl);
  auto& lim = s.opts.limits;
  auto over = [&](const std::string* from, const std::string& limit) {
    if (evict(self, from)) {
      warn_turned_away(self, address, "closed the oldest of " + limit + " without a handshake");
      return false;
    }
    wire::stats().closed[static_cast<size_t>(fault::too_many_connections)].fetch_add(1);
    self->close(hdl);
    warn_turned_away(self, address, "refused one, all " + limit + " are established");
    return true;
  };
  if (s.per_address[address] >= lim.max_connections_per_address &&
      over(&address, std::to_string(lim.max_connections_per_address) + " from there"))
    return;
  if (s.children.size() >= lim.max_connections &&
      over(nullptr, std::to_string(lim.max_connections)))
    return;
  s.handled.count(self->clock().now());
  auto h = fork_connection(self, hdl, s.opts);
  self->monitor(h);
  s.children.emplace(h.address(), child{address, ++s.accepted, false, h});
  ++s.per_address[address];
}

caf::behavior listening(listener_actor* self, caf::io::doorman_ptr door, connection_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.address = std::to_string(door->port());
  self->add_doorman(std::move(door));
  if (st.opts.node) {
    self->monitor(st.opts.node);
    self->send(st.opts.node, enlist_atom::value, std::string{"listener"}, std::string{"listener"},
               caf::actor_cast<caf::actor>(self));
  }
  self->set_error_handler([](caf::scheduled_actor*, caf::error&) {});
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    if (dm.source == s.opts.node.address()) {
      self->quit();
      return;
    }
    auto i = s.children.find(dm.source);
    if (i != s.children.end())
      forget(self, i);
  });
  return {
      [self](caf::io::new_connection_msg& msg) { take_connection(self, msg.handle); },
      [self](wire_up_atom, const std::string&) {
        auto i =
            self->state.children.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
        if (i != self->state.children.end())
          i->second.established = true;
      },
      [self](inspect_atom) {
        auto& s = self->state;
        size_t established = 0;
        for (auto& [addr, c] : s.children)
          established += c.established ? 1 : 0;
        return make_inspection(
            self, "listener", s.handled,
            {{"port", s.address},
             {"connections", std::to_string(s.children.size())},
             {"established", std::to_string(established)},
             {"addresses", std::to_string(s.per_address.size())},
             {"accepted", std::to_string(s.accepted)},
             {"turned_away", std::to_string(s.turned_away)},
             {"max_connections", std::to_string(s.opts.limits.max_connections)},
             {"max_per_address", std::to_string(s.opts.limits.max_connections_per_address)}});
      },
      [](caf::io::acceptor_closed_msg&) {},
  };
}

} // namespace

caf::expected<std::pair<caf::actor, uint16_t>>
listen(caf::actor_system& sys, const std::string& host, uint16_t port, connection_options opts) {
  auto door = sys.middleman().backend().new_tcp_doorman(port, host.c_str(), true);
  if (!door)
    return std::move(door.error());
  auto actual = (*door)->port();
  auto l = sys.middleman().spawn_broker(listening, std::move(*door), std::move(opts));
  return std::make_pair(l, actual);
}

caf::expected<std::pair<caf::actor, uint16_t>>
serve_node(caf::actor_system& sys, const caf::actor& node, const node_config& cfg,
           const std::string& address, wire::limits limits) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return make_error(errc::invalid_request, "not HOST:PORT: " + address);
  auto host = address.substr(0, colon);
  uint16_t port = 0;
  try {
    auto n = std::stoul(address.substr(colon + 1));
    if (n > 65535)
      throw std::out_of_range{"port"};
    port = static_cast<uint16_t>(n);
  } catch (const std::exception&) {
    return make_error(errc::invalid_request, "not HOST:PORT: " + address);
  }
  connection_options opts;
  opts.self.cluster_id = cfg.cluster_id;
  opts.self.node_id = cfg.id;
  opts.limits = limits;
  opts.node = node;
  opts.log = get_logger(cfg.logger_name);
  opts.groups = cfg.groups;
  if (cfg.tls.enabled()) {
    std::string why;
    opts.tls = tls_context::shared(cfg.tls, why);
    if (!opts.tls)
      return make_error(errc::invalid_request, why);
  }
  return listen(sys, host, port, std::move(opts));
}

} // namespace cafraft
