// The node actor's state and the functions its parts share (actors/node.cpp: the node's
// life, its roles and peers, joining; actors/node_events.cpp: what it knows of the leader and
// the events its subscribers get). Internal to the node.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/response_promise.hpp>

#include <cafraft/actors/context.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/actors/pass_on.hpp>
#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/raft_state.hpp>

namespace cafraft::node_detail {

// A subscriber to leadership events (and membership events, when it asked): at most one event
// in flight to it, the rest queued up to max_pending_events (the oldest dropped and counted
// beyond that), so that a slow subscriber never holds up the node.
struct subscriber {
  caf::actor who;
  bool membership = false;
  std::deque<pb::LeadershipEvent> queue;
  bool in_flight = false;
  uint64_t dropped = 0;
};

// An actor of the node, as the directory lists it (docs/inspection.md).
struct directory_entry {
  caf::actor who;
  std::string kind;
  std::string parent;
  uint64_t started_unix_ms = 0;
};

struct node_state {
  node_context ctx;
  std::map<std::string, directory_entry> directory; // by name: "n1/leader", "n1/peer-n3", ...
  caf::actor role;
  role_kind kind = role_kind::follower;
  std::mt19937_64 seeds; // seeds each role's own random source
  caf::actor changer;
  std::map<std::string, caf::actor> handles;     // where each member is reached (connect_peer)
  std::map<std::string, caf::actor> connections; // the member's newest connection that announced
                                                 // itself (actors/connection.hpp)
  std::map<std::string, std::string> addresses;  // member id -> address, for dialing peers
  // The leader as last known (cached for leader lookups) and as last reported to subscribers.
  uint64_t leader_term = 0;
  std::string leader_id;
  std::string leader_address;
  uint64_t reported_term = 0;
  std::string reported_leader;
  uint64_t invalid_term = 0; // the last term whose leader failed valid_leader (asked once)
  std::vector<subscriber> subscribers;
  // The configuration as the role last told it (membership events).
  uint64_t config_index = ~uint64_t{0};
  pb::Configuration config;
  std::multimap<uint64_t, caf::response_promise> leader_waiters; // by the term to pass
  // Joining: Raft messages are dropped until the cluster admitted this node (docs/membership.md).
  bool joining = false;
  std::vector<caf::response_promise> join_waiters;
  // Removals of other groups of the process under way (docs/groups.md): what waits for each.
  std::map<uint64_t, std::vector<caf::response_promise>> group_removals;
  std::optional<pb::MembershipResponse> joined;
  static inline const char* name = "cafraft.node";
};

/// The node actor. Raft messages and clients' requests are passed to the current role as they
/// are enqueued (actors/pass_on.hpp): `route` holds the role, or nothing while the node joins
/// and while a role hands over, when they queue here and go the long way (the default handler
/// delegates them to the role).
class node_actor : public inspected<node_state> {
public:
  using super = inspected<node_state>;
  using super::super;

  /// Shared with the roles (node_context::route): a role that hands over clears it.
  std::shared_ptr<pass_on> route = std::make_shared<pass_on>();

  void enqueue(caf::mailbox_element_ptr x, caf::execution_unit* eu) override {
    auto& content = x->content();
    if ((is_raft_message(content) || is_client_request(content)) && route->pass(x, eu))
      return;
    // A node that is killed (a crash, in tests) kills its role first: nothing passed to it is
    // handled after that, as nothing queued at the node would be. Other exits leave the role
    // to answer what it holds (a failed storage's errors) until the node's exit reaches it.
    if (content.match_elements<caf::exit_msg>() &&
        content.get_as<caf::exit_msg>(0).reason == caf::exit_reason::kill &&
        !CAFRAFT_CANARY("killed_node_role_runs_on")) // its role handles what was passed to it
      route->stop(content.get_as<caf::exit_msg>(0), eu);
    super::enqueue(std::move(x), eu);
  }
};

using node_ptr = node_actor*;

// Waiters for a leader change a node holds (a requester that gave up still counts until then).
constexpr size_t max_leader_waiters = 4096;

// actors/node_events.cpp
/// Sends the subscriber its next queued event unless one is still on its way.
void push_events(node_ptr self, subscriber& sub);
/// Queues `ev` for every subscriber that wants it.
void publish(node_ptr self, const pb::LeadershipEvent& ev);
void emit(node_ptr self, pb::LeadershipEvent::Kind kind, uint64_t term, const std::string& leader);
/// The configuration as the role last told it, as an event.
pb::LeadershipEvent membership_event(const node_state& st);
/// A new subscriber starts from what the node knows now.
void subscribe(node_ptr self, const caf::actor& who, bool membership);
pb::LeaderInfo leader_info(const node_state& st);
/// A role tells what it knows of the leader: caches it, wakes waiters, tells subscribers.
void note_leader(node_ptr self, uint64_t term, const std::string& leader,
                 const std::string& address);
/// The leader of `term` is gone (or was this node and stepped down).
void leader_lost(node_ptr self, uint64_t term);

} // namespace cafraft::node_detail
