// Membership changes (docs/membership.md).
//
// change_request: one per node, a child of the node actor. It takes pb::JoinRequest and
// pb::LeaveRequest from anyone and handles them one at a time, in the order they came. On the
// leader it runs them (the leader appends the configuration entry and answers when it is
// committed); on any other node each gets not_leader (the leader's id and address) or
// unknown_leader at once, for the caller to retry. Beyond max_pending_changes waiting requests
// it answers overloaded.
//
//   receives  pb::JoinRequest, pb::LeaveRequest -> pb::MembershipResponse
//
// change client: what a node that joins or leaves, or a tool, uses to get a change done. It
// asks the contacts in turn, follows not_leader redirects, retries unknown_leader,
// config_change_in_progress, overloaded and lost answers with backoff until its deadline, and
// answers once: pb::MembershipResponse, or the error that ended it (timeout when the deadline
// passed, with the last reason). Joins and leaves are idempotent, so every retry is safe.
//
//   receives  pb::JoinRequest, pb::LeaveRequest -> pb::MembershipResponse
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <spdlog/logger.h>

namespace cafraft {

struct change_client_options {
  /// Nodes to ask, in turn (local actors or remote proxies).
  std::vector<caf::actor> contacts;
  /// Their addresses, when known (a join through one's own address is refused: self_join).
  std::vector<std::string> contact_addresses;
  /// Finds the node a redirect names (not_leader carries its id and address). Empty, or a
  /// null result: the client asks its contacts again instead.
  std::function<caf::actor(const std::string& id, const std::string& address)> resolve;
  /// The whole change must be done by then; each request to a node gets attempt_timeout.
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds attempt_timeout{2000};
  /// Pause before a retry: doubles from backoff_min up to backoff_max.
  std::chrono::milliseconds backoff_min{20};
  std::chrono::milliseconds backoff_max{500};
};

/// What a node that joins a cluster is given (join_cluster(), actors/node.hpp).
using join_options = change_client_options;

/// The change client, as a free actor or as a child linked to `parent`.
caf::actor spawn_change_client(caf::actor_system& sys, change_client_options opts);
caf::actor spawn_change_client(caf::local_actor* parent, change_client_options opts);

/// The node's change_request actor (spawned by the node).
caf::actor spawn_change_request(caf::local_actor* node, std::string node_id, size_t max_pending,
                                std::shared_ptr<spdlog::logger> log);

} // namespace cafraft
