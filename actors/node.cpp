#include <cafraft/actors/node.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>

#include <mutex>

#include <caf/all.hpp>

#include <cafraft/actors/batch.hpp>
#include <cafraft/actors/change_request.hpp>
#include <cafraft/actors/group_table.hpp>
#include <cafraft/actors/guards.hpp>
#include <cafraft/actors/node_state.hpp>
#include <cafraft/actors/peer.hpp>
#include <cafraft/actors/roles.hpp>
#include <cafraft/actors/state_machine.hpp>
#include <cafraft/actors/storage.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/local.hpp>
#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/disk.hpp>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/rules.hpp>
#include <cafraft/runtime/state_machine.hpp>

namespace cafraft {

namespace node_detail {

caf::actor spawn_role(node_ptr self, role_kind kind, std::shared_ptr<raft_state> rs) {
  auto& st = self->state;
  auto seed = st.seeds();
  switch (kind) {
  case role_kind::follower:
    return spawn_follower(self, st.ctx, std::move(rs), seed);
  case role_kind::candidate:
    return spawn_candidate(self, st.ctx, std::move(rs), seed);
  case role_kind::leader:
    return spawn_leader(self, st.ctx, std::move(rs), seed);
  }
  return {};
}

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The node's name in its directory: its id, and for a group other than the process's own,
// "<id>/g<group>" (docs/groups.md).
std::string node_name(const node_config& cfg) {
  return cfg.group == 0 ? cfg.id : cfg.id + "/g" + std::to_string(cfg.group);
}

// Lists `who` in the node's directory as "<node name>/<name>".
void enlist(node_ptr self, const std::string& name, const caf::actor& who, std::string kind) {
  auto& st = self->state;
  auto parent = node_name(*st.ctx.cfg);
  st.directory[parent + "/" + name] = directory_entry{who, std::move(kind), parent, unix_ms()};
}

caf::actor ensure_peer(node_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.ctx.peers.find(id);
  if (i != st.ctx.peers.end())
    return i->second;
  auto& cfg = *st.ctx.cfg;
  dial_options dial;
  // The other side learns of us when we connect. Of a process's groups only its own (group 0)
  // dials: the others share its connections (docs/groups.md).
  if (cfg.dial_peers && cfg.id < id && (cfg.group == 0 || !cfg.groups)) {
    dial.address = st.addresses[id];
    dial.tls = cfg.tls;
    dial.cluster_id = cfg.cluster_id;
    dial.connect_timeout = cfg.connect_timeout;
  }
  dial.group = cfg.group;
  dial.groups = cfg.groups;
  auto peer = spawn_peer(self, cfg.id, id, st.ctx.log, std::move(dial));
  st.ctx.peers.emplace(id, peer);
  st.ctx.known->add(id);
  enlist(self, "peer-" + id, peer, "peer");
  auto h = st.handles.find(id);
  if (h != st.handles.end())
    self->send(peer, peer_handle_atom::value, h->second);
  return peer;
}

// Messages between a node's own actors are taken only from this process: the node actor is
// published, and anyone connected could send them.
bool from_here(node_ptr self) {
  auto& sender = self->current_sender();
  return sender != nullptr && sender->node() == self->node();
}

// Raft RPCs that a joining node must not take before the cluster admitted it: a node back
// without its disk would otherwise rejoin silently (docs/membership.md, missing_data).
bool raft_rpc(const caf::message& m) {
  return m.match_elements<pb::AppendEntries>() || m.match_elements<pb::InstallSnapshot>() ||
         m.match_elements<pb::RequestVote>() || m.match_elements<pb::TimeoutNow>();
}

// The node stops: everyone waiting on it hears why (CAF 0.17 drops unanswered promises).
void stop_node(node_ptr self, const caf::error& why) {
  auto& st = self->state;
  // Stopped from outside: shutting_down. Stopped by what went wrong (storage, a removal):
  // that reason.
  static const auto exit_reasons = caf::make_error(caf::exit_reason::user_shutdown).category();
  auto told = why.category() == exit_reasons
                  ? make_error(errc::shutting_down, st.ctx.cfg->id + " stops")
                  : why;
  for (auto& [term, rp] : st.leader_waiters)
    rp.deliver(told);
  st.leader_waiters.clear();
  for (auto& rp : st.join_waiters)
    rp.deliver(told);
  st.join_waiters.clear();
  for (auto& [group, waiting] : st.group_removals)
    for (auto& rp : waiting)
      rp.deliver(told);
  st.group_removals.clear();
  // Out of the process's group table before anyone sees it down (its monitors are told
  // before the functor attached at its start runs).
  if (auto& groups = st.ctx.cfg->groups)
    groups->remove(st.ctx.cfg->group, self->address());
  self->quit(why);
}

// Why this node cannot create or remove group `group` of its process; "" when it can.
std::string cannot_change_group(node_ptr self, uint64_t group) {
  auto& cfg = *self->state.ctx.cfg;
  if (!cfg.groups || cfg.group != 0)
    return "groups are created and removed by the node of a process's own group (0), in a "
           "process that hosts many (cafraft-node runs so; node_config::groups)";
  if (group == 0)
    return "group 0 is the process's own: it is neither created nor removed";
  return {};
}

caf::result<caf::message> create_group(node_ptr self, const pb::CreateGroupRequest& req) {
  auto& ns = self->state;
  auto& cfg = *ns.ctx.cfg;
  if (auto why = cannot_change_group(self, req.group()); !why.empty())
    return make_error(errc::invalid_request, std::move(why));
  auto name = "group " + std::to_string(req.group());
  if (ns.group_removals.count(req.group()) > 0)
    return make_error(errc::overloaded, name + " is being removed here: retry shortly");
  // Its members are processes of group 0, at the addresses group 0 knows them by.
  std::vector<member> members;
  bool mine = false;
  for (auto& m : req.members()) {
    auto known = ns.addresses.find(m.id());
    if (m.id() != cfg.id && (known == ns.addresses.end() || known->second.empty()))
      return make_error(errc::invalid_request, m.id() + " is no member of " + cfg.id +
                                                   "'s own group (0): a group's "
                                                   "members are processes of the cluster");
    if (std::any_of(members.begin(), members.end(),
                    [&](const member& x) { return x.id == m.id(); }))
      return make_error(errc::invalid_request, m.id() + " is named twice");
    members.push_back(
        member{m.id(), m.id() == cfg.id ? cfg.own_address() : known->second, false, 0});
    mine = mine || m.id() == cfg.id;
  }
  if (!mine)
    return make_error(errc::invalid_request, cfg.id + " is not a member of " + name);
  if (!cfg.groups->find(req.group())) {
    auto node = spawn_group(self->home_system(), cfg, req.group(), std::move(members));
    if (!node)
      return node.error();
    ns.ctx.log->info("{} starts {} ({} members)", cfg.id, name, req.members_size());
  }
  return self->delegate(caf::actor_cast<caf::actor>(self), groups_atom::value);
}

caf::result<caf::message> remove_group(node_ptr self, const pb::RemoveGroupRequest& req) {
  auto& ns = self->state;
  auto& cfg = *ns.ctx.cfg;
  if (auto why = cannot_change_group(self, req.group()); !why.empty())
    return make_error(errc::invalid_request, std::move(why));
  auto rp = self->make_response_promise();
  auto& waiting = ns.group_removals[req.group()];
  waiting.push_back(rp);
  if (waiting.size() > 1) // stopping already
    return rp;
  auto dir = group_config(cfg, req.group()).data_dir;
  auto hub = caf::actor_cast<caf::actor>(self);
  auto g = cfg.groups->find(req.group());
  auto erase = [hub, group = req.group(), dir, groups = cfg.groups,
                addr = g ? g->node.address() : caf::actor_addr{}] {
    if (addr) // as the node does when it ends, whichever runs first
      groups->remove(group, addr);
    // Renamed first: a restart never finds it again, and a storage actor that still writes
    // (it stops after its node) writes into the renamed directory.
    std::error_code ec;
    std::filesystem::remove(dir + ".members", ec);
    auto tomb = dir + ".removed";
    std::filesystem::remove_all(tomb, ec);
    std::filesystem::rename(dir, tomb, ec);
    std::string why;
    if (ec && ec != std::errc::no_such_file_or_directory)
      why = "cannot set " + dir + " aside: " + ec.message();
    ec.clear();
    std::filesystem::remove_all(tomb, ec);
    caf::send_as(hub, hub, removed_atom::value, group, why);
  };
  if (g) {
    ns.ctx.log->info("{} stops group {} and deletes its data", cfg.id, req.group());
    // Its data goes once it has stopped.
    g->node->attach_functor(erase);
    self->send_exit(g->node, caf::exit_reason::user_shutdown);
  } else {
    erase();
  }
  return rp;
}

void finish_join(node_ptr self, caf::expected<pb::MembershipResponse> outcome) {
  auto& st = self->state;
  if (!st.joining)
    return;
  if (!outcome) {
    st.ctx.log->error("{} cannot join the cluster: {}", st.ctx.cfg->id, render(outcome.error()));
    stop_node(self, outcome.error());
    return;
  }
  st.joining = false;
  st.joined = *outcome;
  self->route->set(caf::actor_cast<caf::strong_actor_ptr>(st.role));
  for (auto& m : outcome->members())
    st.addresses.emplace(m.id(), m.address());
  // Peers for every member now: across processes, the side with the smaller id dials, and
  // nothing else would make this node connect before it has to answer.
  for (auto& m : outcome->members())
    if (m.id() != st.ctx.cfg->id && st.ctx.peers.count(m.id()) == 0)
      self->send(st.role, new_peer_atom::value, m.id(), ensure_peer(self, m.id()));
  st.ctx.log->info("{} was admitted to the cluster (configuration at index {}, {} members)",
                   st.ctx.cfg->id, outcome->config_index(), outcome->members_size());
  for (auto& rp : st.join_waiters)
    rp.deliver(*outcome);
  st.join_waiters.clear();
}

void start_join(node_ptr self, join_options opts, uint64_t incarnation) {
  auto& st = self->state;
  auto& cfg = *st.ctx.cfg;
  st.joining = true;
  pb::JoinRequest req;
  req.set_id(cfg.id);
  req.set_address(cfg.own_address());
  req.set_incarnation(incarnation);
  req.set_feature_level(cfg.feature_level);
  st.ctx.log->info("{} has no data: asks to join the cluster as {} (incarnation {})", cfg.id,
                   req.address(), req.incarnation());
  auto timeout = opts.timeout;
  auto client = spawn_change_client(self, std::move(opts));
  self->request(client, timeout + std::chrono::seconds{1}, std::move(req))
      .then(
          [self, client](pb::MembershipResponse& resp) {
            self->unlink_from(client);
            self->send_exit(client, caf::exit_reason::user_shutdown);
            finish_join(self, std::move(resp));
          },
          [self, client](caf::error& e) {
            self->unlink_from(client);
            self->send_exit(client, caf::exit_reason::user_shutdown);
            finish_join(self, std::move(e));
          });
}

caf::behavior node_impl(node_ptr self, std::shared_ptr<const node_config> cfg,
                        std::shared_ptr<log_storage> store, std::shared_ptr<raft_state> rs,
                        std::optional<pb::SnapshotMeta> snapshot,
                        std::shared_ptr<snapshot_source> snapshot_data,
                        std::optional<join_options> join) {
  auto& st = self->state;
  install_guards(self);
  st.ctx.node = caf::actor_cast<caf::actor>(self);
  st.ctx.route = self->route;
  // The route holds the role: it is let go when the node ends (roles hold the node).
  self->attach_functor([route = self->route] { route->set(nullptr); });
  st.ctx.cfg = cfg;
  st.ctx.log = get_logger(cfg->logger_name);
  st.ctx.known->add(cfg->id);
  register_known_members(self->address(), st.ctx.known);
  self->attach_functor([addr = self->address()] { register_known_members(addr, nullptr); });
  st.seeds.seed(cfg->seed != 0 ? cfg->seed : std::random_device{}());
  st.ctx.persisted = std::make_shared<persist_counts>();
  st.ctx.storage = spawn_storage(self, std::move(store), cfg->detached_storage, st.ctx.persisted);
  st.ctx.state_machine = spawn_state_machine(self, cfg, st.ctx.storage,
                                             cfg->make_state_machine ? cfg->make_state_machine()
                                                                     : std::make_unique<kv_store>(),
                                             std::move(snapshot), std::move(snapshot_data));
  st.changer = spawn_change_request(self, cfg->id, cfg->max_pending_changes, st.ctx.log);
  st.directory[node_name(*cfg)] = directory_entry{st.ctx.node, "node", "", unix_ms()};
  if (cfg->groups) {
    // Its process's connections carry its messages too; those up already are used at once.
    cfg->groups->add(cfg->group, st.ctx.node, st.ctx.known);
    self->attach_functor([groups = cfg->groups, group = cfg->group, addr = self->address()] {
      groups->remove(group, addr);
    });
    for (auto& [member, connection] : cfg->groups->connections())
      st.handles[member] = connection;
  }
  enlist(self, "storage", st.ctx.storage, "storage");
  enlist(self, "state_machine", st.ctx.state_machine, "state_machine");
  enlist(self, "change_request", st.changer, "change_request");
  rs->feature_level = cfg->feature_level;
  for (auto& m : rs->config.members)
    st.addresses[m.id] = m.address;
  for (auto& m : rs->config.members)
    if (m.id != cfg->id)
      ensure_peer(self, m.id);
  st.ctx.log->info("{} [term {}] starts with a snapshot through {} and log entries to {}, {} "
                   "members",
                   cfg->id, rs->term, rs->snapshot_index, rs->last_index(),
                   rs->config.members.size());
  auto incarnation = rs->incarnation;
  st.role = spawn_role(self, role_kind::follower, std::move(rs));
  enlist(self, "follower", st.role, "follower");
  if (join)
    start_join(self, std::move(*join), incarnation);
  else
    self->route->set(caf::actor_cast<caf::strong_actor_ptr>(st.role));
  // Everything else goes to the current role; a retired role sends it back here. Raft messages
  // and clients' requests come here only while the node joins or a role hands over: otherwise
  // they pass straight to the role (node_actor::enqueue).
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
        auto msg = x.move_content_to_message();
        if (self->state.joining && raft_rpc(msg))
          return caf::message{};
        return self->delegate(self->state.role, std::move(msg));
      });
  // Stopped from outside, or a child failed (storage): waiters are answered first. Children
  // that end normally (retired roles, the join's change client) change nothing.
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (em.reason && em.reason != caf::exit_reason::normal)
      stop_node(self, em.reason);
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& dir = self->state.directory; // a user's actor that ended
    for (auto i = dir.begin(); i != dir.end();)
      i = i->second.who.address() == dm.source ? dir.erase(i) : std::next(i);
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const subscriber& s) { return s.who.address() == dm.source; }),
               subs.end());
  });
  return {
      [self](handover_atom, role_handover& h) {
        auto& ns = self->state;
        if (self->current_sender() != ns.role) // only the current role may hand over
          return;
        if (!from_here(self))
          return;
        auto old = ns.role;
        auto was = ns.kind;
        ns.kind = h.next;
        ns.ctx.log->info("{} [term {}] is now {}", ns.ctx.cfg->id, h.state->term,
                         to_string(h.next));
        if (h.next == role_kind::leader)
          note_leader(self, h.state->term, ns.ctx.cfg->id, h.state->address_of(ns.ctx.cfg->id));
        else if (was == role_kind::leader || h.state->leader_id.empty() ||
                 h.next == role_kind::candidate) // a candidate no longer hears the leader
          leader_lost(self, h.state->term);
        ns.role = spawn_role(self, h.next, std::move(h.state));
        if (!ns.joining)
          self->route->set(caf::actor_cast<caf::strong_actor_ptr>(ns.role));
        ns.directory.erase(node_name(*ns.ctx.cfg) + "/" + to_string(was));
        enlist(self, to_string(h.next), ns.role, to_string(h.next));
        self->send(old, retire_atom::value);
      },
      [self](leadership_atom, uint64_t term, const std::string& leader,
             const std::string& address) {
        if (from_here(self))
          note_leader(self, term, leader, address);
      },
      [self](config_change_atom, uint64_t index, const pb::Configuration& c) {
        if (!from_here(self))
          return;
        auto& ns = self->state;
        // A configuration that replaced an uncommitted one at the same index differs in its
        // members (repeated fields serialize deterministically).
        if (index != ns.config_index || c.SerializeAsString() != ns.config.SerializeAsString()) {
          ns.config_index = index;
          ns.config = c;
          publish(self, membership_event(ns));
        }
        for (auto& m : c.members()) {
          if (!m.address().empty())
            ns.addresses[m.id()] = m.address();
          if (m.id() == ns.ctx.cfg->id || ns.ctx.peers.count(m.id()) > 0)
            continue;
          auto peer = ensure_peer(self, m.id());
          self->send(ns.role, new_peer_atom::value, m.id(), peer);
        }
      },
      [self](peer_handle_atom, const std::string& peer_id, const caf::actor& handle) {
        auto& ns = self->state;
        // Only from this process: the wiring of in-process clusters, and a listener's
        // connection announcing the member at its other end (actors/connection.hpp).
        if (!from_here(self))
          return;
        if (self->current_sender() == handle && (ns.ctx.cfg->group == 0 || !ns.ctx.cfg->groups)) {
          // A connection announces the member at its other end. A newer one takes over, and
          // the older one is closed: kept, it would stay up on keepalives but carry nothing
          // from here, and should the newer one close first (one that its side had given up,
          // come through late), the member would still hold the older one and never dial
          // again, cut off from this node for good. Closed, its dialing side dials anew.
          auto& older = ns.connections[peer_id];
          if (older && older != handle && !CAFRAFT_CANARY("older_connection_kept")) {
            ns.ctx.log->info("{}: a newer connection of {} replaces the older one, closed",
                             ns.ctx.cfg->id, peer_id);
            self->send_exit(older, caf::exit_reason::user_shutdown);
          }
          older = handle;
        }
        ns.handles[peer_id] = handle;
        auto i = ns.ctx.peers.find(peer_id);
        bool from_peer = i != ns.ctx.peers.end() && self->current_sender() == i->second;
        if (i != ns.ctx.peers.end() && !from_peer)
          self->send(i->second, peer_handle_atom::value, handle);
        // Group 0 decides which connection reaches a member, and hands it to the process's
        // other groups (docs/groups.md): one its listener accepted, or one its peer dialed.
        auto& own = *ns.ctx.cfg;
        if (own.groups && own.group == 0 && (self->current_sender() == handle || from_peer)) {
          own.groups->connected(peer_id, handle);
          for (auto& [group, node] : own.groups->nodes())
            if (group != 0)
              self->send(node, peer_handle_atom::value, peer_id, handle);
        }
      },
      [self](send_to_peer_atom, const std::string& peer_id, const std::string& address,
             caf::message& msg) {
        // A role had no peer actor for this member (it joined after the role started): one is
        // made, and the role learns of it.
        if (!from_here(self))
          return;
        auto& ns = self->state;
        if (!address.empty())
          ns.addresses[peer_id] = address;
        bool is_new = ns.ctx.peers.count(peer_id) == 0;
        auto peer = ensure_peer(self, peer_id);
        self->send(peer, std::move(msg));
        if (is_new)
          self->send(ns.role, new_peer_atom::value, peer_id, peer);
      },
      [self](const pb::CreateGroupRequest& req) { return create_group(self, req); },
      [self](const pb::RemoveGroupRequest& req) { return remove_group(self, req); },
      [self](removed_atom, uint64_t group, const std::string& why) {
        // A group this node removed has stopped and its data is gone (remove_group).
        if (!from_here(self))
          return;
        auto& ns = self->state;
        auto i = ns.group_removals.find(group);
        if (i == ns.group_removals.end())
          return;
        auto waiting = std::move(i->second);
        ns.group_removals.erase(i);
        for (auto& rp : waiting) {
          if (why.empty())
            rp.delegate(caf::actor_cast<caf::actor>(self), groups_atom::value);
          else
            rp.deliver(make_error(errc::storage_failed, why));
        }
      },
      [self](removed_atom) {
        if (!from_here(self))
          return;
        auto& ns = self->state;
        ns.ctx.log->warn("{} was removed from the cluster: it stops and never starts again from "
                         "this data directory",
                         ns.ctx.cfg->id);
        stop_node(self, make_error(errc::removed_member));
      },
      [self](pb::BatchRequest& batch) { return answer_batch(self, self->state.role, batch); },
      [self](const pb::SnapshotNowRequest&) {
        return self->delegate(self->state.ctx.state_machine, snapshot_atom::value);
      },
      [self](watch_atom, pb::WatchRequest& req, caf::actor& watcher) {
        return self->delegate(self->state.ctx.state_machine, watch_atom::value, std::move(req),
                              std::move(watcher));
      },
      [self](const pb::SnapshotReadRequest& req) {
        auto& ns = self->state;
        auto rp = self->make_response_promise();
        auto max = std::min<uint64_t>(req.max() == 0 ? 1u << 20 : req.max(), 4u << 20);
        self->request(ns.ctx.storage, caf::infinite, snapshot_read_atom::value, req.offset(), max)
            .then(
                [rp, offset = req.offset(), cfg = ns.ctx.cfg](pb::SnapshotMeta& meta,
                                                              std::string& data) mutable {
                  pb::SnapshotChunk out;
                  *out.mutable_meta() = std::move(meta);
                  out.set_offset(offset);
                  out.set_data(std::move(data));
                  out.set_cluster_id(cfg->cluster_id);
                  out.set_node_id(cfg->id);
                  rp.deliver(std::move(out));
                },
                [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [self](const pb::JoinRequest& req) { return self->delegate(self->state.changer, req); },
      [self](const pb::LeaveRequest& req) { return self->delegate(self->state.changer, req); },
      [self](leader_atom) -> caf::result<pb::LeaderInfo> {
        auto& ns = self->state;
        if (ns.leader_id.empty())
          return make_error(errc::unknown_leader);
        return leader_info(ns);
      },
      [self](wait_leader_atom, uint64_t after_term) {
        auto& ns = self->state;
        auto rp = self->make_response_promise();
        if (!ns.leader_id.empty() && ns.leader_term > after_term)
          rp.deliver(leader_info(ns));
        else if (ns.leader_waiters.size() >= max_leader_waiters)
          rp.deliver(make_error(errc::overloaded, "too many waiting for a leader change"));
        else
          ns.leader_waiters.emplace(after_term, rp);
        return rp;
      },
      [self](subscribe_atom, const caf::actor& who) { subscribe(self, who, false); },
      [self](subscribe_atom, const caf::actor& who, bool membership) {
        subscribe(self, who, membership);
      },
      [self](recent_log_atom, uint32_t max) {
        auto& ns = self->state;
        pb::LogLines out;
        for (auto& line : recent_log_lines(ns.ctx.cfg->logger_name, ns.ctx.cfg->id + " ",
                                           std::min<uint32_t>(max, recent_log_capacity)))
          out.add_lines(line);
        return out;
      },
      [self](directory_atom) {
        auto& ns = self->state;
        pb::ActorDirectory out;
        for (auto& [name, e] : ns.directory) {
          auto* a = out.add_actors();
          a->set_name(name);
          a->set_kind(e.kind);
          a->set_parent(e.parent);
          a->set_started_unix_ms(e.started_unix_ms);
        }
        return out;
      },
      [self](const pb::InspectRequest& req) {
        auto& ns = self->state;
        auto rp = self->make_response_promise();
        auto name = req.name();
        if (name == node_name(*ns.ctx.cfg)) {
          auto i = make_inspection(self, "node",
                                   {{"role", to_string(ns.kind)},
                                    {"joining", ns.joining ? "true" : "false"},
                                    {"leader", ns.leader_id},
                                    {"leader_term", std::to_string(ns.leader_term)},
                                    {"peers", std::to_string(ns.ctx.peers.size())},
                                    {"subscribers", std::to_string(ns.subscribers.size())},
                                    {"leader_waiters", std::to_string(ns.leader_waiters.size())}});
          i.set_name(name);
          rp.deliver(std::move(i));
          return rp;
        }
        auto e = ns.directory.find(name);
        if (e == ns.directory.end()) {
          rp.deliver(make_error(errc::invalid_request, "no actor named " + name));
          return rp;
        }
        self->request(e->second.who, std::chrono::seconds{2}, inspect_atom::value)
            .then(
                [rp, name](pb::Inspection& i) mutable {
                  i.set_name(name);
                  rp.deliver(std::move(i));
                },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](enlist_atom, const std::string& name, const std::string& kind, const caf::actor& who) {
        if (!from_here(self) || !who)
          return;
        self->monitor(who);
        enlist(self, name, who, kind);
      },
      [self](joined_atom) {
        auto& ns = self->state;
        auto rp = self->make_response_promise();
        if (ns.joining) {
          ns.join_waiters.push_back(rp);
        } else {
          pb::MembershipResponse resp;
          if (ns.joined)
            resp = *ns.joined;
          rp.deliver(std::move(resp));
        }
        return rp;
      },
      [self](groups_atom) {
        // Every group of the process, by group id, each as its node sees itself.
        auto& ns = self->state;
        auto rp = self->make_response_promise<pb::GroupList>();
        std::vector<std::pair<uint64_t, caf::actor>> nodes;
        if (ns.ctx.cfg->groups)
          nodes = ns.ctx.cfg->groups->nodes();
        else
          nodes.emplace_back(ns.ctx.cfg->group, caf::actor_cast<caf::actor>(self));
        auto out = std::make_shared<pb::GroupList>();
        for (auto& [id, node] : nodes)
          out->add_groups()->set_group(id);
        auto left = std::make_shared<size_t>(nodes.size());
        if (nodes.empty())
          rp.deliver(*out);
        for (size_t i = 0; i < nodes.size(); ++i) {
          auto done = [rp, out, left]() mutable {
            if (--*left == 0)
              rp.deliver(std::move(*out));
          };
          self->request(nodes[i].second, std::chrono::seconds{2}, status_atom::value)
              .then(
                  [out, i, done](pb::NodeStatus& s) mutable {
                    *out->mutable_groups(static_cast<int>(i)) = std::move(s);
                    done();
                  },
                  [out, i, done, id = ns.ctx.cfg->id](caf::error& e) mutable {
                    auto& g = *out->mutable_groups(static_cast<int>(i));
                    g.set_id(id);
                    g.set_role("unavailable: " + render(e));
                    done();
                  });
        }
        return rp;
      },
      [](lane_atom, uint64_t, const caf::actor&) {
        // For a connection (a peer wired to this node in-process sends it here): nothing.
      },
      [self](status_atom) -> caf::result<caf::message> {
        auto& ns = self->state;
        if (!ns.joining)
          return self->delegate(ns.role, status_atom::value);
        pb::NodeStatus status;
        status.set_id(ns.ctx.cfg->id);
        status.set_role("joining");
        status.set_joining(true);
        status.set_group(ns.ctx.cfg->group);
        return caf::make_message(std::move(status));
      },
  };
}

// Loads the node's state; nullopt when there is none (a new node).
struct loaded_node {
  std::shared_ptr<log_storage> store;
  std::shared_ptr<raft_state> rs;
  recovered_state rec;
  std::shared_ptr<snapshot_source> snapshot_data; // the state machine restores from it
  bool has_data = false;
};

caf::expected<loaded_node> load_node(const node_config& cfg) {
  if (auto why = validate(cfg); !why.empty())
    return make_error(errc::invalid_request, std::move(why));
  loaded_node out;
  out.store = cfg.storage;
  if (!out.store) {
    durable_options opts;
    opts.dir = cfg.data_dir;
    opts.node_id = cfg.id;
    opts.cluster_id = cfg.cluster_id;
    opts.segment_bytes = cfg.wal_segment_bytes;
    opts.discard_corrupt_log = cfg.discard_corrupt_log;
    opts.logger_name = cfg.logger_name;
    out.store = std::make_shared<durable_storage>(std::move(opts));
  }
  auto& rec = out.rec;
  try {
    rec = out.store->load();
    out.snapshot_data = out.store->open_snapshot();
  } catch (const std::exception& ex) {
    return make_error(errc::storage_failed, ex.what());
  }
  if (rec.hard_state.removed())
    return make_error(errc::removed_member, "node " + cfg.id +
                                                " was removed from the cluster; its data "
                                                "directory must not be used again");
  out.has_data = rec.hard_state.term() > 0 || !rec.log.empty() || rec.snapshot.has_value();
  auto rs =
      std::make_shared<raft_state>(rules::recover(rec, std::move(rec.log), cfg.id, cfg.members));
  out.rs = std::move(rs);
  return out;
}

caf::actor start_node(caf::actor_system& sys, node_config cfg, loaded_node n,
                      std::optional<join_options> join) {
  auto shared_cfg = std::make_shared<const node_config>(std::move(cfg));
  return sys.spawn(node_impl, std::move(shared_cfg), std::move(n.store), std::move(n.rs),
                   std::move(n.rec.snapshot), std::move(n.snapshot_data), std::move(join));
}

} // namespace node_detail

caf::expected<caf::actor> spawn_node(caf::actor_system& sys, node_config cfg) {
  auto n = node_detail::load_node(cfg);
  if (!n)
    return n.error();
  if (n->has_data && !cfg.members.empty() && n->rs->config.index > 0)
    get_logger(cfg.logger_name)
        ->info("{} restarts from its data: the configuration in its log applies, the members "
               "given at start are ignored",
               cfg.id);
  return node_detail::start_node(sys, std::move(cfg), std::move(*n), std::nullopt);
}

caf::expected<caf::actor> join_cluster(caf::actor_system& sys, node_config cfg, join_options opts) {
  auto own = cfg.own_address();
  for (auto& a : opts.contact_addresses)
    if (!own.empty() && a == own)
      return make_error(errc::self_join, "node " + cfg.id +
                                             " was asked to join through its own "
                                             "address " +
                                             own);
  if (opts.contacts.empty())
    return make_error(errc::invalid_request, "join needs at least one node to ask");
  cfg.members.clear(); // the configuration comes from the cluster (or from the data directory)
  auto n = node_detail::load_node(cfg);
  if (!n)
    return n.error();
  if (n->has_data) {
    get_logger(cfg.logger_name)
        ->info("{} has a data directory: restarts from it and sends no membership request", cfg.id);
    return node_detail::start_node(sys, std::move(cfg), std::move(*n), std::nullopt);
  }
  // The incarnation is written before the node asks: a join retried after a crash is then
  // recognised as the same node rather than refused as one that lost its data.
  auto& rs = *n->rs;
  if (rs.incarnation == 0) {
    // Seeded runs (tests) stay reproducible, yet every join draws a different incarnation.
    static std::atomic<uint64_t> joins{0};
    std::mt19937_64 rng{cfg.seed != 0 ? cfg.seed + 7919 * ++joins : std::random_device{}()};
    rs.incarnation = rng() | 1; // never 0, the initial members' incarnation
    persist_batch batch;
    batch.hard_state = rules::take_hard_state(rs);
    try {
      std::vector<persist_batch> batches;
      batches.push_back(std::move(batch));
      n->store->write(std::move(batches));
    } catch (const std::exception& ex) {
      return make_error(errc::storage_failed, ex.what());
    }
  }
  return node_detail::start_node(sys, std::move(cfg), std::move(*n), std::move(opts));
}

namespace {
/// The priority of a group's replica on a process other than the one the group prefers.
constexpr int spread_priority = 25;
} // namespace

node_config group_config(const node_config& process, uint64_t group, std::vector<member> members) {
  auto tag = "g" + std::to_string(group);
  auto c = process;
  c.group = group;
  if (!members.empty())
    c.members = std::move(members);
  if (!process.data_dir.empty())
    c.data_dir = (std::filesystem::path{process.data_dir} / tag).string();
  c.logger_name =
      (process.logger_name.empty() ? std::string{"cafraft"} : process.logger_name) + "." + tag;
  if (c.seed != 0)
    c.seed += group;
  // Leaders spread over the processes: group g prefers the (g mod n)-th of its n members by id,
  // whose election timer runs out first; the others wait three quarters of the timeout range
  // longer (a preference: any of them wins when it is gone).
  std::vector<std::string> ids;
  for (auto& m : c.members)
    ids.push_back(m.id);
  std::sort(ids.begin(), ids.end());
  if (!ids.empty() && ids[group % ids.size()] != c.id)
    c.priority = std::min(c.priority, spread_priority);
  return c;
}

namespace {

/// Where a group's first members are written down, beside its data directory: its storage
/// takes no file of ours in its directory before its MANIFEST.
std::string members_file(const node_config& process, uint64_t group) {
  return (std::filesystem::path{process.data_dir} / ("g" + std::to_string(group) + ".members"))
      .string();
}

/// The group's first members, one "id address" line each, made durable before its replica
/// starts: a replica restarted before the group's first entry starts with them again, not with
/// the process's.
void write_members(const std::string& file, const std::vector<member>& members) {
  std::string text;
  for (auto& m : members)
    text += m.id + " " + m.address + "\n";
  auto fs = make_posix_disk();
  auto dir = std::filesystem::path{file}.parent_path().string();
  fs->make_dirs(dir);
  auto tmp = file + ".tmp";
  if (fs->exists(tmp))
    fs->remove(tmp);
  fs->append(tmp, text);
  fs->sync(tmp);
  fs->rename(tmp, file);
  fs->sync_dir(dir);
}

caf::expected<std::vector<member>> read_members(const std::string& file) {
  std::vector<member> out;
  std::string text;
  try {
    text = make_posix_disk()->read(file);
  } catch (const std::exception& ex) {
    return make_error(errc::storage_failed, ex.what());
  }
  std::istringstream lines{text};
  std::string line;
  while (std::getline(lines, line)) {
    auto space = line.find(' ');
    if (space == 0 || space == std::string::npos || space + 1 == line.size())
      return make_error(errc::storage_failed, file + " is damaged: '" + line + "'");
    out.push_back(member{line.substr(0, space), line.substr(space + 1), false, 0});
  }
  if (out.empty())
    return make_error(errc::storage_failed, file + " names no member");
  return out;
}

} // namespace

caf::expected<caf::actor> spawn_group(caf::actor_system& sys, const node_config& process,
                                      uint64_t group, std::vector<member> members) {
  if (group == 0)
    return make_error(errc::invalid_request, "group 0 is the process's own");
  if (!process.groups)
    return make_error(errc::invalid_request, "a process hosts many groups with a group table "
                                             "(node_config::groups)");
  if (process.storage && process.data_dir.empty())
    return make_error(errc::invalid_request,
                      "the process's node keeps its log in a storage object of its own: give "
                      "each group a node_config with storage of its own");
  if (!process.data_dir.empty()) {
    auto file = members_file(process, group);
    std::error_code ec;
    bool fresh = !std::filesystem::exists(
        std::filesystem::path{group_config(process, group).data_dir} / "MANIFEST", ec);
    try {
      if (members.empty() && std::filesystem::exists(file, ec)) {
        auto written = read_members(file);
        if (!written)
          return written.error();
        members = std::move(*written);
      } else if (!members.empty() && fresh) {
        write_members(file, members);
      }
    } catch (const std::exception& ex) {
      return make_error(errc::storage_failed, ex.what());
    }
  }
  auto c = group_config(process, group, std::move(members));
  c.storage = nullptr;
  auto base = get_logger(process.logger_name);
  auto log = get_logger(c.logger_name);
  log->set_level(base->level());
  log->set_pattern("%H:%M:%S.%e %^%l%$ [g" + std::to_string(group) + "] %v");
  auto groups = process.groups;
  auto node = spawn_node(sys, std::move(c));
  if (node) { // listed at once, before the node has started (it lists itself then)
    groups->add_if_absent(group, *node);
    // Out of the table when it ends, even before it started (then this runs at once).
    (*node)->attach_functor(
        [groups, group, addr = node->address()] { groups->remove(group, addr); });
  }
  return node;
}

void enlist_actor(const caf::actor& node, const std::string& name, const std::string& kind,
                  const caf::actor& who) {
  caf::send_as(node, node, enlist_atom::value, name, kind, who);
}

void connect_peer(const caf::actor& node, const std::string& peer_id, const caf::actor& peer_node) {
  // Sent as the node itself: the node takes wiring only from its own process.
  caf::send_as(node, node, peer_handle_atom::value, peer_id, peer_node);
}

void connect_all(const std::map<std::string, caf::actor>& nodes) {
  for (auto& [id, node] : nodes)
    for (auto& [peer_id, peer] : nodes)
      if (id != peer_id)
        connect_peer(node, peer_id, peer);
}

} // namespace cafraft
